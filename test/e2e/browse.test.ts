// Looking into a backup: ls (the manifest, nothing extracted), sql (read-only, on a private copy
// that is removed), restore --table (one table back into a live database, in one transaction).
import { describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { createSampleDatabases, query, runBinary, runSql, startWriter, tempDir } from "../helpers.ts";
import { attachAlias, parseTableName } from "../../src/core/browse.ts";

const dir = tempDir();
const data = join(dir, "data");
const results = join(data, "results.duckdb");
const env = (tmp: string) => ({ ...process.env, NO_COLOR: "1", TMPDIR: tmp });

async function setup(): Promise<void> {
  if (readdirSync(dir).length > 0) return;
  await createSampleDatabases(data, { trades: 300 });
  await runSql(results, [
    "CREATE SCHEMA analytics",
    "CREATE TABLE analytics.daily(d DATE PRIMARY KEY, pnl DOUBLE NOT NULL DEFAULT 0)",
    "INSERT INTO analytics.daily SELECT DATE '2024-01-01' + INTERVAL (i) DAY, i * 1.5 FROM range(40) t(i)",
  ]);
  expect((await runBinary(["backup", "--name", "b1"], { cwd: dir })).code).toBe(0);
}

describe("pure parts", () => {
  test("table names: table, schema.table, quoted names", () => {
    expect(parseTableName("trades")).toEqual({ schema: "main", name: "trades" });
    expect(parseTableName("analytics.daily")).toEqual({ schema: "analytics", name: "daily" });
    expect(parseTableName('"my.schema"."odd ""name"""')).toEqual({ schema: "my.schema", name: 'odd "name"' });
    expect(() => parseTableName("a.b.c")).toThrow("expected TABLE or SCHEMA.TABLE");
  });
  test("attach names: the file name without .duckdb, the archive entry when two share it", () => {
    const a = { name: "results.duckdb", entry: "results.duckdb" };
    const b = { name: "results.duckdb", entry: "2-results.duckdb" };
    expect(attachAlias(a, [a])).toBe("results");
    expect(attachAlias(b, [a, b])).toBe("2-results");
  });
});

describe("ls", () => {
  test("databases, tables with row counts, size, DuckDB version, consistency; JSON too", async () => {
    await setup();
    const r = await runBinary(["ls", "b1"], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^results\.duckdb {2}[\d.]+ [KM]iB, 4 tables, 710 rows$/m);
    expect(r.stdout).toMatch(/DuckDB v1\.\d+\.\d+ \(storage \d+\), read by v[\d.]+; consistency: read-lock/);
    expect(r.stdout).toMatch(/^ {4}main\.portfolio_trades +300$/m);
    expect(r.stdout).toMatch(/^ {4}analytics\.daily +40$/m);
    const j = JSON.parse((await runBinary(["ls", "b1", "--json"], { cwd: dir })).stdout);
    expect(j.ok).toBe(true);
    const db = j.databases.find((d: any) => d.name === "results.duckdb");
    expect(db).toMatchObject({ consistency: "read-lock", rows: 710, original_path: results });
    expect(db.tables).toContainEqual({ schema: "analytics", name: "daily", rows: 40 });
    expect(db.duckdb.creator_version).toMatch(/^v1\./);
    expect((await runBinary(["ls", "nope"], { cwd: dir })).code).toBe(10);
  });
});

describe("sql", () => {
  test("a query on the backup's databases, as a table or JSON rows; the private copy is removed", async () => {
    await setup();
    const tmp = join(dir, "tmp-sql");
    mkdirSync(tmp);
    const r = await runBinary(["sql", "b1", "SELECT symbol, count(*) AS n FROM results.portfolio_trades GROUP BY ALL ORDER BY 1"], { cwd: dir, env: env(tmp) });
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n").slice(0, 3)).toEqual(["symbol  n", "AAPL    60", "AMZN    60"]);
    expect(r.stdout).toContain("(5 rows)");
    // One database (--only): its tables without a prefix.
    const j = await runBinary(["sql", "b1", "--only", "results.duckdb", "SELECT count(*) AS n, max(pnl) AS top FROM analytics.daily", "--json"], { cwd: dir, env: env(tmp) });
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: true, columns: ["n", "top"], rows: [{ n: "40", top: 58.5 }], row_count: 1 });
    expect(readdirSync(tmp)).toEqual([]);
  });

  test("read-only: no writes to the backup's databases, no file access; a bad query names the databases", async () => {
    await setup();
    const tmp = join(dir, "tmp-ro");
    mkdirSync(tmp);
    const write = await runBinary(["sql", "b1", "DELETE FROM results.portfolio_trades"], { cwd: dir, env: env(tmp) });
    expect(write.code).toBe(1);
    expect(write.stderr).toContain("read-only");
    const file = await runBinary(["sql", "b1", `COPY (SELECT 1) TO '${join(dir, "leak.csv")}'`], { cwd: dir, env: env(tmp) });
    expect(file.code).toBe(1);
    expect(readdirSync(dir)).not.toContain("leak.csv");
    const bad = await runBinary(["sql", "b1", "SELECT * FROM portfolio_trades"], { cwd: dir, env: env(tmp) });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("(databases: audit_trail, results, tca)");
    expect(readdirSync(tmp)).toEqual([]);
  });
});

describe("restore --table", () => {
  test("a dropped table comes back with its rows and constraints; an existing one is refused unless --replace", async () => {
    await setup();
    await runSql(results, ["DROP TABLE analytics.daily", "DROP TABLE portfolio_trades", "CREATE TABLE keep_me AS SELECT 1 AS x"]);
    const r = await runBinary(["restore", "b1", "--table", "analytics.daily", "--into", results], { cwd: dir });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("restored  table analytics.daily (40 rows) from results.duckdb of b1");
    expect(await query(results, "SELECT count(*), sum(pnl) FROM analytics.daily")).toEqual([[40n, 1170]]);
    // The table's definition came too: the primary key and NOT NULL hold.
    await expect(runSql(results, ["INSERT INTO analytics.daily VALUES (DATE '2024-01-01', 1)"])).rejects.toThrow(/[Dd]uplicate key/);
    expect((await runBinary(["restore", "b1", "--table", "portfolio_trades", "--into", results], { cwd: dir })).code).toBe(0);
    expect(await query(results, "SELECT count(*) FROM portfolio_trades")).toEqual([[300n]]);

    await runSql(results, ["DELETE FROM portfolio_trades WHERE trade_id >= 10"]);
    const refused = await runBinary(["restore", "b1", "--table", "portfolio_trades", "--into", results], { cwd: dir });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("table main.portfolio_trades already exists (use --replace");
    expect(await query(results, "SELECT count(*) FROM portfolio_trades")).toEqual([[10n]]);
    const replaced = await runBinary(["restore", "b1", "--table", "portfolio_trades", "--into", results, "--replace", "--json"], { cwd: dir });
    expect(replaced.code).toBe(0);
    expect(JSON.parse(replaced.stdout)).toMatchObject({ ok: true, schema: "main", table: "portfolio_trades", rows: 300, replaced: true });
    expect(await query(results, "SELECT count(*) FROM portfolio_trades")).toEqual([[300n]]);
    expect(await query(results, "SELECT x FROM keep_me")).toEqual([[1]]);
  });

  test("one transaction: when the table cannot be dropped, the live database is left as it was", async () => {
    await setup();
    const target = join(dir, "fk.duckdb");
    await runSql(target, [
      "CREATE TABLE portfolio_trades(trade_id BIGINT PRIMARY KEY)",
      "INSERT INTO portfolio_trades VALUES (1), (2)",
      "CREATE TABLE child(t BIGINT REFERENCES portfolio_trades(trade_id))",
      "INSERT INTO child VALUES (1)",
    ]);
    const r = await runBinary(["restore", "b1", "--table", "portfolio_trades", "--into", target, "--replace"], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${target}: `);
    expect(r.stderr).toContain("table main.portfolio_trades not restored");
    expect(await query(target, "SELECT count(*) FROM portfolio_trades")).toEqual([[2n]]);
  });

  test("a live database held by a writer: a clear error, nothing changed; unknown table: exit 10", async () => {
    await setup();
    const target = join(dir, "held.duckdb");
    await runSql(target, ["CREATE TABLE x AS SELECT 1 AS i"]);
    const writer = await startWriter(target);
    try {
      const r = await runBinary(["restore", "b1", "--table", "portfolio_trades", "--into", target], { cwd: dir });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`${target}: locked by PID ${writer.pid}`);
      expect(r.stderr).toContain("table main.portfolio_trades not restored");
    } finally {
      await writer.stop();
    }
    expect(await query(target, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'portfolio_trades'")).toEqual([[0n]]);
    const missing = await runBinary(["restore", "b1", "--table", "nope", "--into", target], { cwd: dir });
    expect(missing.code).toBe(10);
    expect(missing.stderr).toContain("no table main.nope");
    const usage = await runBinary(["restore", "b1", "--table", "x"], { cwd: dir });
    expect(usage.code).toBe(2);
  });
});
