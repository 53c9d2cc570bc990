// `duckbak diff NAME`: a backup against the current databases, through the compiled binary.
import { describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { runBinary, runSql, startWriter, tempDir } from "../helpers.ts";

/** A database, backed up as `before`, in its own folder. */
async function backedUp(statements: string[]): Promise<{ dir: string; db: string; bk: string }> {
  const dir = tempDir();
  const db = join(dir, "shop.duckdb");
  const bk = join(dir, "bk");
  await runSql(db, statements);
  const r = await runBinary(["backup", db, "--backup-dir", bk, "--name", "before"]);
  if (r.code !== 0) throw new Error(r.stderr);
  return { dir, db, bk };
}

const SHOP = [
  "CREATE TABLE orders AS SELECT range AS id, range * 1.5 AS amount FROM range(1000)",
  "CREATE TABLE customers (id INTEGER, name VARCHAR)",
  "INSERT INTO customers VALUES (1, 'Ann'), (2, 'Bob')",
  "CREATE TABLE archive_2023 (id INTEGER)",
  "CREATE TABLE pairs (k INTEGER)",
  "INSERT INTO pairs VALUES (1), (1), (2), (2)",
];

describe("duckbak diff", () => {
  test("an unchanged database is identical: exit 0", async () => {
    const { bk } = await backedUp(SHOP);
    const r = await runBinary(["diff", "before", "--backup-dir", bk]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("main.orders: same (1,000 records)");
    expect(r.stdout).toContain("No differences.");
  });

  test("finds added and dropped tables, column changes, row-count and content differences: exit 5", async () => {
    const { db, bk } = await backedUp(SHOP);
    await runSql(db, [
      "INSERT INTO orders SELECT range, 0 FROM range(1000, 1042)",
      "ALTER TABLE customers ALTER COLUMN id SET DATA TYPE BIGINT",
      "ALTER TABLE customers ADD COLUMN email VARCHAR",
      "DROP TABLE archive_2023",
      "CREATE TABLE refunds (id INTEGER)",
      "INSERT INTO refunds VALUES (7)",
      // Same count, other rows: both multisets hash to 0 under XOR, which a sum tells apart.
      "DELETE FROM pairs",
      "INSERT INTO pairs VALUES (3), (3), (4), (4)",
    ]);
    const r = await runBinary(["diff", "before", "--backup-dir", bk]);
    expect(r.code).toBe(5);
    const lines = r.stdout.trim().split("\n").map((l) => l.trim());
    expect(lines).toEqual([
      `shop.duckdb: ${db} vs backup before`,
      "- main.archive_2023: dropped (had 0 records)",
      "~ main.customers: column email VARCHAR added; column id INTEGER -> BIGINT",
      "~ main.orders: Current DB: 1,042 records / Backup DB: 1,000 records / Difference: 42 records",
      "~ main.pairs: same row count (4 records), different contents",
      "+ main.refunds: added (1 records)",
      "differs",
      "Differences found in 1 of 1 database.",
    ]);
    const json = JSON.parse((await runBinary(["diff", "before", "--backup-dir", bk, "--json"])).stdout);
    expect(json.identical).toBe(false);
    const orders = json.databases[0].tables.find((t: any) => t.name === "orders");
    expect(orders).toMatchObject({ status: "changed", rows: { current: 1042, backup: 1000, difference: 42 }, contents: "different" });
  });

  test("a row updated in place (same count, one value changed) is a content difference", async () => {
    const { db, bk } = await backedUp(SHOP);
    await runSql(db, ["UPDATE orders SET amount = amount + 1 WHERE id = 500"]);
    const r = await runBinary(["diff", "before", "--backup-dir", bk, "--json"]);
    expect(r.code).toBe(5);
    const tables = JSON.parse(r.stdout).databases[0].tables;
    expect(tables.filter((t: any) => t.status !== "same").map((t: any) => [t.name, t.contents, t.rows.difference])).toEqual([["orders", "different", 0]]);
  });

  test("a DB argument compares the backup with another copy, e.g. a restored one, matched by file name", async () => {
    const { dir, db, bk } = await backedUp(SHOP);
    mkdirSync(join(dir, "restored"));
    const copy = join(dir, "restored", "shop.duckdb");
    copyFileSync(db, copy);
    await runSql(db, ["DROP TABLE orders"]);
    const r = await runBinary(["diff", join(bk, "before.tar.gz"), copy]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`shop.duckdb: ${copy} vs backup before`);
    const missing = await runBinary(["diff", "before", join(dir, "missing.duckdb"), "--backup-dir", bk]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`${join(dir, "missing.duckdb")}: database file not found`);
  });

  test("a current database held by a writer is not compared: exit 1", async () => {
    const { db, bk } = await backedUp(SHOP);
    const writer = await startWriter(db);
    try {
      const r = await runBinary(["diff", "before", "--backup-dir", bk]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${db}: locked by PID ${writer.pid}`);
      expect(r.stderr).toContain("; not compared (stop the writer or retry with --wait SECONDS)");
    } finally {
      await writer.stop();
    }
  });
});
