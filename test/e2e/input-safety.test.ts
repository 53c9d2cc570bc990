// Inputs that once made duckbak exit 0 without doing what was asked, or write what it then refused.
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runBinary, runSql, sh, tempDir } from "../helpers.ts";

describe("arguments", () => {
  test("a database file name that starts with a dash is never help-and-exit-0: refused with how to name it, or taken after --", async () => {
    const dir = tempDir();
    await runSql(join(dir, "-dash.duckdb"), ["CREATE TABLE t AS SELECT 1 AS x"]);
    const bad = await runBinary(["backup", "-dash.duckdb", "--backup-dir", "bk"], { cwd: dir });
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe("");
    expect(bad.stderr).toContain("unknown option '-dash.duckdb' (for a file name that starts with a dash, write ./-dash.duckdb or put it after --)");
    expect(existsSync(join(dir, "bk"))).toBe(false);
    for (const args of [["--", "-dash.duckdb"], ["./-dash.duckdb"]]) {
      const ok = await runBinary(["backup", "--backup-dir", "bk", "--json", ...args], { cwd: dir });
      expect(ok.code).toBe(0);
      expect(JSON.parse(ok.stdout).databases[0].path).toBe(join(dir, "-dash.duckdb"));
    }
    expect(readdirSync(join(dir, "bk")).filter((n) => n.endsWith(".tar.gz"))).toHaveLength(2);
  });

  test("negative numbers are invalid values (exit 2), not unknown options", async () => {
    const dir = tempDir();
    const cases: [string[], string][] = [
      [["cleanup", "--keep-days", "-1"], "invalid value for --keep-days: -1 (must be a whole number >= 0)"],
      [["backup", "x.duckdb", "--wait", "-3"], "invalid value for --wait: -3 (must be a number of seconds >= 0)"],
      [["cleanup", "--keep-daily", "1.5"], "invalid value for --keep-daily: 1.5 (must be a whole number >= 0)"],
    ];
    for (const [args, message] of cases) {
      const r = await runBinary([...args, "--backup-dir", "bk"], { cwd: dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(message);
    }
    expect(readdirSync(dir)).toEqual([]);
  });

  test("schedule install --at 25:61 exits 2 before creating anything", async () => {
    const dir = tempDir();
    const r = await runBinary(["schedule", "install", "--at", "25:61", "--dry-run"], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('invalid time "25:61"');
    expect(readdirSync(dir)).toEqual([]);
    const real = await runBinary(["schedule", "install", "--at", "25:61", "--method", "cron"], { cwd: dir });
    expect(real.code).toBe(2);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe("restore targets", () => {
  test("--restore-dir naming a regular file: one line saying so (archive and repository), exit 1, the file untouched", async () => {
    const dir = tempDir();
    const db = join(dir, "a.duckdb");
    await runSql(db, ["CREATE TABLE t AS SELECT range AS i FROM range(100)"]);
    const env = { ...process.env, NO_COLOR: "1", DUCKBAK_PASSWORD: "pw-target" } as Record<string, string>;
    expect((await runBinary(["backup", db, "--backup-dir", "bk", "--name", "b1"], { cwd: dir, env })).code).toBe(0);
    expect((await runBinary(["init", "--repo", "repo"], { cwd: dir, env })).code).toBe(0);
    expect((await runBinary(["backup", db, "--repo", "repo"], { cwd: dir, env })).code).toBe(0);
    const file = join(dir, "X");
    writeFileSync(file, "not a folder\n");
    for (const args of [["b1", "--backup-dir", "bk"], ["latest", "--repo", "repo"]]) {
      const r = await runBinary(["restore", ...args, "--restore-dir", file], { cwd: dir, env });
      expect([args[0], r.code, r.stderr]).toEqual([args[0], 1, `duckbak: error: ${file}: is a file, not a folder\n`]);
    }
    expect(readFileSync(file, "utf8")).toBe("not a folder\n");
    expect(readdirSync(dir).sort()).toEqual(["X", "a.duckdb", "bk", "repo"]);
  });
});

describe("names", () => {
  test("a database name the archive reader would reject is refused at backup, with the reason; the others are backed up", async () => {
    const dir = tempDir();
    mkdirSync(join(dir, "data"));
    const odd = join(dir, "data", "a\nb.duckdb");
    await runSql(odd, ["CREATE TABLE t AS SELECT 1 AS x"]);
    await runSql(join(dir, "data", "ok.duckdb"), ["CREATE TABLE t AS SELECT 1 AS x"]);
    const r = await runBinary(["backup", odd, join(dir, "data", "ok.duckdb"), "--backup-dir", "bk", "--name", "n"], { cwd: dir });
    expect(r.code).toBe(3);
    expect(r.stderr + r.stdout).toContain(`${dir}/data/a\\nb.duckdb: its file name contains a newline, which an archive cannot hold; rename the file`);
    // What was written, verify and restore accept.
    expect((await runBinary(["verify", "n", "--backup-dir", "bk"], { cwd: dir })).code).toBe(0);
    expect((await runBinary(["restore", "n", "--backup-dir", "bk", "--restore-dir", "r"], { cwd: dir })).code).toBe(0);
    expect(readdirSync(join(dir, "r"))).toEqual(["ok.duckdb"]);
    const alone = await runBinary(["backup", odd, "--backup-dir", "bk"], { cwd: dir });
    expect(alone.code).not.toBe(0);
  });
});

describe.skipIf(process.platform !== "linux" || process.getuid?.() !== 0)("errors name what the user gave", () => {
  test("restore onto a read-only file system names the database, not a temporary, and is no internal error", async () => {
    const dir = tempDir();
    const mnt = join(dir, "ro");
    mkdirSync(mnt);
    await sh(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", mnt]);
    try {
      const db = join(mnt, "a.duckdb");
      await runSql(db, ["CREATE TABLE t AS SELECT 1 AS x"]);
      expect((await runBinary(["backup", db, "--backup-dir", join(dir, "bk"), "--name", "a"])).code).toBe(0);
      await sh(["mount", "-o", "remount,ro", mnt]);
      const r = await runBinary(["restore", "a", "--backup-dir", join(dir, "bk")]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`duckbak: error: ${db}: read-only file system (create)\n`);
    } finally {
      await sh(["umount", mnt]);
    }
  });
});
