// Runs under another DuckDB release (test/duckdb-versions.ts): writes a database with every column
// type that release has, views, macros, sequences, constraints, indexes, comments and a second
// schema, or prints a content fingerprint of one. Plain JavaScript: it is not bundled.
//   write PATH OPTIONS_JSON   options: { blockSize, storageVersion, key, pendingWal }
//   fingerprint PATH KEY?     one JSON line (read-only open: a WAL is replayed in memory only)
import { DuckDBInstance } from "@duckdb/node-api";

const [mode, path, arg] = process.argv.slice(2);
const lit = (s) => `'${s.replaceAll("'", "''")}'`;

// Each column is tried on its own: a type this release lacks is left out (reported on stderr).
const COLUMNS = [
  ["c_bool", "BOOLEAN", "i % 2 = 0"],
  ["c_tinyint", "TINYINT", "(i % 100)::TINYINT"],
  ["c_smallint", "SMALLINT", "(i * 7)::SMALLINT"],
  ["c_int", "INTEGER", "i * 1000"],
  ["c_bigint", "BIGINT", "i::BIGINT * 1000000007"],
  ["c_hugeint", "HUGEINT", "i::HUGEINT * 170141183460469231731687303715884"],
  ["c_utinyint", "UTINYINT", "(i % 200)::UTINYINT"],
  ["c_usmallint", "USMALLINT", "(i * 3)::USMALLINT"],
  ["c_uint", "UINTEGER", "(i * 100000)::UINTEGER"],
  ["c_ubigint", "UBIGINT", "(i * 100000000000)::UBIGINT"],
  ["c_uhugeint", "UHUGEINT", "i::UHUGEINT * 340282366920938463463374607431768"],
  ["c_float", "FLOAT", "(i / 7)::FLOAT"],
  ["c_double", "DOUBLE", "i / 3"],
  ["c_dec_small", "DECIMAL(9,2)", "(i / 8)::DECIMAL(9,2)"],
  ["c_dec_big", "DECIMAL(38,10)", "(i / 9)::DECIMAL(38,10)"],
  ["c_varchar", "VARCHAR", "CASE WHEN i % 10 = 0 THEN NULL ELSE 'row ' || i || repeat('x', i % 50) END"],
  ["c_blob", "BLOB", "('\\xAA\\x00' || i)::BLOB"],
  ["c_date", "DATE", "DATE '2020-01-01' + i"],
  ["c_time", "TIME", "TIME '00:00:00' + INTERVAL (i) SECOND"],
  ["c_timestamp", "TIMESTAMP", "TIMESTAMP '2024-01-02 03:04:05.123456' + INTERVAL (i) MINUTE"],
  ["c_timestamp_s", "TIMESTAMP_S", "(TIMESTAMP '2024-01-02 03:04:05' + INTERVAL (i) HOUR)::TIMESTAMP_S"],
  ["c_timestamp_ms", "TIMESTAMP_MS", "(TIMESTAMP '2024-01-02 03:04:05.123' + INTERVAL (i) HOUR)::TIMESTAMP_MS"],
  ["c_timestamp_ns", "TIMESTAMP_NS", "(TIMESTAMP '2024-01-02 03:04:05' + INTERVAL (i) HOUR)::TIMESTAMP_NS"],
  ["c_timestamptz", "TIMESTAMPTZ", "TIMESTAMPTZ '2024-01-02 03:04:05+00' + INTERVAL (i) DAY"],
  ["c_timetz", "TIMETZ", "TIMETZ '12:34:56+02'"],
  ["c_interval", "INTERVAL", "INTERVAL (i) DAY - INTERVAL (i * 3) MINUTE"],
  ["c_uuid", "UUID", "md5(i::VARCHAR)::UUID"],
  ["c_bit", "BIT", "'10110'::BIT"],
  ["c_enum", "mood", "(['sad', 'ok', 'happy'])[1 + i % 3]::mood"],
  ["c_list", "INTEGER[]", "[i, i + 1, NULL]"],
  ["c_struct", "STRUCT(a INTEGER, b VARCHAR)", "{'a': i, 'b': 'b' || i}"],
  ["c_map", "MAP(VARCHAR, INTEGER)", "MAP {'k' || i: i}"],
  ["c_array", "INTEGER[3]", "[i, i, i]::INTEGER[3]"],
  ["c_union", "UNION(n INTEGER, s VARCHAR)", "CASE WHEN i % 2 = 0 THEN union_value(n := i)::UNION(n INTEGER, s VARCHAR) ELSE union_value(s := 's' || i)::UNION(n INTEGER, s VARCHAR) END"],
  ["c_varint", "VARINT", "(i::VARINT * 1000000000000000000000000000000000000000)"],
  ["c_bignum", "BIGNUM", "(i::BIGNUM * 1000000000000000000000000000000000000000)"],
  ["c_nested", "STRUCT(l INTEGER[], m MAP(VARCHAR, DOUBLE))[]", "[{'l': [i], 'm': MAP {'x': i / 2}}]"],
];

async function write(options) {
  const direct = !options.key && !options.storageVersion && !options.blockSize;
  const instance = await DuckDBInstance.create(direct ? path : ":memory:");
  const con = await instance.connect();
  if (!direct) {
    const opts = [];
    if (options.key) {
      // 1.5 writes encryption only with OpenSSL (httpfs) unless told to use its mbedtls; 1.4 has no such setting.
      await con.run("SET force_mbedtls_unsafe = true").catch(() => {});
      opts.push(`ENCRYPTION_KEY ${lit(options.key)}`);
    }
    if (options.storageVersion) opts.push(`STORAGE_VERSION ${lit(options.storageVersion)}`);
    if (options.blockSize) opts.push(`BLOCK_SIZE ${options.blockSize}`);
    await con.run(`ATTACH ${lit(path)} AS db (${opts.join(", ")})`);
    await con.run("USE db");
  }
  const run = (sql) => con.run(sql);
  await run("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')");
  // No key on it: old releases cannot update list columns of an indexed table.
  await run("CREATE TABLE types (id INTEGER)");
  await run("INSERT INTO types SELECT range FROM range(3000)");
  const missing = [];
  for (const [name, type, expr] of COLUMNS) {
    try {
      await run(`ALTER TABLE types ADD COLUMN ${name} ${type}`);
      await run(`UPDATE types SET ${name} = ${expr.replace(/\bi\b/g, "id")}`);
    } catch (err) {
      missing.push(`${name} ${type}: ${String(err.message ?? err).split("\n")[0]}`);
      await run(`ALTER TABLE types DROP COLUMN IF EXISTS ${name}`).catch(() => {});
    }
  }
  await run("CREATE SEQUENCE order_ids START 100 INCREMENT 5");
  await run(`CREATE TABLE customers (id INTEGER PRIMARY KEY, email VARCHAR UNIQUE NOT NULL, credit DECIMAL(10,2) DEFAULT 0 CHECK (credit >= 0))`);
  await run("INSERT INTO customers SELECT range, 'c' || range || '@example.com', range % 100 FROM range(500)");
  await run(`CREATE TABLE orders (id INTEGER DEFAULT nextval('order_ids') PRIMARY KEY, customer INTEGER REFERENCES customers (id), amount DOUBLE NOT NULL)`);
  await run("INSERT INTO orders (customer, amount) SELECT range % 500, range * 1.25 FROM range(2000)");
  await run("CREATE INDEX orders_amount ON orders (amount)");
  await run("CREATE SCHEMA sales");
  await run("CREATE TABLE sales.regions (code VARCHAR PRIMARY KEY, name VARCHAR)");
  await run("INSERT INTO sales.regions VALUES ('eu', 'Europe'), ('us', 'Americas')");
  await run("CREATE VIEW sales.big_orders AS SELECT * FROM main.orders WHERE amount > 1000");
  await run("CREATE MACRO add_tax(x, rate := 0.2) AS x * (1 + rate)");
  await run("CREATE MACRO top_customers(n) AS TABLE SELECT customer, sum(amount) AS total FROM orders GROUP BY customer ORDER BY total DESC LIMIT n");
  await run("COMMENT ON TABLE orders IS 'every order'");
  await run("COMMENT ON COLUMN customers.email IS 'unique address'");
  await run("CHECKPOINT");
  if (options.pendingWal) {
    // Committed after the checkpoint, left in the WAL: the process exits without closing.
    await run("INSERT INTO orders (customer, amount) SELECT range % 500, 7.5 FROM range(300)");
    await run("UPDATE customers SET credit = credit + 1 WHERE id < 10");
    await run("CREATE TABLE sales.late (x INTEGER)");
    await run("INSERT INTO sales.late VALUES (1), (2)");
  }
  process.stdout.write(JSON.stringify({ missing }) + "\n");
  // Exiting without closing: after the checkpoint nothing else is pending, except the WAL meant to be.
  if (!options.pendingWal && !direct) await run("USE memory; DETACH db");
  process.exit(0);
}

async function fingerprint(key) {
  const instance = await DuckDBInstance.create(":memory:");
  const con = await instance.connect();
  await con.run(`ATTACH ${lit(path)} AS db (READ_ONLY${key ? `, ENCRYPTION_KEY ${lit(key)}` : ""})`);
  await con.run("USE db");
  const rows = async (sql) => (await con.runAndReadAll(sql)).getRows();
  const out = { tables: {}, catalog: [] };
  for (const [schema, table] of await rows("SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'db' ORDER BY ALL")) {
    // hash(t) hashes each whole row (the table alias is the row as a struct).
    const [[n, h]] = await rows(`SELECT count(*)::VARCHAR, sum(hash(t))::VARCHAR FROM "${schema}"."${table}" t`);
    out.tables[`${schema}.${table}`] = [n, h];
  }
  for (const [sql] of await rows(
    "SELECT sql FROM (SELECT sql FROM duckdb_views() WHERE database_name = 'db' AND NOT internal UNION ALL SELECT sql FROM duckdb_indexes() WHERE database_name = 'db' UNION ALL SELECT sql FROM duckdb_sequences() WHERE database_name = 'db' UNION ALL SELECT sql FROM duckdb_tables() WHERE database_name = 'db') ORDER BY ALL",
  ))
    out.catalog.push(sql);
  out.macros = (await rows("SELECT DISTINCT function_name FROM duckdb_functions() WHERE database_name = 'db' AND function_type IN ('macro', 'table_macro') AND NOT internal ORDER BY ALL")).map((r) => r[0]);
  out.comments = (await rows("SELECT comment FROM duckdb_tables() WHERE database_name = 'db' AND comment IS NOT NULL UNION ALL SELECT comment FROM duckdb_columns() WHERE database_name = 'db' AND comment IS NOT NULL ORDER BY ALL")).map((r) => r[0]);
  process.stdout.write(JSON.stringify(out) + "\n");
  process.exit(0);
}

if (mode === "write") await write(JSON.parse(arg));
else if (mode === "fingerprint") await fingerprint(arg);
else throw new Error(`unknown mode ${mode}`);
