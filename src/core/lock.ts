// The repository lock: one duckbak run at a time changes a backup folder (backup, cleanup, daily,
// restore). The lock is a small JSON file naming its holder, created atomically: it is written
// under a temporary name and hard-linked into place, which fails if a lock exists, so no run ever
// sees a half-written lock.
import { link, mkdir, open, readFile, stat, unlink } from "node:fs/promises";
import { readFileSync, unlinkSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, join, resolve } from "node:path";
import { DuckbakError, ExitCode, fsError } from "./errors.ts";
import { AtomicFile, fsyncDir, pidAlive } from "./fsutil.ts";

/** Starts with a dot, so `list` and `cleanup` never take it for an archive. */
export const LOCK_FILE_NAME = ".duckbak.lock";
export const DEFAULT_LOCK_WAIT_SECONDS = 60;
const POLL_MS = 200;

export interface LockHolder {
  pid: number;
  host: string;
  /** ISO 8601, UTC. */
  started_at: string;
  /** The duckbak command holding it: backup, cleanup, daily, restore. */
  command: string;
}

export function describeHolder(holder: LockHolder | null): string {
  if (!holder) return "an unknown process (the lock file is unreadable)";
  return `duckbak ${holder.command} (PID ${holder.pid} on ${holder.host}, since ${holder.started_at})`;
}

export class RepoLockedError extends DuckbakError {
  constructor(
    readonly lockFile: string,
    readonly holder: LockHolder | null,
    waitedSeconds: number,
  ) {
    super(
      `${lockFile}: backup folder locked by ${describeHolder(holder)}; gave up after waiting ${waitedSeconds}s ` +
        "(if that run is gone, remove the lock with duckbak unlock)",
      ExitCode.REPO_LOCKED,
    );
  }
}

export function lockPath(backupDir: string): string {
  return join(resolve(backupDir), LOCK_FILE_NAME);
}

function parseHolder(raw: string): LockHolder | null {
  try {
    const h = JSON.parse(raw);
    const ok = Number.isInteger(h?.pid) && typeof h.host === "string" && typeof h.started_at === "string" && typeof h.command === "string";
    return ok ? { pid: h.pid, host: h.host, started_at: h.started_at, command: h.command } : null;
  } catch {
    return null;
  }
}

async function readRaw(path: string): Promise<string | null> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw fsError(err, path, "read lock");
  }
}

/** The backup folder's lock: null when unlocked; its holder is null when the file is unreadable. */
export async function readLock(backupDir: string): Promise<{ holder: LockHolder | null } | null> {
  const raw = await readRaw(lockPath(backupDir));
  return raw === null ? null : { holder: parseHolder(raw) };
}

/**
 * A lock left by a run of this host that has died; a lock of another host is never judged. One
 * with this process's PID that this process does not hold was left by an earlier process that had
 * the same PID (PIDs repeat, in containers especially, after a kill).
 */
function isStale(holder: LockHolder, raw: string): boolean {
  if (holder.host !== hostname()) return false;
  if (holder.pid === process.pid) return !claimed.has(raw);
  return !pidAlive(holder.pid);
}

/** Creates `path` holding `content` unless it exists; false when it does. */
async function createExclusive(path: string, content: string): Promise<boolean> {
  const tmp = await AtomicFile.create(path);
  try {
    await tmp.write(new TextEncoder().encode(content));
    await tmp.handle.sync();
    await tmp.handle.close();
    await link(tmp.tempPath, path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return false;
    if (code === "EPERM" || code === "ENOTSUP" || code === "EOPNOTSUPP") return createWithoutLinks(path, content);
    throw fsError(err, path, "create lock");
  } finally {
    await tmp.abort();
  }
  fsyncDir(dirname(path));
  return true;
}

/** File systems without hard links (FAT): O_EXCL, where a crash mid-write leaves an unreadable lock. */
async function createWithoutLinks(path: string, content: string): Promise<boolean> {
  let handle;
  try {
    handle = await open(path, "wx");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw fsError(err, path, "create lock");
  }
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return true;
}

/** A breaker that died mid-break leaves its marker; after this long it is no longer respected. */
const BREAK_MARKER_MAX_AGE_MS = 30_000;

/**
 * Removes the lock if it still holds exactly `staleRaw`. Breakers take turns through an
 * exclusive marker file: while one holds it, the lock can only be removed by that breaker (its
 * dead owner never will) and no new lock can appear before it is removed, so the comparison and
 * the removal cannot be split by another run taking the folder.
 */
async function breakStale(path: string, staleRaw: string): Promise<boolean> {
  const marker = `${path}.break`;
  if (!(await createExclusive(marker, `${process.pid}\n`))) {
    const age = await stat(marker).then((st) => Date.now() - st.mtimeMs, () => 0);
    if (age > BREAK_MARKER_MAX_AGE_MS) await unlink(marker).catch(() => {});
    return false;
  }
  try {
    if ((await readRaw(path)) !== staleRaw) return false;
    await unlink(path).catch((err) => {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw fsError(err, path, "break stale lock");
    });
    fsyncDir(dirname(path));
    return true;
  } finally {
    await unlink(marker).catch(() => {});
  }
}

export interface AcquireOptions {
  /** The duckbak command taking the lock, recorded for whoever finds it. */
  command: string;
  /** How long to wait for another run's lock; default 60 s. */
  waitSeconds?: number;
  /** Called once, when another run holds the lock and waiting starts. */
  onWait?: (holder: LockHolder | null) => void;
  /** Called when the lock of a dead run of this host is removed. */
  onBreak?: (holder: LockHolder) => void;
}

const held = new Set<RepoLock>();
/** Lock contents this process has written or is writing: a lock is ours from before its link lands. */
const claimed = new Set<string>();

export class RepoLock {
  constructor(
    readonly path: string,
    readonly holder: LockHolder,
    readonly raw: string,
  ) {
    held.add(this);
  }

  /** Removes the lock if it is still ours (`duckbak unlock` may have removed it meanwhile). */
  release(): void {
    held.delete(this);
    claimed.delete(this.raw);
    try {
      if (readFileSync(this.path, "utf8") === this.raw) unlinkSync(this.path);
    } catch {
      // Already gone.
    }
  }
}

/** Releases every lock this process holds: for a signal handler, just before the process exits. */
export function releaseHeldLocks(): void {
  for (const lock of held) lock.release();
}

/** Takes the backup folder's lock (creating the folder), waiting for another run up to `waitSeconds`. */
export async function acquireRepoLock(backupDir: string, opts: AcquireOptions): Promise<RepoLock> {
  const dir = resolve(backupDir);
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw fsError(err, dir, "prepare backup folder");
  }
  const path = join(dir, LOCK_FILE_NAME);
  const holder: LockHolder = { pid: process.pid, host: hostname(), started_at: new Date().toISOString(), command: opts.command };
  // The nonce tells apart two locks of one process taken in the same millisecond.
  const raw = JSON.stringify({ ...holder, nonce: Math.random().toString(36).slice(2, 10) }) + "\n";
  const waitSeconds = opts.waitSeconds ?? DEFAULT_LOCK_WAIT_SECONDS;
  const deadline = Date.now() + waitSeconds * 1000;
  let waiting = false;
  for (;;) {
    claimed.add(raw);
    const created = await createExclusive(path, raw).catch((err) => {
      claimed.delete(raw);
      throw err;
    });
    if (created) return new RepoLock(path, holder, raw);
    claimed.delete(raw);
    const otherRaw = await readRaw(path);
    if (otherRaw === null) continue;
    const other = parseHolder(otherRaw);
    if (other && isStale(other, otherRaw)) {
      if (await breakStale(path, otherRaw)) opts.onBreak?.(other);
      else await Bun.sleep(POLL_MS / 4); // another run is breaking it
      continue;
    }
    const left = deadline - Date.now();
    if (left <= 0) throw new RepoLockedError(path, other, waitSeconds);
    if (!waiting) opts.onWait?.(other);
    waiting = true;
    await Bun.sleep(Math.min(POLL_MS, left));
  }
}

/** `duckbak unlock`: removes the lock whoever holds it, returning it as readLock does. */
export async function removeRepoLock(backupDir: string): Promise<{ holder: LockHolder | null } | null> {
  const path = lockPath(backupDir);
  const raw = await readRaw(path);
  if (raw === null) return null;
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw fsError(err, path, "remove lock");
  }
  fsyncDir(dirname(path));
  return { holder: parseHolder(raw) };
}
