// Sample databases shaped like the seed's: results.duckdb (portfolio tables), audit_trail.duckdb
// and tca.duckdb. Used by the demo, the tests and the benchmark.
import { DuckDBInstance } from "@duckdb/node-api";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

export async function runSql(path: string, statements: string[]): Promise<void> {
  const instance = await DuckDBInstance.create(path);
  const con = await instance.connect();
  try {
    for (const sql of statements) await con.run(sql);
  } finally {
    con.closeSync();
    instance.closeSync();
  }
}

export async function createSampleDatabases(dir: string, opts: { trades?: number } = {}): Promise<string[]> {
  const trades = opts.trades ?? 20_000;
  mkdirSync(dir, { recursive: true });
  const results = join(dir, "results.duckdb");
  const audit = join(dir, "audit_trail.duckdb");
  const tca = join(dir, "tca.duckdb");
  await runSql(results, [
    `CREATE TABLE portfolio_trades AS
       SELECT i AS trade_id, TIMESTAMP '2024-01-02 09:30:00' + INTERVAL (i) SECOND AS ts,
              ['AAPL','MSFT','NVDA','AMZN','GOOG'][1 + i % 5] AS symbol,
              CASE WHEN i % 2 = 0 THEN 'BUY' ELSE 'SELL' END AS side,
              (1 + i % 500)::INTEGER AS quantity, round(100 + (i % 1000) / 7.0, 2)::DECIMAL(12,2) AS price
       FROM range(${trades}) t(i)`,
    `CREATE TABLE portfolio_positions AS
       SELECT symbol, sum(CASE WHEN side = 'BUY' THEN quantity ELSE -quantity END) AS quantity, avg(price) AS avg_price
       FROM portfolio_trades GROUP BY symbol`,
    `CREATE TABLE portfolio_equity AS
       SELECT DATE '2024-01-01' + INTERVAL (d) DAY AS date, 1e6 + d * 1234.5 AS equity FROM range(365) t(d)`,
  ]);
  await runSql(audit, [
    `CREATE TABLE audit_log AS
       SELECT i AS id, TIMESTAMP '2024-01-01' + INTERVAL (i) MINUTE AS ts, 'user' || (i % 7) AS actor,
              'action-' || (i % 13) AS action, md5(i::VARCHAR) AS detail
       FROM range(${Math.ceil(trades / 2)}) t(i)`,
  ]);
  await runSql(tca, [
    `CREATE TABLE tca_fills AS
       SELECT i AS fill_id, i % ${trades} AS trade_id, (i % 17) / 10.0 AS slippage_bps, (i % 5) * 0.01 AS fee
       FROM range(${trades}) t(i)`,
  ]);
  return [results, audit, tca];
}
