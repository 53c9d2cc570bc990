import { pausePoint } from "./pause.ts";
import { chmod, open, link, lstat, rename, rm, unlink, readdir, stat, type FileHandle } from "node:fs/promises";
import { openSync, fsyncSync, closeSync, lstatSync, readdirSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { hostname } from "node:os";
import { DuckbakError, fsError } from "./errors.ts";
import { chmodUnsupported, hasPosixModes, renameBlockedByOpenFile, WINDOWS_RENAME_RETRY_MS } from "../platform/fs.ts";

// The one way duckbak writes a file: a temporary name in the destination folder, flushed, then
// renamed (or hard-linked, when the final name must not be clobbered) into place. A crash at any
// instant leaves the old state or the new one, plus at worst a temporary that the next run removes.

const TMP_PREFIX = ".duckbak-tmp.";

/** Files duckbak creates are private unless the config's file_mode says otherwise. */
export const DEFAULT_FILE_MODE = 0o600;

/**
 * The umask that gives new files `fileMode` and new folders the same plus x where r is set
 * (0600 -> 0700, 0640 -> 0750). Files are created 0666 and folders 0777 through it, so archives,
 * logs, exports, temporaries and files DuckDB itself creates all get the same permissions.
 */
export function umaskFor(fileMode: number): number {
  const folderMode = fileMode | ((fileMode & 0o444) >> 2);
  return 0o777 & ~folderMode;
}

/** A temporary name beside `finalPath`; removeStaleTemporaries recognises it once its process is gone. */
export function tempPath(finalPath: string): string {
  const rand = Math.random().toString(36).slice(2, 10);
  return trackTemporary(join(dirname(finalPath), `${TMP_PREFIX}${hostname()}.${process.pid}.${rand}.${basename(finalPath)}`));
}

// Every temporary name this process has handed out (and private temp folders), so that an
// interrupted run removes its temporaries at once instead of leaving them for the next run. A name
// renamed into place is simply gone by then.
const ownTemporaries = new Set<string>();

/** Registers `path` (and names that extend it, like `<path>.wal`) for removal on interrupt. */
export function trackTemporary(path: string): string {
  ownTemporaries.add(path);
  return path;
}

export function untrackTemporary(path: string): void {
  ownTemporaries.delete(path);
}

function diskSizeSync(path: string): number {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const n of readdirSync(path)) total += diskSizeSync(join(path, n));
  return total;
}

/** For a SIGINT/SIGTERM handler: removes this process's temporaries, synchronously; what was removed. */
export function removeOwnTemporariesSync(): RemovedTemporary[] {
  const removed: RemovedTemporary[] = [];
  for (const t of ownTemporaries) {
    let siblings: string[];
    try {
      siblings = readdirSync(dirname(t)).filter((n) => n === basename(t) || n.startsWith(`${basename(t)}.`));
    } catch {
      continue;
    }
    for (const name of siblings) {
      const path = join(dirname(t), name);
      const sizeBytes = diskSizeSync(path);
      try {
        rmSync(path, { recursive: true, force: true });
        removed.push({ path, sizeBytes });
      } catch {
        // left for the next run's removeStaleTemporaries
      }
    }
  }
  ownTemporaries.clear();
  return removed;
}

/** Flushes a folder's entry table so a rename in it survives a power cut. */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    // Some file systems (and Windows) cannot fsync a folder; the rename itself is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Largest single write(2). On Linux (ext4, measured on 2-core VMs) writing 1 GB in 4 MiB writes
 * cost 5-10× the kernel CPU and wall time of the same bytes in 512 KiB writes (dd shows it too).
 */
export const WRITE_PIECE = 512 * 1024;
/**
 * Every this many bytes written, a flush of what is written so far starts in the background, so
 * that the disk writes while more is produced and the flush at commit finds little left.
 */
const EARLY_FLUSH = 64 * 1024 * 1024;

/** Starts `datasync` in the background every EARLY_FLUSH bytes written (AtomicFile, restore's file sink). */
export class EarlyFlush {
  private unflushed = 0;
  private flushing: Promise<void> | null = null;
  private error: unknown = null;
  constructor(private readonly datasync: () => Promise<void>) {}

  wrote(bytes: number): void {
    this.unflushed += bytes;
    if (this.unflushed < EARLY_FLUSH || this.flushing) return;
    this.unflushed = 0;
    this.flushing = this.datasync().then(
      () => void (this.flushing = null),
      (err) => {
        this.flushing = null;
        this.error ??= err; // reported by settle, before the final flush
      },
    );
  }

  /** Waits for a flush under way; throws what a background flush failed with. */
  async settle(): Promise<void> {
    await this.flushing;
    if (this.error) throw this.error;
  }
}

export class AtomicFile {
  private done = false;
  private readonly early = new EarlyFlush(() => this.handle.datasync());
  private constructor(
    readonly finalPath: string,
    readonly tempPath: string,
    readonly handle: FileHandle,
  ) {}

  /** `mode` before the umask (see umaskFor). */
  static async create(finalPath: string, mode = 0o666): Promise<AtomicFile> {
    const tmp = tempPath(finalPath);
    try {
      return new AtomicFile(finalPath, tmp, await open(tmp, "wx", mode));
    } catch (err) {
      throw fsError(err, finalPath, "create");
    }
  }

  async write(data: Uint8Array, position?: number): Promise<void> {
    let off = 0;
    while (off < data.length) {
      const pos = position === undefined ? null : position + off;
      const { bytesWritten } = await this.handle.write(data, off, Math.min(WRITE_PIECE, data.length - off), pos);
      off += bytesWritten;
    }
    this.early.wrote(data.length);
  }

  /** Flushes and renames the file into place, replacing any file of the final name. */
  async commit(): Promise<void> {
    try {
      await this.flushAndClose();
      await renameReplacing(this.tempPath, this.finalPath);
      this.done = true;
      fsyncDir(dirname(this.finalPath));
    } catch (err) {
      await this.abort();
      throw fsError(err, this.finalPath, "write");
    }
  }

  /**
   * Flushes and moves the file to the first of `candidates` (paths in the same folder) that does
   * not exist yet; an existing file is never overwritten. Returns the path used.
   */
  async commitNew(candidates: Iterable<string>, maxTries = 1000): Promise<string> {
    try {
      await this.flushAndClose();
      let tries = 0;
      for (const path of candidates) {
        if (++tries > maxTries) break;
        if (await moveNoClobber(this.tempPath, path)) {
          this.done = true;
          fsyncDir(dirname(path));
          return path;
        }
      }
      throw new DuckbakError(`${this.finalPath}: already exists; not overwritten`);
    } catch (err) {
      await this.abort();
      throw fsError(err, this.finalPath, "write");
    }
  }

  private async flushAndClose(): Promise<void> {
    await this.early.settle();
    await this.handle.sync();
    await this.handle.close();
  }

  /** Removes the temporary; safe to call more than once and after a failed commit. */
  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.early.settle().catch(() => {});
    await this.handle.close().catch(() => {});
    await unlink(this.tempPath).catch(() => {});
  }
}

/** The target of a rename is open in another program, and Windows will not replace it (src/platform/fs.ts). */
export class FileInUseError extends DuckbakError {
  constructor(readonly path: string, options?: { cause?: unknown }) {
    super(`${path}: in use by another program, and Windows cannot replace an open file; close the program holding it and retry`, undefined, options);
  }
}

/**
 * rename(from, to), replacing `to`. On Windows a target held open by another program (a virus
 * scanner for a moment, an editor for longer) makes it fail: retried for ~3 s, then FileInUseError.
 */
export async function renameReplacing(from: string, to: string, platform: string = process.platform): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await rename(from, to);
    } catch (err) {
      if (!renameBlockedByOpenFile(platform, (err as NodeJS.ErrnoException).code)) throw err;
      const delay = WINDOWS_RENAME_RETRY_MS[attempt];
      if (delay === undefined) throw new FileInUseError(to, { cause: err });
      await Bun.sleep(delay);
    }
  }
}

/**
 * chmod for a file duckbak created: skipped on Windows (no POSIX modes), and a file system without
 * modes (FAT, exFAT, some SMB mounts) is not an error.
 */
export async function chmodIfSupported(path: string, mode: number, platform: string = process.platform): Promise<void> {
  if (!hasPosixModes(platform)) return;
  await chmod(path, mode).catch((err) => {
    if (!chmodUnsupported((err as NodeJS.ErrnoException).code)) throw err;
  });
}

/** Moves `from` to `to` unless `to` exists; false when it does. */
export async function moveNoClobber(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return false;
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP") throw err;
    // File systems without hard links: a checked rename is the best available there.
    if (await stat(to).then(() => true, () => false)) return false;
    await rename(from, to);
    return true;
  }
  await pausePoint("move:linked");
  await unlink(from);
  return true;
}

export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o666): Promise<void> {
  const f = await AtomicFile.create(path, mode);
  try {
    await f.write(typeof data === "string" ? new TextEncoder().encode(data) : data);
  } catch (err) {
    await f.abort();
    throw fsError(err, path, "write");
  }
  await f.commit();
}

/** Whether a process of this host is alive (EPERM: alive, owned by another user). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Whether the process `pid` of host `host` is known to be running: only this host's can be checked. */
export function runningHere(host: string, pid: number): boolean {
  return host === hostname() && pidAlive(pid);
}

export interface RemovedTemporary {
  path: string;
  sizeBytes: number;
}

/** Bytes under `path` (a file, or a folder's files), without following links; 0 if it is gone. */
export async function diskSize(path: string): Promise<number> {
  const st = await lstat(path).catch(() => null);
  if (!st?.isDirectory()) return st?.size ?? 0;
  const names = await readdir(path).catch(() => [] as string[]);
  let total = 0;
  for (const n of names) total += await diskSize(join(path, n));
  return total;
}

/** Removes temporaries left in `dir` by duckbak runs on this host that have died. */
export async function removeStaleTemporaries(dir: string): Promise<RemovedTemporary[]> {
  const removed: RemovedTemporary[] = [];
  const names = await readdir(dir).catch(() => [] as string[]);
  const host = hostname();
  for (const name of names) {
    if (!name.startsWith(TMP_PREFIX)) continue;
    const rest = name.slice(TMP_PREFIX.length);
    if (!rest.startsWith(host + ".")) continue;
    const pid = Number(rest.slice(host.length + 1).split(".")[0]);
    if (!Number.isInteger(pid) || pidAlive(pid)) continue;
    // Folders too: export builds its output folder under a temporary name.
    const path = join(dir, name);
    const sizeBytes = await diskSize(path);
    await rm(path, { recursive: true, force: true }).then(() => removed.push({ path, sizeBytes }), () => {});
  }
  return removed;
}

/** `length` bytes at `offset`, fewer only at the end of the file. */
export async function readAt(file: FileHandle, offset: number, length: number): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  return buf.subarray(0, await readInto(file, offset, buf));
}

/** Fills `target` from `offset` (fewer bytes only at the end of the file); returns how many. */
export async function readInto(file: FileHandle, offset: number, target: Uint8Array): Promise<number> {
  let got = 0;
  while (got < target.length) {
    const { bytesRead } = await file.read(target, got, target.length - got, offset + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}
