// backup_metadata.json: the seed's fields (timestamp, databases[].name/original_path/size_bytes)
// plus what verify and restore need. Pure: building, serialising and validating.
import type { Compression } from "./naming.ts";

export const MANIFEST_FORMAT = "duckbak-backup";
export const MANIFEST_FORMAT_VERSION = 1;

export type FileRole = "main" | "wal";

/** A file's facts shared by archive manifests and repository snapshots (each adds its own checksum). */
export interface FileFacts {
  /** Name of the entry at the archive root. */
  entry: string;
  role: FileRole;
  /** Name of the file next to the database when restored (`results.duckdb.wal`). */
  name: string;
  size_bytes: number;
  /** Permission bits as octal text ("0600"), owner and group as on the host that made the backup; absent in older manifests. */
  mode?: string;
  uid?: number;
  gid?: number;
  owner?: string;
  group?: string;
}

export interface ManifestFile extends FileFacts {
  sha256: string;
}

export interface ManifestTable {
  schema: string;
  name: string;
  rows: number;
}

/** A database's facts shared by archive manifests and repository snapshots; `F`: its files. */
export interface DatabaseFacts<F extends FileFacts = FileFacts> {
  name: string;
  /** The path the database was given as (absolute, links not resolved): where restore puts it. */
  original_path: string;
  /** The file that was read: original_path with symbolic links resolved (absent before 0.1). */
  resolved_path?: string;
  size_bytes: number;
  entry: string;
  files: F[];
  duckdb: {
    creator_version: string;
    storage_version: number;
    block_alloc_size: number | null;
    /** The DuckDB that read the row counts (the one embedded in duckbak). */
    reader_version: string;
    /** DuckDB 1.4+ encryption: opening it needs its key (which is never stored here). Absent in older manifests. */
    encrypted?: boolean;
    /** Why the embedded DuckDB could not open the source (consistency "raw-lock"); tables are then unknown. */
    open_error?: string;
  };
  tables: ManifestTable[];
  /**
   * DuckDB's block checksums of the main file, checked while it was copied: "damaged" means the
   * SOURCE was damaged when backed up (the copy is faithful). Absent in older manifests.
   */
  source_blocks?: { state: "ok" | "damaged" | "skipped"; problems: string[] };
  /**
   * How the copy was made consistent. "read-lock": copied while a DuckDB read lock was held, so no
   * writer could run or checkpoint during the copy. "crash-consistent": a hot copy taken while a
   * writer held the database (backup --hot): the state after some committed transaction, as after
   * a power cut, checked block by block and opened before the backup was committed. "raw-lock":
   * the embedded DuckDB could not open the file, so duckbak took the same fcntl read lock itself
   * (see duckdb.open_error).
   */
  consistency: "read-lock" | "crash-consistent" | "raw-lock";
  /** For a hot copy: the attempts it took, why the failed ones were rejected, and the WAL cut. */
  hot?: { attempts: number; rejected: string[]; wal_bytes_kept: number; wal_bytes_dropped: number };
}

export type ManifestDatabase = DatabaseFacts<ManifestFile>;

export interface ManifestFailure {
  path: string;
  error: string;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  format_version: number;
  timestamp: string;
  duckbak_version: string;
  host: string;
  compression: Compression;
  databases: ManifestDatabase[];
  /** Databases that were asked for but could not be backed up in this run. */
  failed: ManifestFailure[];
}

/** sha256 stand-in of the same length, so the final manifest can be written over the first one. */
export const SHA256_PLACEHOLDER = "0".repeat(64);

/**
 * The manifest as JSON; with `length`, padded with trailing spaces (still valid JSON) to exactly
 * that many bytes, so that a final manifest with longer fields fits over its placeholder.
 */
export function serializeManifest(m: Manifest, length?: number): Uint8Array {
  const json = JSON.stringify(m, null, 2);
  if (length === undefined) return new TextEncoder().encode(json + "\n");
  const size = Buffer.byteLength(json) + 1;
  if (size > length) throw new Error(`manifest of ${size} bytes exceeds its reserved ${length}`);
  return new TextEncoder().encode(json + " ".repeat(length - size) + "\n");
}

export class ManifestError extends Error {}

/** "0640" <-> 0o640. */
export const formatMode = (mode: number): string => "0" + (mode & 0o7777).toString(8).padStart(3, "0");
export const parseMode = (text: string): number => parseInt(text, 8);

/** Parses and checks the shape of a manifest read from an archive; throws ManifestError. */
export function parseManifest(bytes: Uint8Array): Manifest {
  let m: any;
  try {
    m = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    throw new ManifestError(`${"backup_metadata.json"} is not valid JSON: ${(err as Error).message}`);
  }
  const bad = (what: string): never => {
    throw new ManifestError(`backup_metadata.json: ${what}`);
  };
  if (typeof m !== "object" || m === null) bad("not an object");
  if (m.format !== MANIFEST_FORMAT) bad(`unknown format ${JSON.stringify(m.format)}`);
  if (typeof m.format_version !== "number" || m.format_version > MANIFEST_FORMAT_VERSION)
    bad(`format version ${m.format_version} is newer than this duckbak understands`);
  if (typeof m.timestamp !== "string" || Number.isNaN(Date.parse(m.timestamp))) bad("missing or invalid timestamp");
  if (!Array.isArray(m.databases)) bad("missing databases");
  for (const db of m.databases) {
    if (typeof db?.name !== "string" || typeof db.original_path !== "string" || !Array.isArray(db.files))
      bad("a database lacks name, original_path or files");
    for (const f of db.files) {
      if (typeof f?.entry !== "string" || typeof f.size_bytes !== "number" || !/^[0-9a-f]{64}$/.test(f.sha256))
        bad(`file ${JSON.stringify(f?.entry)} lacks entry, size_bytes or sha256`);
      if (f.mode !== undefined && !(typeof f.mode === "string" && /^0[0-7]{3,4}$/.test(f.mode))) bad(`file ${JSON.stringify(f.entry)} has an invalid mode`);
    }
  }
  if (!Array.isArray(m.failed)) m.failed = [];
  return m as Manifest;
}
