// backup --hot through the compiled binary: a database a writer keeps open is copied
// crash-consistently (checked, opened, every table read) or refused with the reason, never copied
// plainly; and DuckDB's side files left by a crash travel with their database.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { query, ROOT, runBinary, runSql, tempDir } from "../helpers.ts";

/** A writer that commits 105,000 rows (5,000 of them only in the WAL) and keeps the database open. */
async function startHotWriter(db: string): Promise<{ stop: () => Promise<void> }> {
  const script = `
    import { DuckDBInstance } from "@duckdb/node-api";
    const i = await DuckDBInstance.create(${JSON.stringify(db)});
    const c = await i.connect();
    await c.run("CREATE TABLE t AS SELECT range AS x FROM range(100000)");
    await c.run("CHECKPOINT");
    await c.run("INSERT INTO t SELECT range FROM range(5000)");
    console.log("ready");
    for await (const _ of Bun.stdin.stream());`;
  const proc = Bun.spawn([process.execPath, "-e", script], { cwd: ROOT, stdin: "pipe", stdout: "pipe", stderr: "inherit" });
  const reader = proc.stdout.getReader();
  const { value } = await reader.read();
  if (!new TextDecoder().decode(value).includes("ready")) throw new Error("writer did not start");
  return {
    stop: async () => {
      proc.stdin.end();
      await proc.exited;
    },
  };
}

describe("backup --hot", () => {
  test("a database a writer holds: refused without --hot; with it, a crash-consistent copy that restores every commit", async () => {
    const dir = tempDir();
    const db = join(dir, "ingest.duckdb");
    const writer = await startHotWriter(db);
    try {
      const plain = await runBinary(["backup", db, "--backup-dir", join(dir, "bk")]);
      expect(plain.code).toBe(1);
      expect(plain.stderr).toContain("locked by PID");

      const r = await runBinary(["backup", db, "--backup-dir", join(dir, "bk"), "--hot", "--json"]);
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout);
      const m = out.manifest.databases[0];
      expect(m.consistency).toBe("crash-consistent");
      expect(m.hot.attempts).toBeGreaterThanOrEqual(1);
      expect(m.hot.wal_bytes_kept).toBeGreaterThan(0);
      expect(m.tables).toEqual([{ schema: "main", name: "t", rows: 105000 }]);
      expect(m.files.map((f: { name: string }) => f.name)).toEqual(["ingest.duckdb", "ingest.duckdb.wal"]);

      expect((await runBinary(["verify", out.archive])).code).toBe(0);
      const restored = await runBinary(["restore", out.archive, "--restore-dir", join(dir, "r")]);
      expect(restored.code).toBe(0);
      expect(await query(join(dir, "r/ingest.duckdb"), "SELECT count(*), sum(x) FROM t")).toEqual([[105000n, 4999950000n + 12497500n]]);
    } finally {
      await writer.stop();
    }
  }, 90_000);

  test("hot = true in the config; a copy that cannot be proven consistent is refused with the reason, not copied plainly", async () => {
    const dir = tempDir();
    const db = join(dir, "ingest.duckdb");
    const other = join(dir, "other.duckdb");
    await runSql(other, ["CREATE TABLE o AS SELECT 1 AS x"]);
    writeFileSync(
      join(dir, "duckbak.toml"),
      `databases = ["other.duckdb"]\nbackup_dir = "bk"\n[[database]]\npath = "ingest.duckdb"\nhot = true\n`,
    );
    const writer = await startHotWriter(db);
    try {
      // A checkpoint in progress leaves `.wal.checkpoint` (DuckDB v1.5): every attempt must refuse.
      writeFileSync(`${db}.wal.checkpoint`, "");
      const r = await runBinary(["backup", "--hot-retries", "2"], { cwd: dir });
      expect(r.code).toBe(3);
      expect(r.stderr).toContain(
        `FAILED  ${db}: no consistent hot copy in 3 attempts (last: a checkpoint is under way (.wal.checkpoint exists)); not backed up.`,
      );
      expect(r.stdout).toContain("ok      other.duckdb");
    } finally {
      await writer.stop();
    }
  }, 90_000);

  test(".wal.checkpoint and .wal.recovery left by a crash are backed up with their database; restore leaves one file", async () => {
    const dir = tempDir();
    const db = join(dir, "c.duckdb");
    await runSql(db, ["CREATE TABLE t AS SELECT 1 AS x"]);
    writeFileSync(`${db}.wal.checkpoint`, "");
    writeFileSync(`${db}.wal.recovery`, "");
    // Not DuckDB's: a user's file, and a database whose name starts like a side file.
    writeFileSync(`${db}.wal.old`, "mine");
    await runSql(`${db}.wal.x.duckdb`, ["CREATE TABLE y AS SELECT 2 AS x"]);
    const r = await runBinary(["backup", db, `${db}.wal.x.duckdb`, "--backup-dir", join(dir, "bk"), "--json"]);
    expect(r.code).toBe(0);
    const dbs = JSON.parse(r.stdout).manifest.databases;
    expect(dbs[0].files.map((f: { name: string }) => f.name)).toEqual(["c.duckdb", "c.duckdb.wal.checkpoint", "c.duckdb.wal.recovery"]);
    expect(dbs[1].files.map((f: { name: string }) => f.name)).toEqual(["c.duckdb.wal.x.duckdb"]);
    const restored = await runBinary(["restore", JSON.parse(r.stdout).archive, "--restore-dir", join(dir, "r")]);
    expect(restored.code).toBe(0);
    // Restore folds what DuckDB makes of them into the one file it moves into place.
    expect(readdirSync(join(dir, "r")).sort()).toEqual(["c.duckdb", "c.duckdb.wal.x.duckdb"]);
    expect(await query(join(dir, "r/c.duckdb"), "SELECT x FROM t")).toEqual([[1]]);
    expect(readFileSync(`${db}.wal.old`, "utf8")).toBe("mine");
  }, 60_000);
});
