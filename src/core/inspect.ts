// inspect: what a database file's header says, read without DuckDB (so it works on a file that the
// embedded DuckDB could not open, and never takes a lock): who wrote it, its storage format, which
// DuckDB releases can open it, and whether it has a WAL beside it.
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { DatabaseNotFoundError, DuckbakError, fsError } from "./errors.ts";
import { opensWith } from "./duckdb/compat.ts";
import { BLOCKS_START } from "./duckdb/header.ts";
import { scanDuckDBBlocks } from "./duckdb/blocks.ts";
import { readDuckDBHeader } from "./duckdb/open.ts";

export interface InspectResult {
  path: string;
  sizeBytes: number;
  /** Empty when the file was written by a DuckDB that did not record its version. */
  creatorVersion: string;
  sourceId: string;
  storageVersion: number;
  /** The active database header's serialization compatibility; null when encrypted. */
  serializationCompatibility: number | null;
  /** Which DuckDB releases can open the file, e.g. "v1.0.0 and later". */
  opensWith: string;
  encrypted: boolean;
  /** The rest is from the active database header; null when encrypted or both headers are corrupt. */
  blockAllocSize: number | null;
  vectorSize: number | null;
  /** Bumped by every checkpoint. */
  checkpointIteration: number | null;
  blockCount: number | null;
  /** Header bytes plus blockCount blocks. A shorter file is healthy when the blocks past its end are free (DuckDB trims them). */
  expectedMinSize: number | null;
  /** Blocks in use lie past the end of the file. */
  truncated: boolean;
  checksums: { main: boolean; databaseHeaders: [boolean, boolean] | null };
  activeHeader: 1 | 2 | null;
  /** `<file>.wal`: changes not yet checkpointed into the file. */
  wal: { path: string; sizeBytes: number } | null;
}

export async function inspectDatabaseFile(file: string): Promise<InspectResult> {
  const path = resolve(file);
  const st = await stat(path).catch((err) => {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new DatabaseNotFoundError(path);
    throw fsError(err, path, "stat");
  });
  if (!st.isFile()) throw new DuckbakError(`${path}: not a regular file`);
  const h = await readDuckDBHeader(path);
  const a = h.active;
  const walStat = await stat(`${path}.wal`).catch(() => null);
  const expectedMinSize = a ? BLOCKS_START + a.blockCount * a.blockAllocSize : null;
  // Only a short file is scanned: are the blocks it lacks all on the free list?
  const short = expectedMinSize !== null && st.size < expectedMinSize;
  const truncated = short && (await scanDuckDBBlocks(path).catch(() => null))?.missingBlocks !== 0;
  return {
    path,
    sizeBytes: st.size,
    creatorVersion: h.creatorVersion,
    sourceId: h.sourceId,
    storageVersion: h.storageVersion,
    serializationCompatibility: a?.serializationCompatibility ?? null,
    opensWith: a || h.encrypted ? opensWith(h) : "unknown: both database headers are corrupt",
    encrypted: h.encrypted,
    blockAllocSize: a?.blockAllocSize ?? null,
    vectorSize: a?.vectorSize ?? null,
    checkpointIteration: a?.iteration ?? null,
    blockCount: a?.blockCount ?? null,
    expectedMinSize,
    truncated,
    checksums: { main: h.mainChecksumValid, databaseHeaders: h.headers ? [h.headers[0].checksumValid, h.headers[1].checksumValid] : null },
    activeHeader: h.activeHeader === null ? null : ((h.activeHeader + 1) as 1 | 2),
    wal: walStat?.isFile() ? { path: `${path}.wal`, sizeBytes: walStat.size } : null,
  };
}
