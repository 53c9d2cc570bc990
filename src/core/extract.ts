// Writing database files out of an archive: temp files that are flushed before anyone trusts
// them, named so that a database's WAL sits beside it under the name DuckDB looks for.
import { closeSync, fdatasync, fsync, fsyncSync, openSync, readSync, writeSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { EntrySink } from "./archive/reader.ts";
import { fsError } from "./errors.ts";
import { EarlyFlush, WRITE_PIECE, trackTemporary, untrackTemporary } from "./fsutil.ts";

export interface FileSinkOptions {
  /**
   * Given, close() only starts the final flush, in the background, and hands over `finish`: it
   * waits for that flush (throwing what it failed with), then closes the file. Awaited before the
   * file is trusted to be on disk; not earlier, as closing a descriptor drops every lock this
   * process holds on the file, DuckDB's included.
   */
  deferFlush?: (finish: () => Promise<void>) => void;
}

/**
 * A file sink: synchronous writes keep the descriptor usable for the block scanner's readAt.
 * `label` is what errors name (the restore's target, never a temporary name). Written in
 * WRITE_PIECE pieces with an EarlyFlush, as AtomicFile, so the flush at close finds little left.
 */
export function fileSink(path: string, label = path, opts: FileSinkOptions = {}): EntrySink {
  let fd: number;
  try {
    fd = openSync(path, "wx", 0o600);
  } catch (err) {
    throw fsError(err, label, "create");
  }
  let closed = false;
  const early = new EarlyFlush(() => new Promise((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve()))));
  return {
    async write(chunk) {
      try {
        let off = 0;
        while (off < chunk.length) off += writeSync(fd, chunk, off, Math.min(WRITE_PIECE, chunk.length - off));
      } catch (err) {
        throw fsError(err, label, "write");
      }
      early.wrote(chunk.length);
    },
    readAt(offset, length) {
      const buf = new Uint8Array(length);
      const n = readSync(fd, buf, 0, length, offset);
      return buf.subarray(0, n);
    },
    async close() {
      if (closed) return;
      closed = true;
      if (opts.deferFlush) {
        const flushed = early.settle().then(() => new Promise<void>((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve()))));
        flushed.catch(() => {}); // thrown by finish
        let finished: Promise<void> | undefined;
        opts.deferFlush(() =>
          (finished ??= flushed.then(
            () => closeSync(fd),
            (err) => {
              closeSync(fd);
              throw fsError(err, label, "write");
            },
          )),
        );
        return;
      }
      try {
        await early.settle();
        fsyncSync(fd);
      } catch (err) {
        throw fsError(err, label, "write");
      } finally {
        closeSync(fd);
      }
    },
  };
}

/** A private (0700) temporary folder, removed when `fn` is done whatever happens. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>, parent = tmpdir()): Promise<T> {
  const dir = trackTemporary(await mkdtemp(join(parent, "duckbak-")));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
    untrackTemporary(dir);
  }
}
