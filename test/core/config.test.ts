import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { databaseSettings, loadConfig, parseConfig } from "../../src/core/config.ts";
import { ConfigError, ExitCode } from "../../src/core/errors.ts";
import { tempDir } from "../helpers.ts";

describe("config", () => {
  test("relative paths resolve against the config file's folder", () => {
    const cfg = parseConfig(
      { databases: ["data/a.duckdb", "/abs/b.duckdb"], backup_dir: "bk", log_file: "log/backup.log", compression: "zstd", wait: 30, lock_wait: 600,
        retention: { keep_days: 60, keep_minimum: 10, keep_yearly: "forever" } },
      "/etc/duckbak/duckbak.toml",
    );
    expect(cfg.databases).toEqual(["/etc/duckbak/data/a.duckdb", "/abs/b.duckdb"]);
    expect(cfg.backupDir).toBe("/etc/duckbak/bk");
    expect(cfg.logFile).toBe("/etc/duckbak/log/backup.log");
    expect(cfg.compression).toBe("zstd");
    expect(cfg.waitSeconds).toBe(30);
    expect(cfg.lockWaitSeconds).toBe(600);
    expect(cfg.retention).toEqual({ keepDays: 60, keepMinimum: 10, keepYearly: "forever" });
  });

  test("[[database]] tables add databases with their own hooks and hot setting over the global ones", () => {
    const cfg = parseConfig(
      {
        databases: ["a.duckdb"],
        before_backup: "systemctl stop app",
        after_backup: "systemctl start app",
        hook_timeout: 60,
        database: [
          { path: "a.duckdb", hot: true },
          { path: "/srv/b.duckdb", before_backup: "", after_backup: "echo done" },
        ],
      },
      "/etc/duckbak/duckbak.toml",
    );
    expect(cfg.databases).toEqual(["/etc/duckbak/a.duckdb", "/srv/b.duckdb"]);
    expect(cfg.hookTimeoutSeconds).toBe(60);
    expect(databaseSettings(cfg, "/etc/duckbak/a.duckdb")).toEqual({
      path: "/etc/duckbak/a.duckdb", hot: true, beforeBackup: "systemctl stop app", afterBackup: "systemctl start app",
    });
    expect(databaseSettings(cfg, "/srv/b.duckdb")).toEqual({ path: "/srv/b.duckdb", beforeBackup: "", afterBackup: "echo done" });
    expect(databaseSettings(cfg, "/other.duckdb").beforeBackup).toBe("systemctl stop app");
  });

  test.each([
    [{ database: { path: "a" } }, "'database' must be an array of tables ([[database]] with a path)"],
    [{ database: [{ hot: true }] }, "'database[1]' needs a 'path'"],
    [{ database: [{ path: "a", hot: "yes" }] }, "'database[1].hot' must be true or false"],
    [{ database: [{ path: "a", befor_backup: "x" }] }, "unknown key 'database[1].befor_backup'; did you mean before_backup?"],
    [{ database: [{ path: "a" }, { path: "./a" }] }, "database /x/a has two [[database]] tables"],
    [{ before_backup: 3 }, "'before_backup' must be a non-empty string"],
    [{ hook_timeout: -1 }, "'hook_timeout' must be a number of seconds >= 0"],
    [{ databses: [] }, "unknown key 'databses'; did you mean databases?"],
    [{ retention: { keep_dayz: 3 } }, "unknown key 'retention.keep_dayz'; did you mean keep_days?"],
    [{ compression: "lz4" }, "'compression' must be one of gzip, zstd, none, not 'lz4'"],
    [{ databases: "a.duckdb" }, "'databases' must be a list of file paths"],
    [{ retention: { keep_days: -1 } }, "'retention.keep_days' must be a whole number >= 0"],
    [{ wait: "soon" }, "'wait' must be a number of seconds >= 0"],
    [{ lock_wait: -5 }, "'lock_wait' must be a number of seconds >= 0"],
  ])("rejects %p", (raw, message) => {
    let err: unknown;
    try {
      parseConfig(raw as Record<string, unknown>, "/x/duckbak.toml");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toBe(`/x/duckbak.toml: ${message}`);
    expect((err as ConfigError).exitCode).toBe(ExitCode.USAGE);
  });

  test("reads duckbak.toml from the working directory, and reports bad TOML with the file name", () => {
    const dir = tempDir();
    expect(loadConfig(undefined, dir).file).toBeNull();
    writeFileSync(join(dir, "duckbak.toml"), 'databases = ["x.duckdb"]\nbackup_dir = "out"\n');
    expect(loadConfig(undefined, dir).databases).toEqual([join(dir, "x.duckdb")]);
    writeFileSync(join(dir, "bad.toml"), "databases = [\n");
    expect(() => loadConfig("bad.toml", dir)).toThrow(join(dir, "bad.toml") + ": invalid TOML");
    expect(() => loadConfig("missing.toml", dir)).toThrow(join(dir, "missing.toml") + ": config file not found");
  });

  test("max_unused: a percentage as text or a number, else an error naming the key", () => {
    expect(parseConfig({ max_unused: "25%" }, "/etc/duckbak/duckbak.toml").maxUnused).toBe(0.25);
    expect(parseConfig({ max_unused: 5 }, "/etc/duckbak/duckbak.toml").maxUnused).toBe(0.05);
    expect(parseConfig({}, "/etc/duckbak/duckbak.toml").maxUnused).toBeUndefined();
    for (const bad of ["150%", "lots", -1, true]) expect(() => parseConfig({ max_unused: bad }, "/etc/duckbak/duckbak.toml")).toThrow("'max_unused' must be a percentage");
  });
});
