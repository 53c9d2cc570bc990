// before_backup / after_backup through the compiled binary: they wrap only the copy of their own
// database, see the documented environment, fail only their database, and the after hook runs
// once whenever the before hook ran: on success, on failure, on a timeout and on SIGTERM.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseLogLine } from "../../src/core/log.ts";
import { BINARY, createSampleDatabases, query, runBinary, runSql, startWriter, tempDir, tryOpenReadWrite } from "../helpers.ts";
import { patchStorageVersion } from "../patch-header.ts";
import { listBackups } from "../../src/core/list.ts";

async function project(toml: (dir: string) => string): Promise<{ dir: string; dbs: string[]; config: string }> {
  const dir = tempDir();
  const dbs = await createSampleDatabases(join(dir, "data"), { trades: 2000 });
  const config = join(dir, "duckbak.toml");
  writeFileSync(config, toml(dir));
  return { dir, dbs, config };
}

/** A hook that appends its name and environment to `file`. */
const record = (file: string, name: string) =>
  `echo ${name} db=$DUCKBAK_DATABASE backup=$DUCKBAK_BACKUP result=\${DUCKBAK_RESULT:-unset} >> ${file}`;

describe("backup hooks", () => {
  test("a writer stopped by before_backup and restarted by after_backup: the pair wraps only that database's copy", async () => {
    const { dir, dbs, config } = await project(() => "");
    const results = dbs[0]!;
    const writer = await startWriter(results);
    const events = join(dir, "events");
    // The after hook notes whether the archive exists yet: it must not (compression and the
    // archive come after the writer is back).
    writeFileSync(
      config,
      `databases = ["data/results.duckdb", "data/tca.duckdb"]\nbackup_dir = "bk"\nwait = 10\n` +
        `[[database]]\npath = "data/results.duckdb"\n` +
        `before_backup = "echo stopping app; kill ${writer.pid}; ${record(events, "before")}"\n` +
        `after_backup = "${record(events, "after")}; ls bk | grep -c 'tar.gz$' >> ${events}; echo app restarted >&2"\n`,
    );
    const r = await runBinary(["backup", "--config", config, "--json"], { cwd: dir });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    const lines = readFileSync(events, "utf8").trim().split("\n");
    expect(lines).toEqual([
      `before db=${results} backup=${out.archive} result=unset`,
      `after db=${results} backup=${out.archive} result=ok`,
      "0",
    ]);
    expect(out.databases[0]).toMatchObject({ path: results, ok: true });
    expect(out.databases[0].paused_ms).toBeGreaterThanOrEqual(0);
    expect(out.databases[1]).toMatchObject({ ok: true });
    expect(out.databases[1].paused_ms ?? null).toBeNull();
    // Row counts are read from the private copy after the after hook (not in the pause), the same
    // manifest fields as for a database read under the lock alone.
    const [hooked, plain] = out.manifest.databases;
    expect(hooked).toMatchObject({ consistency: "read-lock", duckdb: { reader_version: plain.duckdb.reader_version } });
    expect(hooked.tables).toContainEqual({ schema: "main", name: "portfolio_trades", rows: 2000 });
    expect(r.stderr).toContain("before_backup | stopping app");
    expect(r.stderr).toContain("after_backup | app restarted");
    // The archive holds the database as the stopped writer left it, and no private copy is left.
    const restored = await runBinary(["restore", out.archive, "--restore-dir", join(dir, "restored")], { cwd: dir });
    expect(restored.code).toBe(0);
    expect(await query(join(dir, "restored/results.duckdb"), "SELECT count(*) FROM portfolio_trades")).toEqual([[2000n]]);
    expect(readdirSync(join(dir, "bk")).filter((n) => n.startsWith("."))).toEqual([]);
  }, 60_000);

  test("a failing before hook fails its database (exit 3) after its after hook ran; the others go on; daily logs both", async () => {
    const { dir, dbs, config } = await project(
      (d) =>
        `databases = ["data/results.duckdb", "data/tca.duckdb"]\nbackup_dir = "bk"\nlog_file = "backup.log"\n` +
        `before_backup = "${record(join(d, "events"), "before")}"\nafter_backup = "${record(join(d, "events"), "after")}"\n` +
        `[[database]]\npath = "data/results.duckdb"\nbefore_backup = "echo cannot stop the app >&2; exit 7"\n`,
    );
    const r = await runBinary(["daily", "--config", config], { cwd: dir });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`FAILED  ${dbs[0]}: before_backup failed (exit code 7): cannot stop the app; not backed up`);
    const events = readFileSync(join(dir, "events"), "utf8").trim().split("\n");
    // results: only its (global) after hook, told the copy failed; tca: both global hooks.
    expect(events[0]).toMatch(new RegExp(`^after db=${dbs[0]} .* result=failed$`));
    expect(events[1]).toMatch(new RegExp(`^before db=${dbs[2]} .* result=unset$`));
    expect(events[2]).toMatch(new RegExp(`^after db=${dbs[2]} .* result=ok$`));
    const log = readFileSync(join(dir, "backup.log"), "utf8").trim().split("\n").map((l) => parseLogLine(l)!);
    const hooks = log.filter((l) => l.event === "hook").map((l) => [l.level, l.fields.hook, l.fields.path, l.fields.status, l.fields.exit_code]);
    expect(hooks).toEqual([
      ["error", "before_backup", dbs[0], "failed", "7"],
      ["info", "after_backup", dbs[0], "ok", "0"],
      ["info", "before_backup", dbs[2], "ok", "0"],
      ["info", "after_backup", dbs[2], "ok", "0"],
    ]);
    expect(log.find((l) => l.event === "hook_output")!.fields).toMatchObject({ hook: "before_backup", path: dbs[0], line: "cannot stop the app" });
    expect(log.find((l) => l.event === "database" && l.fields.path === dbs[2])!.fields.paused_ms).toMatch(/^\d+$/);
    expect((await listBackups(join(dir, "bk"))).length).toBe(1);
  }, 60_000);

  test("a before hook that hangs is killed at hook_timeout and the after hook still runs", async () => {
    const { dir, config } = await project(
      (d) =>
        `databases = ["data/results.duckdb"]\nbackup_dir = "bk"\nhook_timeout = 1\n` +
        `before_backup = "sleep 30"\nafter_backup = "${record(join(d, "events"), "after")}"\n`,
    );
    const started = Date.now();
    const r = await runBinary(["backup", "--config", config], { cwd: dir });
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(r.code).toBe(1); // its only database failed: no archive
    expect(r.stderr).toContain("before_backup timed out after 1s (hook_timeout) and was killed; not backed up");
    expect(readFileSync(join(dir, "events"), "utf8")).toContain("result=failed");
  }, 30_000);

  test("the copy failing (the writer was not stopped) still runs the after hook, with DUCKBAK_RESULT=failed", async () => {
    const { dir, dbs, config } = await project(
      (d) => `databases = ["data/results.duckdb"]\nbackup_dir = "bk"\nbefore_backup = "true"\nafter_backup = "${record(join(d, "events"), "after")}"\n`,
    );
    const writer = await startWriter(dbs[0]!);
    try {
      const r = await runBinary(["backup", "--config", config], { cwd: dir });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("locked by");
      expect(readFileSync(join(dir, "events"), "utf8")).toContain("result=failed");
    } finally {
      await writer.stop();
    }
  }, 30_000);

  test("SIGTERM while the before hook runs: the hook is ended and the after hook runs before duckbak exits", async () => {
    const { dir, config } = await project(
      (d) =>
        `databases = ["data/results.duckdb"]\nbackup_dir = "bk"\nlog_file = "backup.log"\n` +
        `before_backup = "touch ${join(d, "started")}; sleep 30"\nafter_backup = "${record(join(d, "events"), "after")}"\n`,
    );
    const proc = Bun.spawn([BINARY, "daily", "--config", config], { cwd: dir, stdout: "pipe", stderr: "pipe" });
    while (!existsSync(join(dir, "started"))) await Bun.sleep(20);
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(143);
    expect(readFileSync(join(dir, "events"), "utf8")).toContain("result=failed");
    const log = readFileSync(join(dir, "backup.log"), "utf8");
    expect(log).toMatch(/event=hook .*hook=after_backup .*status=ok/);
  }, 30_000);

  test("daily --dry-run shows the hooks it would run and runs nothing", async () => {
    const { dir, dbs, config } = await project(
      (d) =>
        `databases = ["data/results.duckdb", "data/tca.duckdb"]\nbackup_dir = "bk"\nhook_timeout = 20\nbefore_backup = "touch ${join(d, "ran")}"\n` +
        `[[database]]\npath = "data/tca.duckdb"\nafter_backup = "systemctl start tca-ingest"\n`,
    );
    const r = await runBinary(["daily", "--config", config, "--dry-run"], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`would back up ${dbs[0]}\n  before_backup (timeout 20s): touch ${join(dir, "ran")}\n`);
    expect(r.stdout).toContain(`would back up ${dbs[2]}\n  before_backup (timeout 20s): touch`);
    expect(r.stdout).toContain("after_backup  (timeout 20s, runs whatever happens once before_backup ran): systemctl start tca-ingest");
    expect(existsSync(join(dir, "ran"))).toBe(false);
    expect(existsSync(join(dir, "bk"))).toBe(false);
  });

  test("between hooks the lock is taken without DuckDB and keeps writers out; a file DuckDB cannot open is still described as raw-lock", async () => {
    const dir = tempDir();
    const db = join(dir, "app.duckdb");
    await runSql(db, ["CREATE TABLE t AS SELECT range AS id FROM range(1000)"]);
    // The lock-only holder as backup runs it between hooks: nothing about the contents, the lock until stdin closes.
    const holder = Bun.spawn([BINARY, "__lock-holder", "0", db], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
    holder.stdin.write("{}\n");
    holder.stdin.flush();
    const report = JSON.parse(new TextDecoder().decode((await holder.stdout.getReader().read()).value));
    expect(report[0]).toMatchObject({ ok: true, tables: [] });
    expect(await tryOpenReadWrite(db)).toContain("Could not set lock on file");
    holder.stdin.end();
    await holder.exited;
    expect(await tryOpenReadWrite(db)).not.toContain("Could not set lock"); // the negative control: released

    const newer = join(dir, "newer.duckdb");
    patchStorageVersion(db, newer, 69);
    writeFileSync(join(dir, "duckbak.toml"), `[[database]]\npath = "newer.duckdb"\nbefore_backup = "true"\nafter_backup = "true"\n`);
    const r = await runBinary(["backup", "newer.duckdb", "--config", join(dir, "duckbak.toml"), "--backup-dir", "bk", "--json"], { cwd: dir });
    expect(r.code).toBe(0);
    const m = JSON.parse(r.stdout).manifest.databases[0];
    expect(m).toMatchObject({ consistency: "raw-lock", tables: [] });
    // The same fields as without hooks (read under the holder's lock then).
    const plain = JSON.parse((await runBinary(["backup", "newer.duckdb", "--backup-dir", "bk", "--json"], { cwd: dir })).stdout).manifest.databases[0];
    expect(m.duckdb).toEqual(plain.duckdb);
    expect(m.duckdb.open_error).toContain("version number 69");
  }, 60_000);
});
