// `duckbak daily` and `duckbak status` through the compiled binary: the log a user greps, runs
// that take turns on one folder, and the exit codes a monitoring system acts on.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createBackup } from "../../src/core/backup.ts";
import { LOCK_FILE_NAME } from "../../src/core/lock.ts";
import { parseLogLine, type LogRecord } from "../../src/core/log.ts";
import { BINARY, createSampleDatabases, runBinary, startWriter, tempDir } from "../helpers.ts";

const DAY = 86_400_000;

async function project(config: string): Promise<{ dir: string; dbs: string[]; configPath: string }> {
  const dir = tempDir();
  const dbs = await createSampleDatabases(join(dir, "data"), { trades: 2000 });
  const configPath = join(dir, "duckbak.toml");
  writeFileSync(configPath, config);
  return { dir, dbs, configPath };
}

function logRecords(path: string): LogRecord[] {
  const lines = readFileSync(path, "utf8").trimEnd().split("\n");
  const records = lines.map(parseLogLine);
  expect(records.filter((r) => r === null)).toEqual([]);
  return records as LogRecord[];
}

const runOf = (records: LogRecord[], run: string) => records.filter((r) => r.fields.run === run);

describe("duckbak daily", () => {
  test("logs one line per event: start, each database with bytes and duration, failures, deletions, cleanup, end", async () => {
    const { dir, dbs, configPath } = await project(
      'databases = ["data/results.duckdb", "data/missing.duckdb"]\nbackup_dir = "bk"\nlog_file = "logs/duckbak.log"\n' +
        "[retention]\nkeep_days = 30\nkeep_minimum = 1\n",
    );
    const old = (await createBackup({ databases: [dbs[0]!], backupDir: join(dir, "bk"), now: new Date(Date.now() - 40 * DAY) })).archive!;
    const oldBytes = statSync(old).size;
    const missing = join(dir, "data/missing.duckdb");
    const logFile = join(dir, "logs/duckbak.log");

    const partial = await runBinary(["daily", "--config", configPath], { cwd: "/" });
    expect(partial.code).toBe(3);
    expect(partial.stderr).toContain(`FAILED  ${missing}: database file not found`);
    expect(partial.stdout).toContain("Cleanup skipped: 1 of 2 databases failed; no backup is deleted until all are backed up.");
    let log = logRecords(logFile);
    expect(log.map((l) => [l.level, l.event])).toEqual([
      ["info", "start"],
      ["info", "locked"],
      ["info", "database"],
      ["error", "database"],
      ["info", "backup"],
      ["warn", "cleanup"],
      ["error", "end"],
    ]);
    expect(new Set(log.map((l) => l.fields.run)).size).toBe(1);
    expect(log[0]!.fields).toMatchObject({ command: "daily", config: configPath, backup_dir: join(dir, "bk"), databases: "2" });
    expect(log[2]!.fields).toMatchObject({ status: "ok", path: dbs[0], bytes: String(statSync(dbs[0]!).size) });
    expect(log[2]!.fields.duration_ms).toMatch(/^\d+$/);
    expect(log[3]!.fields).toMatchObject({ status: "failed", path: missing, error: `${missing}: database file not found` });
    expect(log[4]!.fields).toMatchObject({ databases_ok: "1", databases_failed: "1" });
    expect(existsSync(log[4]!.fields.archive!)).toBe(true);
    // The old backup may hold the failing database's only copy.
    expect(log[5]!.fields).toMatchObject({ status: "skipped", reason: "1 of 2 databases failed; no backup is deleted until all are backed up" });
    expect(existsSync(old)).toBe(true);
    expect(log[6]!.fields).toMatchObject({ status: "partial", exit_code: "3" });
    expect(Date.now() - log[6]!.time.getTime()).toBeLessThan(60_000);

    writeFileSync(configPath, readFileSync(configPath, "utf8").replace(', "data/missing.duckdb"', ""));
    const full = await runBinary(["daily", "--config", configPath], { cwd: "/" });
    expect(full.code).toBe(0);
    expect(full.stdout).toContain("Cleanup: Deleted 1 backup");
    log = logRecords(logFile).slice(7);
    expect(log.map((l) => [l.level, l.event])).toEqual([
      ["info", "start"],
      ["info", "locked"],
      ["info", "database"],
      ["info", "backup"],
      ["info", "delete"],
      ["info", "cleanup"],
      ["info", "end"],
    ]);
    expect(log[4]!.fields).toMatchObject({ path: old, bytes: String(oldBytes) });
    expect(existsSync(old)).toBe(false);
    expect(log[5]!.fields).toMatchObject({ kept: "2", deleted: "1", freed_bytes: String(oldBytes) });
    expect(log[6]!.fields).toMatchObject({ status: "ok", exit_code: "0" });
  });

  test("when every database fails the run fails with exit 1", async () => {
    const { dir, configPath } = await project('databases = ["data/gone.duckdb"]\nbackup_dir = "bk"\n');
    const r = await runBinary(["daily", "--config", configPath]);
    expect(r.code).toBe(1);
    const log = logRecords(join(dir, "data/backup.log"));
    expect(log.map((l) => l.event)).toEqual(["start", "locked", "database", "backup", "cleanup", "end"]);
    expect(log[4]!.fields).toMatchObject({ status: "skipped", reason: "1 of 1 databases failed; no backup is deleted until all are backed up" });
    expect(log[5]!.fields).toMatchObject({ status: "failed", exit_code: "1" });
  });

  test("two runs on one folder take turns under the lock, and both back up intact", async () => {
    const { dir, dbs, configPath } = await project('backup_dir = "bk"\nwait = 20\n');
    // The writer makes the first run wait inside the lock, so the second one surely meets it.
    const writer = await startWriter(dbs[0]!, 1500);
    const spawn = () => Bun.spawn([BINARY, "daily", "--config", configPath], { stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
    const first = spawn();
    while (!existsSync(join(dir, "bk", LOCK_FILE_NAME))) await Bun.sleep(10);
    const second = spawn();
    const [code1, code2] = await Promise.all([first.exited, second.exited]);
    await writer.stop();
    expect([code1, code2]).toEqual([0, 0]);
    expect(await new Response(second.stderr).text()).toContain(`backup folder locked by duckbak daily (PID ${first.pid} on `);

    const log = logRecords(join(dir, "data/backup.log"));
    const runs = [first.pid, second.pid].map((pid) => log.find((l) => l.event === "start" && l.fields.pid === String(pid))!.fields.run!);
    const [a, b] = runs.map((run) => runOf(log, run));
    expect(b!.find((l) => l.event === "lock_wait")!.fields.holder).toContain(`PID ${first.pid}`);
    const span = (lines: LogRecord[]) => [lines.find((l) => l.event === "locked")!.time, lines.find((l) => l.event === "end")!.time];
    expect(span(b!)[0]!.getTime()).toBeGreaterThanOrEqual(span(a!)[1]!.getTime());

    const listed = JSON.parse((await runBinary(["list", "--backup-dir", join(dir, "bk"), "--json"])).stdout).backups;
    expect(listed.map((l: any) => [l.error, l.databases.length])).toEqual([
      [null, 3],
      [null, 3],
    ]);
    for (const backup of listed) expect((await runBinary(["verify", backup.path])).code).toBe(0);
  });
});

describe("duckbak status", () => {
  test("fresh backups and a good last daily: 0; a failed last daily: 12, naming what failed", async () => {
    const { dbs, configPath } = await project('backup_dir = "bk"\n');
    expect((await runBinary(["daily", "--config", configPath])).code).toBe(0);
    const ok = await runBinary(["status", "--config", configPath]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain("Status: OK");
    expect(ok.stdout).toMatch(/Last daily run: .*, ok \(exit 0\)/);

    const writer = await startWriter(dbs[2]!);
    try {
      expect((await runBinary(["daily", "--config", configPath])).code).toBe(3);
    } finally {
      await writer.stop();
    }
    const failed = await runBinary(["status", "--config", configPath, "--json"]);
    expect(failed.code).toBe(12);
    const report = JSON.parse(failed.stdout);
    expect(report.databases.map((d: any) => d.stale)).toEqual([false, false, false]);
    expect(report.last_daily).toMatchObject({ status: "partial", exit_code: 3 });
    expect(report.problems).toEqual([expect.stringMatching(new RegExp(`^last daily run \\(.*\\) failed \\(exit 3\\): ${dbs[2]}: locked by PID ${writer.pid}`))]);
  });

  test("a database without a backup newer than --max-age: 12; a longer --max-age: 0", async () => {
    const { dir, dbs, configPath } = await project('backup_dir = "bk"\n');
    await createBackup({ databases: dbs, backupDir: join(dir, "bk"), now: new Date(Date.now() - 3 * DAY) });
    const stale = await runBinary(["status", "--config", configPath]);
    expect(stale.code).toBe(12);
    expect(stale.stdout).toContain("Status: STALE");
    for (const db of dbs) expect(stale.stdout).toMatch(new RegExp(`  - ${db}: newest backup backup_\\d+_\\d+ is 3d 0h old, over the maximum of 1d 2h`));
    expect(stale.stdout).toContain(`Last daily run: none in ${join(dir, "data/backup.log")}`);

    expect((await runBinary(["status", "--config", configPath, "--max-age", "4d"])).code).toBe(0);
    writeFileSync(configPath, `backup_dir = "bk"\ndatabases = ["data/results.duckdb", "data/new.duckdb"]\n`);
    const missing = await runBinary(["status", "--config", configPath, "--max-age", "4d"]);
    expect(missing.code).toBe(12);
    expect(missing.stdout).toContain(`  - ${join(dir, "data/new.duckdb")}: no backup`);

    const bad = await runBinary(["status", "--config", configPath, "--max-age", "26"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("invalid duration '26'");
  });
});
