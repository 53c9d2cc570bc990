// The backup folder's lock between real duckbak processes: waiting runs give up with exit 11
// naming the holder, a killed run's lock is broken with a warning, and `unlock` removes one by hand.
// The repository's lock as readers meet it: what an exit 11 suggests (--lock-wait) is accepted.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { LOCK_FILE_NAME } from "../../src/core/lock.ts";
import { BINARY, ROOT, runBinary, runSql, startWriter, tempDir } from "../helpers.ts";

/**
 * A `duckbak backup` that holds the folder's lock while it waits for a database a writer holds;
 * resolves once the lock file exists.
 */
async function heldFolder() {
  const dir = tempDir();
  const [busy, idle] = ["busy", "idle"].map((name) => join(dir, `${name}.duckdb`)) as [string, string];
  for (const db of [busy, idle]) await runSql(db, ["CREATE TABLE t AS SELECT 1 AS x"]);
  const writer = await startWriter(busy);
  const bk = join(dir, "bk");
  const holder = Bun.spawn([BINARY, "backup", busy, "--backup-dir", bk, "--wait", "60"], { stdout: "pipe", stderr: "pipe" });
  const lock = join(bk, LOCK_FILE_NAME);
  while (!existsSync(lock)) await Bun.sleep(10);
  return { dir, bk, idle, lock, writer, holder };
}

describe("backup folder lock", () => {
  test("a second run waits --lock-wait seconds, then exits 11 with a one-line error naming the holder", async () => {
    const { dir, bk, idle, writer, holder } = await heldFolder();
    try {
      const started = Date.now();
      const r = await runBinary(["backup", idle, "--backup-dir", bk, "--lock-wait", "1"]);
      expect(r.code).toBe(11);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
      const holderText = `duckbak backup (PID ${holder.pid} on ${hostname()}, since `;
      const [waiting, error, ...rest] = r.stderr.trim().split("\n");
      expect(waiting).toStartWith(`duckbak: backup folder locked by ${holderText}`);
      expect(waiting).toEndWith("; waiting up to 1s");
      expect(error).toStartWith(`duckbak: error: ${join(bk, LOCK_FILE_NAME)}: backup folder locked by ${holderText}`);
      expect(error).toContain("gave up after waiting 1s");
      expect(rest).toEqual([]);

      writeFileSync(join(dir, "duckbak.toml"), `databases = [${JSON.stringify(idle)}]\nbackup_dir = "bk"\n`);
      const daily = await runBinary(["daily", "--lock-wait", "0"], { cwd: dir });
      expect(daily.code).toBe(11);
      const log = readFileSync(join(dir, "data/backup.log"), "utf8");
      expect(log).toMatch(new RegExp(`level=error event=error run=\\w+ error=".*locked by duckbak backup \\(PID ${holder.pid} `));
      expect(log).toMatch(/level=error event=end run=\w+ status=failed exit_code=11 /);
      expect((await runBinary(["status"], { cwd: dir })).code).toBe(12);
    } finally {
      await writer.stop();
    }
    expect(await holder.exited).toBe(0);
    expect(existsSync(join(bk, LOCK_FILE_NAME))).toBe(false);
  });

  test("the lock of a killed run is broken with a warning; the lock file is never listed", async () => {
    const { bk, idle, lock, writer, holder } = await heldFolder();
    try {
      expect(JSON.parse((await runBinary(["list", "--backup-dir", bk, "--json"])).stdout).backups).toEqual([]);
      holder.kill("SIGKILL");
      await holder.exited;
      expect(JSON.parse(readFileSync(lock, "utf8")).pid).toBe(holder.pid);
      const r = await runBinary(["backup", idle, "--backup-dir", bk, "--lock-wait", "0"]);
      expect(r.code).toBe(0);
      expect(r.stderr).toContain(`duckbak: warning: removed the lock of duckbak backup (PID ${holder.pid} on ${hostname()}, since `);
      expect(r.stderr).toContain("which is no longer running");
      expect(existsSync(lock)).toBe(false);
    } finally {
      await writer.stop();
    }
  });

  test("an interrupted run removes its own lock", async () => {
    const { lock, writer, holder } = await heldFolder();
    try {
      holder.kill("SIGTERM");
      expect(await holder.exited).toBe(143);
      expect(existsSync(lock)).toBe(false);
    } finally {
      await writer.stop();
    }
  });

  test("duckbak unlock removes a lock by hand and says whose it was", async () => {
    const { bk, lock, writer, holder } = await heldFolder();
    try {
      holder.kill("SIGKILL");
      await holder.exited;
      const r = await runBinary(["unlock", "--backup-dir", bk]);
      expect(r.code).toBe(0);
      expect(r.stdout).toStartWith(`Removed ${lock}, the lock of duckbak backup (PID ${holder.pid} on ${hostname()}, since `);
      expect(existsSync(lock)).toBe(false);
      const again = await runBinary(["unlock", "--backup-dir", bk]);
      expect(again.stdout).toBe(`No lock in ${bk}\n`);
    } finally {
      await writer.stop();
    }
  });

  test("runs in separate processes that all find a dead run's lock hold the folder one at a time", async () => {
    const dir = tempDir();
    const dead = Bun.spawn(["true"]);
    await dead.exited;
    const stale = { pid: dead.pid, host: hostname(), started_at: new Date().toISOString(), command: "daily" };
    writeFileSync(join(dir, LOCK_FILE_NAME), JSON.stringify(stale) + "\n");
    const log = join(dir, "holds.log");
    const runs = Array.from({ length: 6 }, () => Bun.spawn([process.execPath, join(ROOT, "test/fixtures/locker.ts"), dir, log], { stderr: "inherit" }));
    await Bun.sleep(500); // all started and polling
    writeFileSync(join(dir, "go"), "");
    expect(await Promise.all(runs.map((r) => r.exited))).toEqual(Array(6).fill(0));
    const events = readFileSync(log, "utf8").trim().split("\n").map((l) => l.split(" "));
    expect(events.length).toBe(12);
    // Strictly alternating enter/exit of the same process: never two holders at once.
    for (let i = 0; i < events.length; i += 2) {
      expect([events[i]![0], events[i + 1]![0]]).toEqual(["enter", "exit"]);
      expect(events[i]![1]).toBe(events[i + 1]![1]);
    }
    expect(existsSync(join(dir, LOCK_FILE_NAME))).toBe(false);
  });
});


describe("repository lock held by a cleanup", () => {
  test("verify suggests --lock-wait and accepts it (waits, then runs once the cleanup is gone); list and stats run beside it", async () => {
    const dir = tempDir();
    const repo = join(dir, "repo");
    const db = join(dir, "a.duckdb");
    const env = { ...process.env, NO_COLOR: "1", DUCKBAK_PASSWORD: "pw-lock" } as Record<string, string>;
    const run = (args: string[]) => runBinary(args, { env });
    expect((await run(["init", "--repo", repo])).code).toBe(0);
    for (const n of [100, 200]) {
      await runSql(db, [`CREATE OR REPLACE TABLE t AS SELECT range AS i FROM range(${n})`, "CHECKPOINT"]);
      expect((await run(["backup", "--repo", repo, db])).code).toBe(0);
    }
    // A cleanup stopped while it holds the exclusive lock.
    const cleanup = Bun.spawn([BINARY, "cleanup", "--repo", repo, "--keep-last", "1"], { env: { ...env, DUCKBAK_TEST_PAUSE: "repo:after-forget" }, stdout: "ignore", stderr: "pipe" });
    try {
      const reader = cleanup.stderr.getReader();
      for (let e = ""; !e.includes("duckbak-test-paused"); ) e += new TextDecoder().decode((await reader.read()).value);
      const refused = await run(["verify", "--repo", repo, "--lock-wait", "0"]);
      expect(refused.code).toBe(11);
      expect(refused.stderr.trim().split("\n")).toEqual([expect.stringMatching(new RegExp(`^duckbak: error: ${repo}: locked by cleanup \\(PID ${cleanup.pid} .*; retry later or with --lock-wait SECONDS$`))]);
      for (const cmd of ["list", "stats"]) {
        const r = await run([cmd, "--repo", repo, "--json"]);
        expect([cmd, r.code, r.stderr]).toEqual([cmd, 0, ""]);
      }
      // What the error suggests works: a verify that waits runs once the cleanup is gone.
      const waiting = Bun.spawn([BINARY, "verify", "--repo", repo, "--lock-wait", "60"], { env, stdout: "pipe", stderr: "pipe" });
      const waitErr = waiting.stderr.getReader();
      let said = "";
      while (!said.includes("\n")) said += new TextDecoder().decode((await waitErr.read()).value);
      expect(said).toStartWith(`duckbak: repository locked by cleanup (PID ${cleanup.pid} on ${hostname()}); waiting up to 60s\n`);
      cleanup.kill("SIGKILL");
      await cleanup.exited;
      expect(await waiting.exited).toBe(0);
      expect(await new Response(waiting.stdout).text()).toContain("OK");
    } finally {
      cleanup.kill("SIGKILL");
    }
  });
});
