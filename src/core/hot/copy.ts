// The hot copy: a crash-consistent copy of a database that a writer holds open, taken without its
// lock (opt-in: backup --hot, hot = true). The facts it rests on, checked against DuckDB v1.4 and
// v1.5's source, are in docs/HOT-COPY.md. One attempt:
//   1. read the header region (file header + both database headers, bytes 0-12287);
//   2. read the WAL and cut it after the last verified WAL_FLUSH (WAL entries may point at blocks
//      written just before them, so the WAL is read BEFORE the main file);
//   3. copy the main file;
//   4. read the header region again: it must be byte-identical (no checkpoint finished meanwhile),
//      the WAL must be the same file and still hold the kept bytes, no CHECKPOINT entry may be in
//      it and no `.wal.checkpoint` may exist (a checkpoint under way), before or after;
//   5. every block in use under the copied header must pass its checksum (in-place metadata
//      writes can be torn).
// A failed attempt is retried after a short pause, up to the caller's limit; then the database is
// refused. There is no fallback to a plain copy. The caller then opens the copy (WAL replayed by
// DuckDB) and reads every table before anything is committed.
import { open, rm, stat, type FileHandle } from "node:fs/promises";
import { readAt } from "../fsutil.ts";
import { basename, join } from "node:path";
import { BLOCKS_START } from "../duckdb/header.ts";
import { scanDuckDBBlocks } from "../duckdb/blocks.ts";
import { DuckbakError, ExitCode, fsError } from "../errors.ts";
import { cutWal } from "./wal.ts";

export const DEFAULT_HOT_RETRIES = 20;

export class HotCopyError extends DuckbakError {
  constructor(path: string, attempts: number, readonly reasons: string[]) {
    const last = reasons.at(-1) ?? "no attempt was made";
    super(
      `${path}: no consistent hot copy in ${attempts} attempt${attempts === 1 ? "" : "s"} (last: ${last}); not backed up. ` +
        `Retry later, raise --hot-retries, or stop the writer with before_backup/after_backup hooks`,
      ExitCode.PARTIAL,
    );
  }
}

export interface HotCopy {
  /** Files written into the private folder: the main file, and the cut WAL when it holds a commit. */
  files: { name: string; path: string; size: number; mtime: Date; source: string }[];
  attempts: number;
  /** Why each failed attempt was rejected, in order. */
  rejected: string[];
  walBytesKept: number;
  walBytesDropped: number;
}

/**
 * Test-only switches for the negative control of the stress test (header, wal, blocks, open);
 * never set in production.
 */
export function unsafeSkips(): Set<string> {
  return new Set((process.env.DUCKBAK_TEST_ONLY_UNSAFE_HOT ?? "").split(",").filter(Boolean));
}

/**
 * Test-only knobs of the stress test, passed in by a test that calls hotCopy itself (so that it
 * need not set process.env); production passes none and the test-only env vars decide.
 */
export interface HotTestOptions {
  /** Checks switched off (the negative control): header, wal, blocks. */
  skip?: Set<string>;
  /** A slow disk: milliseconds of sleep per MiB copied, to widen the race (0: full speed). */
  slowCopyMs?: number;
  /** Called at the dangerous instants, where a test may hold the copy until the writer has
   * checkpointed: after the header and the WAL were read, before the main file is copied
   * ("wal-read"), and when half of it is copied ("half-copied"). */
  pause?: (at: "wal-read" | "half-copied") => Promise<void>;
}

async function readRange(path: string, start: number, length: number): Promise<Uint8Array> {
  const h = await open(path, "r");
  try {
    return await readAt(h, start, length);
  } finally {
    await h.close();
  }
}

/** `path` opened for reading; null when it does not exist. */
async function openIfExists(path: string): Promise<FileHandle | null> {
  try {
    return await open(path, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}

const exists = (p: string) => stat(p).then(() => true, () => false);
const equal = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(a, b) === 0;
const PIECE = 1 << 20;

/** Whether the first `length` bytes of `a` are those of the file `b` (read in pieces). */
async function samePrefix(a: FileHandle, b: string, length: number): Promise<boolean> {
  if (length === 0) return true; // nothing kept: no copy to compare with
  const hb = await open(b, "r");
  try {
    for (let at = 0; at < length; at += PIECE) {
      const n = Math.min(PIECE, length - at);
      if (!equal(await readAt(a, at, n), await readAt(hb, at, n))) return false;
    }
    return true;
  } finally {
    await hb.close();
  }
}

/**
 * Copies `src` into `to` (created), up to the size `src` has when the copy starts, through a
 * bounded buffer; returns the bytes copied. The stress test may slow it down (`slowMs` per MiB, a
 * slow disk) to widen the race, and hold it half way.
 */
async function copyFile(src: FileHandle, to: string, slowMs = 0, halfway = async () => {}): Promise<number> {
  const dst = await open(to, "wx", 0o600);
  try {
    const size = (await src.stat()).size;
    const buf = new Uint8Array(slowMs > 0 ? PIECE : 8 * PIECE);
    let at = 0;
    let half = false;
    while (at < size) {
      if (!half && at >= size / 2) {
        half = true;
        await halfway();
      }
      const { bytesRead } = await src.read(buf, 0, Math.min(buf.length, size - at), at);
      if (bytesRead === 0) break;
      await dst.write(buf.subarray(0, bytesRead), 0, bytesRead, at);
      at += bytesRead;
      if (slowMs > 0) await Bun.sleep(slowMs);
    }
    await dst.sync();
    return at;
  } finally {
    await dst.close();
  }
}

/**
 * Snapshots the WAL into `to` and cuts it there after its last verified commit (the whole of it
 * with the wal check off); the copy is removed when nothing is kept. Null when there is no WAL; a
 * string says why the attempt is rejected. Streams: a WAL of any size takes bounded memory.
 */
async function copyWal(walPath: string, to: string, skip: Set<string>): Promise<{ ino: number; size: number; keep: number } | string | null> {
  const src = await openIfExists(walPath);
  if (!src) return null;
  let size;
  let ino;
  try {
    ino = (await src.stat()).ino;
    size = await copyFile(src, to);
  } finally {
    await src.close();
  }
  let keep = 0;
  if (size > 0) {
    const copy = await open(to, "r+");
    try {
      let cut;
      try {
        cut = await cutWal(copy);
      } catch (err) {
        return `its WAL cannot be read: ${(err as Error).message}`;
      }
      if (cut.checkpoint && !skip.has("wal")) return "a checkpoint is under way (CHECKPOINT entry in the WAL)";
      if (cut.stopped === "bad-checksum" && !skip.has("wal")) return "a WAL entry failed its checksum (being written)";
      keep = skip.has("wal") ? size : cut.keep;
      await copy.truncate(keep);
      await copy.sync();
    } finally {
      await copy.close();
    }
  }
  if (keep === 0) await rm(to, { force: true });
  return { ino, size, keep };
}

/** Why the WAL, after the main file was copied, no longer fits the kept part; null when it does. */
async function walMoved(walPath: string, kept: { ino: number; keep: number }, walCopy: string): Promise<string | null> {
  const again = await openIfExists(walPath);
  if (!again) return "the WAL was replaced or removed during the copy (a checkpoint ended)";
  try {
    if ((await again.stat()).ino !== kept.ino) return "the WAL was replaced or removed during the copy (a checkpoint ended)";
    if (!(await samePrefix(again, walCopy, kept.keep))) return "the WAL was cut back during the copy";
    if ((await again.stat()).size === 0) return null;
    try {
      if ((await cutWal(again)).checkpoint) return "a checkpoint started during the copy (CHECKPOINT entry in the WAL)";
    } catch {
      return "the WAL changed during the copy";
    }
    return null;
  } finally {
    await again.close();
  }
}

/** One attempt; a string says why it was rejected. */
async function attempt(path: string, dir: string, test: Required<HotTestOptions>): Promise<{ files: HotCopy["files"]; walDropped: number } | string> {
  const skip = test.skip;
  const walPath = `${path}.wal`;
  const checkpointWal = `${path}.wal.checkpoint`;
  const name = basename(path);
  const mainCopy = join(dir, name);
  const walCopy = join(dir, `${name}.wal`);
  const before = await readRange(path, 0, BLOCKS_START);
  if (before.length < BLOCKS_START) return "the file is shorter than its header";
  if (!skip.has("wal") && (await exists(checkpointWal))) return "a checkpoint is under way (.wal.checkpoint exists)";

  // The WAL first: its entries may point at blocks written just before them.
  const wal = await copyWal(walPath, walCopy, skip);
  if (typeof wal === "string") return wal;

  await test.pause("wal-read");
  const src = await open(path, "r");
  try {
    await copyFile(src, mainCopy, test.slowCopyMs, () => test.pause("half-copied"));
  } finally {
    await src.close();
  }

  const after = await readRange(path, 0, BLOCKS_START);
  if (!skip.has("header")) {
    if (!equal(before, after)) return "a checkpoint wrote the header during the copy";
    if (!equal(before, await readRange(mainCopy, 0, BLOCKS_START))) return "the header changed while it was copied";
  }
  if (!skip.has("wal")) {
    if (await exists(checkpointWal)) return "a checkpoint started during the copy (.wal.checkpoint exists)";
    // A WAL that appeared during the copy holds only commits after the copied state: not needed.
    const moved = wal && (await walMoved(walPath, wal, walCopy));
    if (moved) return moved;
  }

  if (!skip.has("blocks")) {
    const scan = await scanDuckDBBlocks(mainCopy);
    if (!scan.header.active) return "no valid database header in the copy";
    if (scan.header.encrypted) return "the database is encrypted: its blocks cannot be checked";
    if (scan.badHeaders.length) return `header ${scan.badHeaders[0]!.name} fails its checksum in the copy`;
    if (!scan.freeListResolved) return "the free list could not be read from the copy";
    if (scan.badBlocks.length) return `block ${scan.badBlocks[0]!.index} fails its checksum in the copy (written during the copy)`;
    if (scan.missingBlocks) return `${scan.missingBlocks} blocks in use are missing from the copy`;
  }

  const files: HotCopy["files"] = [];
  const mainStat = await stat(mainCopy);
  files.push({ name, path: mainCopy, size: mainStat.size, mtime: mainStat.mtime, source: path });
  if (wal && wal.keep > 0) files.push({ name: `${name}.wal`, path: walCopy, size: wal.keep, mtime: mainStat.mtime, source: walPath });
  return { files, walDropped: wal ? wal.size - wal.keep : 0 };
}

/**
 * Takes a hot copy of `path` into the empty private folder `dir`, trying up to 1 + `retries`
 * times; throws HotCopyError when no attempt could be proven consistent.
 */
export async function hotCopy(path: string, dir: string, retries = DEFAULT_HOT_RETRIES, test: HotTestOptions = {}): Promise<HotCopy> {
  const knobs: Required<HotTestOptions> = {
    skip: test.skip ?? unsafeSkips(),
    slowCopyMs: test.slowCopyMs ?? 0,
    pause: test.pause ?? (async () => {}),
  };
  const rejected: string[] = [];
  for (let n = 1; n <= retries + 1; n++) {
    let result;
    try {
      result = await attempt(path, dir, knobs);
    } catch (err) {
      throw fsError(err, path, "copy");
    }
    if (typeof result !== "string") {
      const wal = result.files.find((f) => f.name.endsWith(".wal"));
      return { files: result.files, attempts: n, rejected, walBytesKept: wal?.size ?? 0, walBytesDropped: result.walDropped };
    }
    rejected.push(result);
    for (const f of [basename(path), `${basename(path)}.wal`]) await rm(join(dir, f), { force: true });
    // Checkpoints are short: wait a little longer each time, with jitter so as not to fall into step.
    if (n <= retries) await Bun.sleep(Math.min(2000, 50 * n) + Math.random() * 50);
  }
  throw new HotCopyError(path, retries + 1, rejected);
}
