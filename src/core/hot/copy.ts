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
import { open, rm, stat, writeFile } from "node:fs/promises";
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

async function readWhole(path: string): Promise<{ bytes: Uint8Array; ino: number } | null> {
  let h;
  try {
    h = await open(path, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
  try {
    const st = await h.stat();
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const buf = new Uint8Array(1 << 20);
      const { bytesRead } = await h.read(buf, 0, buf.length, total);
      if (bytesRead === 0) break;
      chunks.push(buf.subarray(0, bytesRead));
      total += bytesRead;
    }
    return { bytes: Buffer.concat(chunks), ino: st.ino };
  } finally {
    await h.close();
  }
}

const exists = (p: string) => stat(p).then(() => true, () => false);
const equal = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(a, b) === 0;

/**
 * Copies `from` into `to` (created), up to the size `from` has when the copy starts. The stress
 * test may slow it down (`slowMs` per MiB, a slow disk) to widen the race.
 */
async function copyFile(from: string, to: string, test: Required<HotTestOptions>): Promise<number> {
  const src = await open(from, "r");
  const dst = await open(to, "wx", 0o600);
  try {
    const size = (await src.stat()).size;
    const slowMs = test.slowCopyMs;
    const buf = new Uint8Array(slowMs > 0 ? 1 << 20 : 8 << 20);
    let at = 0;
    let half = false;
    while (at < size) {
      if (!half && at >= size / 2) {
        half = true;
        await test.pause("half-copied");
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
    await src.close();
    await dst.close();
  }
}

/** One attempt; a string says why it was rejected. */
async function attempt(path: string, dir: string, test: Required<HotTestOptions>): Promise<{ files: HotCopy["files"]; walDropped: number } | string> {
  const skip = test.skip;
  const walPath = `${path}.wal`;
  const checkpointWal = `${path}.wal.checkpoint`;
  const name = basename(path);
  const before = await readRange(path, 0, BLOCKS_START);
  if (before.length < BLOCKS_START) return "the file is shorter than its header";
  if (!skip.has("wal") && (await exists(checkpointWal))) return "a checkpoint is under way (.wal.checkpoint exists)";

  const wal = await readWhole(walPath);
  let walKeep: Uint8Array | null = null;
  if (wal && wal.bytes.length > 0) {
    let cut;
    try {
      cut = cutWal(wal.bytes);
    } catch (err) {
      return `its WAL cannot be read: ${(err as Error).message}`;
    }
    if (cut.checkpoint && !skip.has("wal")) return "a checkpoint is under way (CHECKPOINT entry in the WAL)";
    if (cut.stopped === "bad-checksum" && !skip.has("wal")) return "a WAL entry failed its checksum (being written)";
    walKeep = skip.has("wal") ? wal.bytes : cut.keep > 0 ? wal.bytes.subarray(0, cut.keep) : null;
  }

  await test.pause("wal-read");
  const mainCopy = join(dir, name);
  await copyFile(path, mainCopy, test);

  const after = await readRange(path, 0, BLOCKS_START);
  if (!skip.has("header")) {
    if (!equal(before, after)) return "a checkpoint wrote the header during the copy";
    if (!equal(before, await readRange(mainCopy, 0, BLOCKS_START))) return "the header changed while it was copied";
  }
  if (!skip.has("wal")) {
    if (await exists(checkpointWal)) return "a checkpoint started during the copy (.wal.checkpoint exists)";
    if (wal) {
      const again = await readWhole(walPath);
      if (!again || again.ino !== wal.ino) return "the WAL was replaced or removed during the copy (a checkpoint ended)";
      const kept = walKeep ?? new Uint8Array(0);
      if (again.bytes.length < kept.length || !equal(again.bytes.subarray(0, kept.length), kept)) return "the WAL was cut back during the copy";
      try {
        if (cutWal(again.bytes).checkpoint) return "a checkpoint started during the copy (CHECKPOINT entry in the WAL)";
      } catch {
        return "the WAL changed during the copy";
      }
    }
    // A WAL that appeared during the copy holds only commits after the copied state: not needed.
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
  if (walKeep && walKeep.length > 0) {
    const walCopy = join(dir, `${name}.wal`);
    await writeFile(walCopy, walKeep, { mode: 0o600, flag: "wx" });
    files.push({ name: `${name}.wal`, path: walCopy, size: walKeep.length, mtime: mainStat.mtime, source: walPath });
  }
  return { files, walDropped: (wal?.bytes.length ?? 0) - (walKeep?.length ?? 0) };
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
