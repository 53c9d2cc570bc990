// The library as an application would use it: no CLI, no printing, typed results.
import { describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { hostname } from "node:os";
import { RepoLockedError } from "../../src/core/lock.ts";
import { BackupManager, createBackup, createDailyBackup, DatabaseNotFoundError } from "../../src/core/index.ts";
import { createSampleDatabases, query, tempDir } from "../helpers.ts";

describe("library", () => {
  test("two backups in the same second never overwrite each other", async () => {
    const dir = tempDir();
    const [db] = await createSampleDatabases(join(dir, "data"), { trades: 100 });
    const now = new Date("2024-01-15T12:00:00Z");
    const a = await createBackup({ databases: [db!], backupDir: join(dir, "bk"), now });
    const b = await createBackup({ databases: [db!], backupDir: join(dir, "bk"), now, compression: "zstd" });
    expect(a.archive).toBe(join(dir, "bk/backup_20240115_120000.tar.gz"));
    expect(b.archive).toBe(join(dir, "bk/backup_20240115_120000_2.tar.zst"));
    expect(readdirSync(join(dir, "bk")).sort()).toEqual(["backup_20240115_120000.tar.gz", "backup_20240115_120000_2.tar.zst"]);
  });

  test("BackupManager: create, list, verify, restore", async () => {
    const dir = tempDir();
    const dbs = await createSampleDatabases(join(dir, "data"), { trades: 500 });
    const manager = new BackupManager({ backupDir: join(dir, "bk"), databases: [...dbs, join(dir, "data/missing.duckdb")] });
    const created = await manager.createBackup({ name: "my_backup" });
    expect(created.archive).toBe(join(dir, "bk/my_backup.tar.gz"));
    const missing = created.databases.find((d) => !d.ok);
    expect(missing && !missing.ok && missing.error).toBeInstanceOf(DatabaseNotFoundError);

    const list = await manager.listBackups();
    expect(list.map((b) => [b.name, b.manifest?.databases.length])).toEqual([["my_backup", 3]]);

    const verified = await manager.verifyBackup("my_backup");
    expect(verified.ok).toBe(true);
    expect(verified.databases.map((d) => d.checks.open)).toEqual(["ok", "ok", "ok"]);

    const restored = await manager.restoreBackup("my_backup", { restoreDir: join(dir, "out"), only: ["results.duckdb"] });
    expect(restored.databases.map((d) => d.target)).toEqual([join(dir, "out/results.duckdb")]);
    expect(await query(join(dir, "out/results.duckdb"), "SELECT count(*) FROM portfolio_trades")).toEqual([[500n]]);
  });

  test("createDailyBackup backs up, cleans up by the seed's policy and logs; cleanupOldBackups keeps the minimum", async () => {
    const dir = tempDir();
    const dbs = await createSampleDatabases(join(dir, "data"), { trades: 100 });
    const backupDir = join(dir, "bk");
    for (let day = 1; day <= 7; day++)
      await createBackup({ databases: dbs, backupDir, now: new Date(`2020-01-0${day}T02:00:00Z`) });
    const daily = await createDailyBackup({ backupDir, databases: dbs, logFile: join(dir, "backup.log") });
    expect(daily.exitCode).toBe(0);
    // Default policy: older than 30 days goes, but the 5 newest stay: today's and four from 2020.
    expect(daily.cleanup?.deleted.map((b) => b.name)).toEqual(["backup_20200103_020000", "backup_20200102_020000", "backup_20200101_020000"]);
    const log = readFileSync(join(dir, "backup.log"), "utf8");
    expect(log).toContain("event=start");
    expect(log).toMatch(/event=end .*status=ok/);

    const manager = new BackupManager({ backupDir });
    const dry = await manager.cleanupOldBackups({ keepDays: 0, keepMinimum: 2 }, { dryRun: true });
    expect(dry.deleted.length).toBe(3);
    expect(readdirSync(backupDir).filter((n) => n.endsWith(".tar.gz")).length).toBe(5);
  });

  test("cleanup never deletes the last backup of a database, whatever the policy counts", async () => {
    const dir = tempDir();
    const [a, b] = await createSampleDatabases(join(dir, "data"), { trades: 100 });
    const backupDir = join(dir, "bk");
    await createBackup({ databases: [b!], backupDir, now: new Date("2020-01-01T00:00:00Z"), name: "only_b" });
    for (let day = 2; day <= 4; day++) await createBackup({ databases: [a!], backupDir, now: new Date(`2020-01-0${day}T00:00:00Z`) });
    const manager = new BackupManager({ backupDir });
    const r = await manager.cleanupOldBackups({ keepDays: 1, keepMinimum: 1 });
    expect(r.deleted.map((d) => d.name)).toEqual(["backup_20200103_000000", "backup_20200102_000000"]);
    expect(r.kept.find((k) => k.backup.name === "only_b")?.reasons).toEqual(["last backup of audit_trail.duckdb"]);
  });

  test("BackupManager takes the backup folder's lock, as the CLI does", async () => {
    const dir = tempDir();
    const dbs = await createSampleDatabases(join(dir, "data"), { trades: 100 });
    const backupDir = join(dir, "bk");
    mkdirSync(backupDir);
    const other = Bun.spawn(["sleep", "30"]);
    try {
      const holder = { pid: other.pid, host: hostname(), started_at: new Date().toISOString(), command: "daily" };
      writeFileSync(join(backupDir, ".duckbak.lock"), JSON.stringify(holder) + "\n");
      const manager = new BackupManager({ backupDir, databases: dbs, lockWaitSeconds: 0.3 });
      await expect(manager.createBackup()).rejects.toBeInstanceOf(RepoLockedError);
      expect(readdirSync(backupDir)).toEqual([".duckbak.lock"]);
    } finally {
      other.kill();
    }
  });
});

