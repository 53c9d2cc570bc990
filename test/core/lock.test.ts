// The backup folder's lock in one process: who holds it, waiting, giving up, and breaking only the
// locks of dead runs of this host. Runs in separate processes are in test/e2e/repo-lock.test.ts.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { ExitCode } from "../../src/core/errors.ts";
import { listBackups } from "../../src/core/list.ts";
import { acquireRepoLock, LOCK_FILE_NAME, readLock, removeRepoLock, RepoLockedError, type LockHolder } from "../../src/core/lock.ts";
import { tempDir } from "../helpers.ts";

/** The PID of a process that has exited. */
async function deadPid(): Promise<number> {
  const proc = Bun.spawn(["true"]);
  await proc.exited;
  return proc.pid;
}

function writeLock(dir: string, holder: Partial<LockHolder>): void {
  const full = { pid: 1, host: hostname(), started_at: "2024-01-15T02:00:00.000Z", command: "daily", ...holder };
  writeFileSync(join(dir, LOCK_FILE_NAME), JSON.stringify(full) + "\n");
}

async function lockError(dir: string, waitSeconds: number): Promise<RepoLockedError> {
  const err = await acquireRepoLock(dir, { command: "backup", waitSeconds }).then(
    () => null,
    (e) => e,
  );
  expect(err).toBeInstanceOf(RepoLockedError);
  return err as RepoLockedError;
}

describe("repository lock", () => {
  test("records who holds it, is not an archive, and is gone once released", async () => {
    const dir = join(tempDir(), "new/backups");
    const lock = await acquireRepoLock(dir, { command: "cleanup" });
    const holder = await readLock(dir);
    expect(holder).toEqual({ holder: { pid: process.pid, host: hostname(), started_at: expect.any(String), command: "cleanup" } });
    expect(Date.parse(holder!.holder!.started_at)).toBeGreaterThan(Date.now() - 10_000);
    expect(await listBackups(dir)).toEqual([]);
    lock.release();
    expect(readdirSync(dir)).toEqual([]);
  });

  test("a second run waits, then gives up with exit 11 naming the holder", async () => {
    const dir = tempDir();
    const first = await acquireRepoLock(dir, { command: "daily" });
    const started = Date.now();
    const err = await lockError(dir, 0.5);
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    expect(err.exitCode).toBe(ExitCode.REPO_LOCKED);
    expect(err.message).toStartWith(`${join(dir, LOCK_FILE_NAME)}: backup folder locked by duckbak daily (PID ${process.pid} on ${hostname()}, since `);
    expect(err.message).toContain("gave up after waiting 0.5s");
    first.release();
  });

  test("a waiting run takes the lock as soon as it is released", async () => {
    const dir = tempDir();
    const first = await acquireRepoLock(dir, { command: "backup" });
    const waitedFor: (LockHolder | null)[] = [];
    setTimeout(() => first.release(), 300);
    const second = await acquireRepoLock(dir, { command: "daily", waitSeconds: 10, onWait: (h) => waitedFor.push(h) });
    expect(waitedFor.map((h) => h?.command)).toEqual(["backup"]);
    expect((await readLock(dir))?.holder?.command).toBe("daily");
    second.release();
  });

  test("the lock of a dead run of this host is broken, and said so", async () => {
    const dir = tempDir();
    const pid = await deadPid();
    writeLock(dir, { pid });
    const broken: LockHolder[] = [];
    const lock = await acquireRepoLock(dir, { command: "backup", waitSeconds: 0, onBreak: (h) => broken.push(h) });
    expect(broken).toEqual([{ pid, host: hostname(), started_at: "2024-01-15T02:00:00.000Z", command: "daily" }]);
    expect((await readLock(dir))?.holder?.pid).toBe(process.pid);
    lock.release();
  });

  test("several waiters at one dead lock: it is broken once, and they hold the lock one at a time", async () => {
    const dir = tempDir();
    writeLock(dir, { pid: await deadPid() });
    let breaks = 0;
    let holding = 0;
    let most = 0;
    const turn = async (i: number) => {
      const lock = await acquireRepoLock(dir, { command: `run${i}`, waitSeconds: 20, onBreak: () => breaks++ });
      most = Math.max(most, ++holding);
      await Bun.sleep(30);
      holding--;
      lock.release();
    };
    await Promise.all(Array.from({ length: 6 }, (_, i) => turn(i)));
    expect(most).toBe(1);
    expect(breaks).toBe(1);
    expect(existsSync(join(dir, LOCK_FILE_NAME))).toBe(false);
  });

  test("a lock of another host, or an unreadable one, is never broken", async () => {
    const dir = tempDir();
    writeLock(dir, { pid: await deadPid(), host: "elsewhere.example" });
    expect((await lockError(dir, 0)).message).toContain("locked by duckbak daily (PID");
    expect((await lockError(dir, 0)).message).toContain("on elsewhere.example");
    writeFileSync(join(dir, LOCK_FILE_NAME), "");
    expect((await lockError(dir, 0)).message).toContain("locked by an unknown process (the lock file is unreadable)");
    expect(existsSync(join(dir, LOCK_FILE_NAME))).toBe(true);
  });

  test("release leaves alone a lock that is no longer its own", async () => {
    const dir = tempDir();
    const mine = await acquireRepoLock(dir, { command: "backup" });
    expect((await removeRepoLock(dir))?.holder?.command).toBe("backup");
    writeLock(dir, { command: "restore" });
    const theirs = readFileSync(join(dir, LOCK_FILE_NAME), "utf8");
    mine.release();
    expect(readFileSync(join(dir, LOCK_FILE_NAME), "utf8")).toBe(theirs);
    expect(await removeRepoLock(dir)).toEqual({ holder: expect.objectContaining({ command: "restore" }) });
    expect(await removeRepoLock(dir)).toBeNull();
  });
});
