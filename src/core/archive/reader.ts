import { createReadStream } from "node:fs";
import { open, stat } from "node:fs/promises";
import { Readable } from "node:stream";
import { createGunzip, createZstdDecompress } from "node:zlib";
import type { ProgressSink } from "../progress.ts";
import { createTarDecoder, type ParsedTarEntry } from "modern-tar";
import { CorruptArchiveError, DuckbakError, fsError } from "../errors.ts";
import { isSafeEntryName, MANIFEST_NAME, type Compression } from "../naming.ts";
import { parseManifest, ManifestError, type Manifest, type ManifestDatabase, type ManifestFile } from "../manifest.ts";
import { createBlockScanner, type BlockScanResult } from "../duckdb/blocks.ts";
import type { ArchiveRef } from "../list.ts";
import { concatBytes } from "../bytes.ts";
import { encodeTrailer, firstMemberLength, parseTrailer, trailerLength, TRAILER_NAME, type ArchiveDigests } from "./integrity.ts";

const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

interface TarSource {
  entries: ReadableStreamDefaultReader<ParsedTarEntry>;
  /** The original error behind a failed read: Readable.toWeb turns it into a message-less TypeError. */
  failure(): Error | null;
  close(): Promise<void>;
}

/** Tar entries of an archive, decompressed as read (gzip members and zstd frames alike). */
function openTar(path: string, compression: Compression, onRaw?: (chunk: Uint8Array) => void): TarSource {
  const file = createReadStream(path, { highWaterMark: 1024 * 1024 });
  if (onRaw) file.on("data", (chunk) => onRaw(chunk as Buffer));
  let failure: Error | null = null;
  file.on("error", (err) => (failure ??= err));
  let raw: Readable = file;
  if (compression !== "none") {
    const decoder = compression === "gzip" ? createGunzip() : (createZstdDecompress() as unknown as ReturnType<typeof createGunzip>);
    file.on("error", (err) => decoder.destroy(err));
    decoder.on("error", (err) => (failure ??= new Error(`${compression} decompression failed: ${err.message}`)));
    raw = file.pipe(decoder);
  }
  // strict: header checksums are checked.
  const entries = (Readable.toWeb(raw) as ReadableStream<Uint8Array>).pipeThrough(createTarDecoder({ strict: true })).getReader() as ReadableStreamDefaultReader<ParsedTarEntry>;
  return {
    entries,
    failure: () => failure,
    close: async () => {
      await entries.cancel().catch(() => {});
      file.destroy();
    },
  };
}

function isIoError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === "EACCES" || code === "EISDIR" || code === "ENOENT" || code === "EIO";
}

function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split("\n")[0]!.replace(/^Error: /, "") || "unreadable";
}

/** The first entry, which must be the manifest; throws ManifestError. */
async function readManifestEntry({ header, body }: ParsedTarEntry): Promise<Manifest> {
  if (header.name !== MANIFEST_NAME) throw new ManifestError(`first entry is '${header.name}', not ${MANIFEST_NAME}: not a duckbak archive`);
  if (header.size > MAX_MANIFEST_BYTES) throw new ManifestError(`${MANIFEST_NAME} is implausibly large`);
  return parseManifest(new Uint8Array(await new Response(body).arrayBuffer()));
}

/** Reads only the archive's head: the manifest, which duckbak always writes as the first entry. */
export async function readArchiveManifest(path: string, compression: Compression): Promise<Manifest> {
  const tar = openTar(path, compression);
  try {
    const first = await tar.entries.read();
    if (first.done) throw new CorruptArchiveError(path, "empty archive");
    return await readManifestEntry(first.value);
  } catch (caught) {
    if (caught instanceof CorruptArchiveError) throw caught;
    const err = tar.failure() ?? caught;
    if (isIoError(err)) throw fsError(err, path, "read");
    throw new CorruptArchiveError(path, caught instanceof ManifestError ? caught.message : `unreadable archive: ${firstLine(err)}`);
  } finally {
    await tar.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Full read of an archive: every byte checked against the integrity trailer, every entry checked
// against the manifest, and each database file's bytes handed to an optional sink as they stream.

export interface EntrySink {
  write(chunk: Uint8Array): Promise<void>;
  /** Random access to what was written so far (lets the block scanner follow backward pointers). */
  readAt?(offset: number, length: number): Uint8Array;
  close(): Promise<void>;
}

export interface FileScan {
  file: ManifestFile;
  db: ManifestDatabase;
  /** sha256 of the entry as read; compare with file.sha256. */
  sha256: string;
  bytes: number;
  blocks: BlockScanResult | null;
  /** Why the block scan could not run (e.g. fewer bytes than a DuckDB header). */
  blockError: string | null;
}

export interface ArchiveScan {
  manifest: Manifest | null;
  /** Damage that is not confined to one database file: the archive as a whole is not trustworthy. */
  problems: string[];
  files: Map<string, FileScan>;
}

export interface ScanOptions {
  /** Run DuckDB's block checksums over main database files as they stream. */
  blocks?: boolean;
  /** Where to put a database file's bytes; null to only check them. Only called for manifest files. */
  sink?: (file: ManifestFile, db: ManifestDatabase) => Promise<EntrySink | null>;
  /** Told the archive's size, then each chunk of it read, under the label `phase`. */
  progress?: ProgressSink;
  phase?: string;
}

/**
 * The length of the archive's first member (the manifest), read from its own framing. Reads only
 * as much of the head as that framing needs: 1 MiB, then more only for a manifest that big, and
 * never more than a manifest may be, so memory does not grow with the archive.
 */
async function readFirstMemberLength(path: string, size: number, compression: Compression): Promise<number | null> {
  const handle = await open(path, "r");
  try {
    const limit = Math.min(size, MAX_MANIFEST_BYTES + (2 << 20));
    for (let want = Math.min(size, 1 << 20); ; want = Math.min(limit, want * 8)) {
      const buf = new Uint8Array(want);
      const { bytesRead } = await handle.read(buf, 0, want, 0);
      const length = firstMemberLength(compression, buf.subarray(0, bytesRead));
      if (length !== null || want >= limit || bytesRead < want) return length;
    }
  } finally {
    await handle.close();
  }
}

/** Hashes the raw archive bytes by region while passing them on to the decompressor. */
function integrityTap(firstLength: number, trailerStart: number) {
  const first = new Bun.CryptoHasher("sha256");
  const body = new Bun.CryptoHasher("sha256");
  const tail: Uint8Array[] = [];
  let pos = 0;
  const take = (chunk: Uint8Array) => {
    const start = pos;
    const end = pos + chunk.length;
    const slice = (a: number, b: number) => chunk.subarray(Math.max(a, start) - start, Math.min(b, end) - start);
    if (start < firstLength) first.update(slice(0, firstLength));
    if (end > firstLength && start < trailerStart) body.update(slice(firstLength, trailerStart));
    if (end > trailerStart) tail.push(slice(trailerStart, Infinity).slice());
    pos = end;
  };
  return {
    take,
    result: () => ({ first: first.digest("hex"), body: body.digest("hex"), trailer: concatBytes(tail), length: pos }),
  };
}


/**
 * Reads the whole archive once. Never throws for damage: what is wrong is reported in `problems`
 * (whole archive) or, per file, by a sha256 that differs from the manifest and by block results.
 */
export async function scanArchive(ref: ArchiveRef, opts: ScanOptions = {}): Promise<ArchiveScan> {
  const { path, compression } = ref;
  const result: ArchiveScan = { manifest: null, problems: [], files: new Map() };
  const size = (await stat(path).catch((err) => {
    throw fsError(err, path, "read");
  })).size;
  const firstLength = await readFirstMemberLength(path, size, compression);
  const tLength = trailerLength(compression);
  if (firstLength === null) {
    result.problems.push("the archive does not start with a duckbak manifest member (damaged, or not written by duckbak)");
    return result;
  }
  if (size < firstLength + tLength) {
    result.problems.push(`the archive is truncated (${size} bytes, shorter than its own framing)`);
    return result;
  }
  const tap = integrityTap(firstLength, size - tLength);
  opts.progress?.start(size, opts.phase ?? `reading ${ref.name}`);
  const tar = openTar(path, compression, (chunk) => {
    tap.take(chunk);
    opts.progress?.advance(chunk.length);
  });
  const reader = tar.entries;

  const expected = new Map<string, { file: ManifestFile; db: ManifestDatabase }>();
  let trailer: ArchiveDigests | null = null;
  try {
    for (let index = 0; ; index++) {
      const next = await reader.read();
      if (next.done) break;
      const { header, body } = next.value;
      const name = header.name;
      if (index === 0) {
        result.manifest = await readManifestEntry(next.value);
        for (const db of result.manifest.databases) for (const f of db.files) expected.set(f.entry, { file: f, db });
        continue;
      }
      if (trailer) throw new Error(`unexpected entry '${name}' after ${TRAILER_NAME}`);
      if (!isSafeEntryName(name)) throw new Error(`unsafe entry name ${JSON.stringify(name)} (paths, '..' and links are never extracted)`);
      if ((header.type ?? "file") !== "file") throw new Error(`entry '${name}' is a ${header.type}, not a regular file`);
      if (name === TRAILER_NAME) {
        trailer = parseTrailer(new Uint8Array(await new Response(body).arrayBuffer()));
        if (!trailer) throw new Error(`${TRAILER_NAME} is malformed`);
        continue;
      }
      const want = expected.get(name);
      if (!want) throw new Error(`entry '${name}' is not in the manifest`);
      if (result.files.has(name)) throw new Error(`entry '${name}' appears twice`);
      if (header.size !== want.file.size_bytes)
        throw new Error(`entry '${name}' is ${header.size} bytes, the manifest says ${want.file.size_bytes}`);
      result.files.set(name, await readEntry(body, want.file, want.db, opts));
    }
  } catch (caught) {
    await tar.close();
    // A sink's own failure (disk full where the files are extracted) is not damage to the archive.
    if (caught instanceof DuckbakError) throw caught;
    const err = tar.failure() ?? caught;
    if (isIoError(err)) throw fsError(err, path, "read");
    result.problems.push(firstLine(err));
    return result;
  }
  await tar.close();
  const read = tap.result();
  if (read.length !== size) result.problems.push(`the archive changed while it was read (${size} bytes at start, ${read.length} read)`);
  else if (!trailer) result.problems.push(`the archive has no ${TRAILER_NAME} entry (truncated, or not written by duckbak)`);
  else {
    if (trailer.firstMember !== read.first) result.problems.push("the manifest member's bytes differ from their recorded checksum");
    if (trailer.body !== read.body) result.problems.push("the archive's bytes differ from their recorded checksum");
    const rebuilt = encodeTrailer(compression, new Date(result.manifest!.timestamp), trailer);
    if (Bun.hash(rebuilt) !== Bun.hash(read.trailer)) result.problems.push(`the archive's last ${tLength} bytes (integrity trailer) are damaged`);
  }
  return result;
}

async function readEntry(body: ReadableStream<Uint8Array>, file: ManifestFile, db: ManifestDatabase, opts: ScanOptions): Promise<FileScan> {
  const hasher = new Bun.CryptoHasher("sha256");
  const sink = opts.sink ? await opts.sink(file, db) : null;
  const scanner = opts.blocks && file.role === "main" ? createBlockScanner({ readAt: sink?.readAt?.bind(sink) }) : null;
  let bytes = 0;
  try {
    for await (const chunk of body) {
      hasher.update(chunk);
      scanner?.push(chunk);
      if (sink) await sink.write(chunk);
      bytes += chunk.length;
    }
  } finally {
    await sink?.close();
  }
  let blocks: BlockScanResult | null = null;
  let blockError: string | null = null;
  if (scanner) {
    try {
      blocks = scanner.finish();
    } catch (err) {
      blockError = firstLine(err);
    }
  }
  return { file, db, sha256: hasher.digest("hex"), bytes, blocks, blockError };
}
