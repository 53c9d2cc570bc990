// The backup folder's lock as the commands that change a folder take it (backup, cleanup, daily;
// restore too): the wait comes from --lock-wait or the config, and waiting or breaking a dead
// run's lock is said on stderr.
import type { Config } from "../core/config.ts";
import { ExitCode } from "../core/errors.ts";
import { removeOwnTemporariesSync } from "../core/fsutil.ts";
import { releaseRepoLocks } from "../core/repo/locks.ts";
import { runInterruptedHooks } from "../core/hooks.ts";
import { acquireRepoLock, DEFAULT_LOCK_WAIT_SECONDS, describeHolder, releaseHeldLocks, type LockHolder } from "../core/lock.ts";
import { parseSeconds } from "./context.ts";
import { formatBytes, plural, printNote, printWarning } from "./output.ts";

export const LOCK_WAIT_OPTION = ["--lock-wait <seconds>", `Wait up to this long for another duckbak run on the backup folder (default ${DEFAULT_LOCK_WAIT_SECONDS})`] as const;

export function lockWaitSeconds(flag: unknown, config: Config): number {
  return parseSeconds("--lock-wait", flag) ?? config.lockWaitSeconds ?? DEFAULT_LOCK_WAIT_SECONDS;
}

export function lockNotices(waitSeconds: number) {
  return {
    onWait: (holder: LockHolder | null) => printNote(`backup folder locked by ${describeHolder(holder)}; waiting up to ${waitSeconds}s`),
    onBreak: (holder: LockHolder) => printWarning(`removed the lock of ${describeHolder(holder)}, which is no longer running`),
  };
}

let handlersInstalled = false;

/**
 * Ctrl-C (SIGINT) or SIGTERM: an interrupted run first ends its hooks and runs every owed
 * after_backup hook (the application must not stay stopped), removes its lock rather than leave it
 * for the next run to break, removes its temporaries at once, and says so in one line. Every file
 * duckbak writes reaches its name by a rename, so nothing half-written is left. Installed by main
 * for every command.
 */
export function releaseLocksOnSignal(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const [signal, code] of [["SIGINT", ExitCode.INTERRUPTED], ["SIGTERM", 143]] as const) {
    process.on(signal, () => {
      if (interrupted) process.exit(code);
      interrupted = true;
      runInterruptedHooks();
      releaseHeldLocks();
      const removed = removeOwnTemporariesSync();
      const bytes = removed.reduce((n, t) => n + t.sizeBytes, 0);
      const temps = removed.length ? `removed ${plural(removed.length, "temporary file")} (${formatBytes(bytes)})` : "no temporary files to remove";
      process.stderr.write(`duckbak: interrupted (${signal}): nothing half-written was left; ${temps}\n`);
      // Repository locks are objects in a store: give their removal a moment, not forever.
      const exit = () => process.exit(code);
      setTimeout(exit, 3000).unref();
      releaseRepoLocks().then(exit, exit);
    });
  }
}
let interrupted = false;

export async function withRepoLock<T>(backupDir: string, command: string, waitSeconds: number, fn: () => Promise<T>): Promise<T> {
  releaseLocksOnSignal();
  const lock = await acquireRepoLock(backupDir, { command, waitSeconds, ...lockNotices(waitSeconds) });
  try {
    return await fn();
  } finally {
    lock.release();
  }
}
