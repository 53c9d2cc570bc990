// Repository locks as objects under locks/, restic-style, so that they work on any store (S3 has
// no fcntl): a run writes its own lock object, then lists the others. Backups take shared locks
// (any number at once); cleanup's garbage collection takes an exclusive one, so it never deletes
// a pack that a running backup is about to refer to. A lock is refreshed every few minutes; one
// that is older than STALE_MS, or whose process (on this host) is gone, is ignored and removed.
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { DuckbakError, ExitCode } from "../errors.ts";
import { pidAlive } from "../fsutil.ts";
import { isLockName, type Repository } from "./repository.ts";

export interface RepoLockInfo {
  host: string;
  pid: number;
  command: string;
  exclusive: boolean;
  time: string;
}

const REFRESH_MS = 5 * 60_000;
const STALE_MS = 30 * 60_000;

export class RepositoryLockedError extends DuckbakError {
  constructor(location: string, holder: RepoLockInfo, waited: number) {
    super(
      `${location}: locked by ${holder.command} (PID ${holder.pid} on ${holder.host}, since ${holder.time})${waited ? ` after waiting ${waited}s` : ""}; retry later or with --lock-wait SECONDS`,
      ExitCode.REPO_LOCKED,
    );
  }
}

export interface HeldRepoLock {
  release(): Promise<void>;
}

function isStale(l: RepoLockInfo, now: number): boolean {
  if (now - Date.parse(l.time) > STALE_MS) return true;
  return l.host === hostname() && l.pid !== process.pid && !pidAlive(l.pid);
}

async function conflicts(repo: Repository, own: string, exclusive: boolean): Promise<RepoLockInfo | null> {
  for (const id of await repo.listIds("locks", isLockName)) {
    if (id === own) continue;
    let info: RepoLockInfo;
    try {
      info = await repo.getJson<RepoLockInfo>(`locks/${id}`);
    } catch {
      continue; // removed meanwhile, or not readable: not a lock of this repository's key
    }
    if (isStale(info, Date.now())) {
      await repo.store.delete(`locks/${id}`);
      continue;
    }
    if (exclusive || info.exclusive) return info;
  }
  return null;
}

const held = new Set<() => Promise<void>>();

/** Removes this process's locks (on SIGINT/SIGTERM). */
export async function releaseRepoLocks(): Promise<void> {
  await Promise.all([...held].map((r) => r()));
}

export async function lockRepository(
  repo: Repository,
  opts: { exclusive: boolean; command: string; waitSeconds?: number; onWait?: (holder: RepoLockInfo) => void },
): Promise<HeldRepoLock> {
  const deadline = Date.now() + (opts.waitSeconds ?? 0) * 1000;
  let notified = false;
  for (;;) {
    const info: RepoLockInfo = { host: hostname(), pid: process.pid, command: opts.command, exclusive: opts.exclusive, time: new Date().toISOString() };
    let key = `locks/${randomBytes(16).toString("hex")}`;
    await repo.store.put(key, repo.sealJson(info));
    const other = await conflicts(repo, key.slice(6), opts.exclusive);
    if (!other) {
      const timer = setInterval(async () => {
        const next = `locks/${randomBytes(16).toString("hex")}`;
        await repo.store.put(next, repo.sealJson({ ...info, time: new Date().toISOString() })).catch(() => {});
        const old = key;
        key = next;
        await repo.store.delete(old).catch(() => {});
      }, REFRESH_MS);
      timer.unref?.();
      const release = async () => {
        clearInterval(timer);
        held.delete(release);
        await repo.store.delete(key).catch(() => {});
      };
      held.add(release);
      return { release };
    }
    await repo.store.delete(key);
    if (Date.now() >= deadline) throw new RepositoryLockedError(repo.location, other, opts.waitSeconds ?? 0);
    if (!notified) opts.onWait?.(other);
    notified = true;
    await new Promise((r) => setTimeout(r, 500 + Math.random() * 1000));
  }
}
