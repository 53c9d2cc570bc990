// `duckbak export` and `duckbak import` through the compiled binary (Parquet and CSV are built into
// its DuckDB; nothing is downloaded).
import { describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { createSampleDatabases, query, runBinary, runSql, startWriter, tempDir, withSmallDisk, sha256File } from "../helpers.ts";


async function sample(): Promise<{ dir: string; db: string }> {
  const dir = tempDir();
  const [db] = await createSampleDatabases(join(dir, "data"), { trades: 5000 });
  return { dir, db: db! };
}

describe("duckbak export", () => {
  test("defaults: Parquet/zstd into ./<db>_export_<UTC time>, with schema, load script and a checksummed manifest", async () => {
    const { dir, db } = await sample();
    const r = await runBinary(["export", db], { cwd: dir });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const [name] = readdirSync(dir).filter((n) => n.startsWith("results_export_"));
    expect(name).toMatch(/^results_export_\d{8}_\d{6}$/);
    const out = join(dir, name!);
    expect(r.stdout).toContain(`Export created: ${out} (full, parquet/zstd, 3 tables, 5,370 rows`);
    expect(readdirSync(out).sort()).toEqual(["data", "export.json", "load.sql", "schema.sql"]);
    expect(readdirSync(join(out, "data")).sort()).toEqual(["0001_portfolio_equity.parquet", "0002_portfolio_positions.parquet", "0003_portfolio_trades.parquet"]);
    const m = JSON.parse(readFileSync(join(out, "export.json"), "utf8"));
    expect(m).toMatchObject({ format: "duckbak-export", file_format: "parquet", compression: "zstd", incremental: null, complete: true });
    expect(m.source.path).toBe(db);
    expect(m.tables.map((t: any) => [t.name, t.rows])).toEqual([["portfolio_equity", 365], ["portfolio_positions", 5], ["portfolio_trades", 5000]]);
    for (const f of m.files) expect(sha256File(join(out, f.path))).toBe(f.sha256);
    expect(m.files.map((f: any) => f.path)).toEqual(["schema.sql", "load.sql", ...m.tables.map((t: any) => t.file)]);
    const parquet = await query(db, `SELECT DISTINCT compression FROM parquet_metadata('${join(out, m.tables[2].file)}') LIMIT 1`);
    expect(parquet).toEqual([["ZSTD"]]);
  });

  test("schema.sql and load.sql rebuild the database without duckbak", async () => {
    const { dir, db } = await sample();
    const out = join(dir, "exp");
    expect((await runBinary(["export", db, "--out", out])).code).toBe(0);
    const rebuilt = join(dir, "manual.duckdb");
    const instance = await DuckDBInstance.create(rebuilt);
    const con = await instance.connect();
    try {
      // Relative data paths resolve against the export folder, as when run from inside it.
      await con.run(`SET file_search_path = '${out}'`);
      await con.run(readFileSync(join(out, "schema.sql"), "utf8"));
      await con.run(readFileSync(join(out, "load.sql"), "utf8"));
    } finally {
      con.closeSync();
      instance.closeSync();
    }
    const fingerprint = "SELECT count(*), sum(hash(trade_id, ts, symbol, side, quantity, price)) FROM portfolio_trades";
    expect(await query(rebuilt, fingerprint)).toEqual(await query(db, fingerprint));
  });

  test("CSV with gzip round-trips through import; --json reports the manifest", async () => {
    const { dir, db } = await sample();
    const out = join(dir, "csv");
    const r = await runBinary(["export", db, "--format", "csv", "--compression", "gzip", "--table", "portfolio_trades", "--out", out, "--json"]);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.manifest.complete).toBe(false);
    expect(result.manifest.tables.map((t: any) => t.file)).toEqual(["data/0001_portfolio_trades.csv.gz"]);
    expect(readFileSync(join(out, "data/0001_portfolio_trades.csv.gz")).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    const target = join(dir, "from-csv.duckdb");
    const imp = await runBinary(["import", out, "--into", target]);
    expect(imp.code).toBe(0);
    expect(imp.stderr).toContain("the export holds only some tables or rows; tables it does not hold were created empty");
    const fingerprint = "SELECT count(*), sum(hash(trade_id, ts, symbol, side, quantity, price)) FROM portfolio_trades";
    expect(await query(target, fingerprint)).toEqual(await query(db, fingerprint));
    expect(await query(target, "SELECT count(*) FROM portfolio_equity")).toEqual([[0n]]);
  });

  test("an existing non-empty --out is refused; an empty one is used", async () => {
    const { dir, db } = await sample();
    const full = join(dir, "full");
    mkdirSync(full);
    writeFileSync(join(full, "keep.txt"), "mine");
    const r = await runBinary(["export", db, "--out", full]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${full}: already exists and is not an empty folder; not overwritten`);
    expect(readdirSync(full)).toEqual(["keep.txt"]);
    const empty = join(dir, "empty");
    mkdirSync(empty);
    expect((await runBinary(["export", db, "--out", empty])).code).toBe(0);
    expect(readdirSync(empty)).toContain("export.json");
    expect(readdirSync(dir).filter((n) => n.startsWith(".duckbak-tmp"))).toEqual([]);
  });

  test("a database held by a writer is refused naming its PID; --wait waits for it", async () => {
    const { dir, db } = await sample();
    const writer = await startWriter(db);
    try {
      const r = await runBinary(["export", db, "--out", join(dir, "x")]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${db}: locked by PID ${writer.pid}`);
      expect(r.stderr).toContain("not exported (stop the writer or retry with --wait SECONDS)");
      expect(readdirSync(dir).sort()).toEqual(["data"]);
    } finally {
      await writer.stop();
    }
    const brief = await startWriter(db, 1500);
    const started = Date.now();
    const r = await runBinary(["export", db, "--out", join(dir, "y"), "--wait", "30"]);
    expect(r.code).toBe(0);
    expect(Date.now() - started).toBeGreaterThan(1000);
    await brief.stop();
  });
});

describe("duckbak import", () => {
  test("incremental: --since exports the recent rows; --append adds them once and refuses the same export again", async () => {
    const dir = tempDir();
    const db = join(dir, "availability.duckdb");
    await runSql(db, [
      "CREATE TABLE daily_availability (date DATE, symbol VARCHAR, available BOOLEAN, PRIMARY KEY (date, symbol))",
      "INSERT INTO daily_availability SELECT DATE '2024-01-01' + INTERVAL (d) DAY, 'S' || s, true FROM range(30) t(d), range(4) u(s)",
    ]);
    const replica = join(dir, "replica.duckdb");
    expect((await runBinary(["export", db, "--out", join(dir, "full")])).code).toBe(0);
    expect((await runBinary(["import", join(dir, "full"), "--into", replica])).code).toBe(0);
    await runSql(db, ["INSERT INTO daily_availability SELECT DATE '2024-01-31' + INTERVAL (d) DAY, 'S' || s, false FROM range(3) t(d), range(4) u(s)"]);

    const inc = await runBinary(["export", db, "--since", "2024-01-31", "--date-column", "date", "--out", join(dir, "inc")]);
    expect(inc.code).toBe(0);
    expect(inc.stdout).toContain("main.daily_availability  12 rows, date 2024-01-31 .. 2024-02-02");
    expect(inc.stdout).toContain("(incremental since 2024-01-31, parquet/zstd, 1 table, 12 rows");
    const first = await runBinary(["import", join(dir, "inc"), "--into", replica, "--append", "--json"]);
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ mode: "append", rows: 12, tables: [{ name: "daily_availability", rows: 12 }] });
    const again = await runBinary(["import", join(dir, "inc"), "--into", replica, "--append"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("was already imported on");
    const fingerprint = "SELECT count(*), sum(hash(date, symbol, available)) FROM daily_availability";
    expect(await query(replica, fingerprint)).toEqual(await query(db, fingerprint));
  });

  test("refuses to overwrite an existing database, an append to a locked one, and a missing --into", async () => {
    const { dir, db } = await sample();
    const out = join(dir, "exp");
    expect((await runBinary(["export", db, "--out", out])).code).toBe(0);
    const exists = await runBinary(["import", out, "--into", db]);
    expect(exists.code).toBe(1);
    expect(exists.stderr).toContain(`${db}: already exists; import builds a new database (use --append to add the export's rows to it)`);
    const writer = await startWriter(db);
    try {
      const before = sha256File(db);
      const locked = await runBinary(["import", out, "--into", db, "--append"]);
      expect(locked.code).toBe(1);
      expect(locked.stderr).toContain(`${db}: locked by PID ${writer.pid}`);
      expect(locked.stderr).toContain("; not imported into (stop the writer or retry with --wait SECONDS)");
      expect(sha256File(db)).toBe(before);
    } finally {
      await writer.stop();
    }
    const usage = await runBinary(["import", out]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("--into DATABASE is required");
  });

  test("a full disk fails the export with one line naming the file, and leaves nothing behind", async () => {
    const dir = tempDir();
    const db = join(dir, "big.duckdb");
    await runSql(db, ["CREATE TABLE t AS SELECT range AS id, md5(range::VARCHAR) AS s FROM range(100000)"]);
    await withSmallDisk(dir, "300k", async (mnt) => {
      const r = await runBinary(["export", db, "--format", "csv", "--out", join(mnt, "exp")]);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toContain("No space left on device");
      expect(readdirSync(mnt)).toEqual([]);
    });
  });
});
