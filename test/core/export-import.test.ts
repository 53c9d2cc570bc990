// export → import round trips through the library: every value, every schema object and comment
// comes back; incremental appends are recorded and refused twice; failures change nothing.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { exportDatabase, type ExportFormat } from "../../src/core/export.ts";
import { importExport, AlreadyImportedError, CorruptExportError } from "../../src/core/import.ts";
import { DuckbakError, ExitCode } from "../../src/core/errors.ts";
import { query, runSql, tempDir, sha256File } from "../helpers.ts";


/** Rows of `sql` run on a database opened with both files attached read-only as `a` and `b`. */
async function compare(a: string, b: string, sql: string): Promise<unknown[][]> {
  const instance = await DuckDBInstance.create(":memory:");
  const con = await instance.connect();
  try {
    await con.run(`ATTACH '${a}' AS a (READ_ONLY)`);
    await con.run(`ATTACH '${b}' AS b (READ_ONLY)`);
    return (await con.runAndReadAll(sql)).getRowsJson() as unknown[][];
  } finally {
    con.closeSync();
    instance.closeSync();
  }
}

/** Rows in one table but not the other, as a multiset, both ways. */
async function rowDifferences(a: string, b: string, table: string): Promise<number> {
  const [[n]] = (await compare(
    a,
    b,
    `SELECT (SELECT count(*) FROM (FROM a.${table} EXCEPT ALL FROM b.${table})) + (SELECT count(*) FROM (FROM b.${table} EXCEPT ALL FROM a.${table}))`,
  )) as [[string]];
  return Number(n);
}

/** What the catalog says about every user object, comments included, in a comparable form. */
async function catalog(path: string): Promise<Record<string, unknown[][]>> {
  const q = (sql: string) => query(path, sql).then((rows) => JSON.parse(JSON.stringify(rows, (_, v) => (typeof v === "bigint" ? String(v) : v))));
  const where = "WHERE database_name = current_database()";
  return {
    storage: await q(`SELECT tags FROM duckdb_databases() ${where}`),
    schemas: await q(`SELECT schema_name, comment FROM duckdb_schemas() ${where} AND NOT internal ORDER BY 1`),
    types: await q(`SELECT schema_name, type_name, logical_type, labels, comment FROM duckdb_types() ${where} AND NOT internal ORDER BY 1, 2`),
    sequences: await q(`SELECT schema_name, sequence_name, sql, comment FROM duckdb_sequences() ${where} ORDER BY 1, 2`),
    tables: await q(`SELECT schema_name, table_name, sql, comment FROM duckdb_tables() ${where} AND table_name <> '_duckbak_imports' ORDER BY 1, 2`),
    columns: await q(`SELECT schema_name, table_name, column_name, data_type, column_default, is_nullable, comment FROM duckdb_columns() ${where} AND table_name <> '_duckbak_imports' ORDER BY 1, 2, column_index`),
    constraints: await q(
      `SELECT schema_name, table_name, constraint_type, constraint_text, constraint_column_names, referenced_table, referenced_column_names FROM duckdb_constraints() ${where} AND table_name <> '_duckbak_imports' ORDER BY ALL`,
    ),
    indexes: await q(`SELECT schema_name, index_name, sql, comment FROM duckdb_indexes() ${where} ORDER BY 1, 2`),
    views: await q(`SELECT schema_name, view_name, sql, comment FROM duckdb_views() ${where} AND NOT internal ORDER BY 1, 2`),
    macros: await q(
      `SELECT schema_name, function_name, function_type, parameters, parameter_types, macro_definition, comment FROM duckdb_functions() ${where} AND NOT internal AND function_type LIKE '%macro' ORDER BY ALL`,
    ),
  };
}

async function roundTrip(source: string, format: ExportFormat, dir: string) {
  const exported = await exportDatabase({ database: source, out: join(dir, `export-${format}`), format });
  const target = join(dir, `rebuilt-${format}.duckdb`);
  const imported = await importExport({ dir: exported.path, into: target });
  return { exported, imported, target };
}

// Every type with its edge values; row 3 is all NULLs.
const TYPES_TABLE = `CREATE TABLE "all types" (id INT, b BOOLEAN, ti TINYINT, si SMALLINT, i INTEGER, bi BIGINT, hi HUGEINT, uti UTINYINT,
  usi USMALLINT, ui UINTEGER, ubi UBIGINT, uhi UHUGEINT, f FLOAT, d DOUBLE, dec1 DECIMAL(4,1), dec2 DECIMAL(18,6), dec3 DECIMAL(38,10),
  dt DATE, tm TIME, ttz TIMETZ, ts TIMESTAMP, tsz TIMESTAMPTZ, tss TIMESTAMP_S, tsms TIMESTAMP_MS, tsns TIMESTAMP_NS, iv INTERVAL,
  v VARCHAR, bl BLOB, u UUID, bit BIT, j JSON, l INT[], l2 VARCHAR[], arr INT[3], s STRUCT(a INT, "b c" VARCHAR), m MAP(VARCHAR, INT),
  e mood, nested STRUCT(l DOUBLE[], m MAP(INT, VARCHAR[]), iv INTERVAL), bn BIGNUM)`;
const TYPES_ROWS = [
  `INSERT INTO "all types" VALUES (1, true, -128, -32768, -2147483648, -9223372036854775808, -170141183460469231731687303715884105728,
  255, 65535, 4294967295, 18446744073709551615, 340282366920938463463374607431768211455, 3.4028235e38, 1.7976931348623157e308, 999.9,
  -123456789012.123456, 1234567890123456789012345678.0123456789, DATE '1970-01-01', TIME '23:59:59.999999', TIMETZ '12:00:00+05:30',
  TIMESTAMP '2024-02-29 12:34:56.123456', TIMESTAMPTZ '2024-06-01 10:00:00.654321+02', TIMESTAMP_S '2024-01-01 00:00:01',
  TIMESTAMP_MS '2024-01-01 00:00:01.123', TIMESTAMP_NS '2024-01-01 00:00:01.123456789', INTERVAL '1 year 2 months 3 days 04:05:06.789012',
  'héllo, "world"\nline2 ''q''', '\\x00\\xFF\\x5Cabc'::BLOB, '550e8400-e29b-41d4-a716-446655440000', '10101'::BIT, '{"a": [1, 2]}',
  [1, NULL, 3], ['a,b', NULL, '', '"q"', '[x]', 'NULL'], [1, 2, 3], {'a': 1, 'b c': 'x''y'}, MAP {'k': 1, 'k2': NULL}, 'happy',
  {'l': [1.5, 'nan'::DOUBLE, 'inf'::DOUBLE], 'm': MAP {1: ['a', NULL]}, 'iv': INTERVAL '-3 days'}, 123456789012345678901234567890123456789012345)`,
  `INSERT INTO "all types" VALUES (2, false, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -0.0, 'nan', 0.0, 0, 0, DATE '-4713-11-24', TIME '00:00:00',
  TIMETZ '00:00:00-15:59', TIMESTAMP '0001-01-01 00:00:00', TIMESTAMPTZ 'infinity', TIMESTAMP_S '1970-01-01', TIMESTAMP_MS '1970-01-01',
  TIMESTAMP_NS '1970-01-01', INTERVAL '-1 microsecond', '', ''::BLOB, '00000000-0000-0000-0000-000000000000', '0'::BIT, 'null', [], [],
  [NULL, NULL, NULL], {'a': NULL, 'b c': NULL}, MAP {}, 'sad', {'l': [], 'm': MAP {}, 'iv': NULL}, -1)`,
  `INSERT INTO "all types" (id) VALUES (3)`,
  `INSERT INTO "all types" (id, v, bl, l2) VALUES (4, 'NULL', 'NULL'::BLOB, ['NULL']), (5, '\\N', '\\x5CN'::BLOB, NULL), (6, ' lead ', 'a"b', [' x '])`,
];

describe("export and import", () => {
  test.each(["parquet", "csv"] as const)("every type and edge value survives a %s round trip exactly", async (format) => {
    const dir = tempDir();
    const source = join(dir, "types.duckdb");
    await runSql(source, ["CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')", TYPES_TABLE, ...TYPES_ROWS]);
    const { exported, imported, target } = await roundTrip(source, format, dir);
    expect(imported.tables).toEqual([{ schema: "main", name: "all types", rows: 6 }]);
    expect(await rowDifferences(source, target, '"all types"')).toBe(0);
    expect((await catalog(target)).columns).toEqual((await catalog(source)).columns);
    // Parquet gets the types it cannot hold exactly as text; CSV is all text anyway.
    const asText = exported.manifest.tables[0]!.columns.filter((c) => c.stored_as).map((c) => c.name);
    expect(asText).toEqual(format === "parquet" ? ["hi", "uhi", "ttz", "iv", "nested", "bn"] : []);
  });

  test("CSV refuses a UNION column, which text cannot carry, and leaves no folder behind", async () => {
    const dir = tempDir();
    const source = join(dir, "u.duckdb");
    await runSql(source, ["CREATE TABLE t (u UNION(n INT, s VARCHAR))", "INSERT INTO t VALUES (1), ('1')"]);
    const out = join(dir, "out");
    await expect(exportDatabase({ database: source, out, format: "csv" })).rejects.toThrow('"main"."t": column "u" is a UNION(n INTEGER, s VARCHAR), which CSV cannot carry');
    expect(readdirSync(dir)).toEqual(["u.duckdb"]);
    const { target } = await roundTrip(source, "parquet", dir);
    expect(await rowDifferences(source, target, "t")).toBe(0);
  });

  test("schemas, types, sequences, constraints, indexes, macros, views and every comment survive, with odd names", async () => {
    const dir = tempDir();
    const source = join(dir, "shop.duckdb");
    const s = '"Sales Ünïcode"';
    // Typed macro parameters need storage v1.4.0; a database keeps the version it was created with.
    (await DuckDBInstance.create(source, { storage_compatibility_version: "v1.4.0" })).closeSync();
    await runSql(
      source,
      [
        `CREATE SCHEMA ${s}`,
        "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')",
        `CREATE TYPE ${s}."point ""2d""" AS STRUCT(x DOUBLE, y DOUBLE)`,
        "CREATE SEQUENCE order_ids START 100 INCREMENT 10",
        `CREATE SEQUENCE ${s}."unused seq" START 7`,
        `CREATE TABLE customers (id INTEGER PRIMARY KEY DEFAULT nextval('order_ids'), "Name" VARCHAR NOT NULL UNIQUE,
           "select" VARCHAR COLLATE NOCASE DEFAULT 'x', m mood, CHECK (length("Name") > 0))`,
        `CREATE TABLE ${s}.parent ("Key" INTEGER PRIMARY KEY, a INT, b INT, UNIQUE (a, b))`,
        `CREATE TABLE ${s}."child ""x""" (id INTEGER PRIMARY KEY, p INTEGER REFERENCES ${s}.parent ("Key"), a INT, b INT,
           up INTEGER REFERENCES ${s}."child ""x""" (id), qty INTEGER CHECK (qty > 0), twice INTEGER GENERATED ALWAYS AS (qty * 2),
           FOREIGN KEY (a, b) REFERENCES ${s}.parent (a, b))`,
        `CREATE TABLE "Mixed ""Case"" 表" ("ORDER" INTEGER, "group by" VARCHAR)`,
        `CREATE INDEX "idx ""m""" ON customers (m)`,
        "CREATE MACRO add_default(a, b := 10) AS a + b",
        "CREATE MACRO overloaded(a) AS a, (a, b) AS a * b",
        `CREATE MACRO ${s}.top_n(n, label := 'it''s') AS TABLE SELECT range AS i, label AS label FROM range(n)`,
        "CREATE MACRO typed(a INTEGER) AS a + 1",
        "CREATE VIEW v_base AS SELECT 1 AS one",
        `CREATE VIEW ${s}."v on v" AS SELECT one + add_default(1) AS total FROM main.v_base`,
        // Replaced after its dependant: creation order no longer works as replay order.
        "CREATE OR REPLACE VIEW v_base AS SELECT 1 AS one, 2 AS other",
        "COMMENT ON TABLE customers IS 'who buys'",
        `COMMENT ON COLUMN customers."Name" IS 'display name, it''s unique'`,
        `COMMENT ON COLUMN ${s}."child ""x""".qty IS 'how many'`,
        "COMMENT ON VIEW v_base IS 'base view'",
        "COMMENT ON COLUMN v_base.one IS 'always one'",
        "COMMENT ON SEQUENCE order_ids IS 'order numbers'",
        "COMMENT ON TYPE mood IS 'feelings'",
        "COMMENT ON MACRO add_default IS 'adds ten'",
        `COMMENT ON MACRO TABLE ${s}.top_n IS 'n rows'`,
        `COMMENT ON INDEX "idx ""m""" IS 'by mood'`,
        `INSERT INTO customers ("Name", m) VALUES ('Ann', 'ok'), ('Bob', 'happy')`,
        `INSERT INTO ${s}.parent VALUES (1, 1, 1), (2, 2, 2)`,
        `INSERT INTO ${s}."child ""x""" (id, p, a, b, up, qty) VALUES (1, 1, 1, 1, NULL, 3)`,
        `INSERT INTO ${s}."child ""x""" (id, p, a, b, up, qty) VALUES (2, 2, 2, 2, 1, 4)`,
      ],
    );
    const { exported, target } = await roundTrip(source, "parquet", dir);
    expect(exported.warnings).toEqual([]);
    expect(await catalog(target)).toEqual(await catalog(source));
    const loadOrder = exported.manifest.tables.map((t) => `${t.schema}.${t.name}:${t.rows}`);
    expect(loadOrder.toSorted()).toEqual(['Sales Ünïcode.child "x":2', "Sales Ünïcode.parent:2", 'main.Mixed "Case" 表:0', "main.customers:2"]);
    expect(loadOrder.indexOf("Sales Ünïcode.parent:2")).toBeLessThan(loadOrder.indexOf('Sales Ünïcode.child "x":2'));
    for (const t of ["customers", `${s}.parent`, `${s}."child ""x"""`]) expect(await rowDifferences(source, target, t)).toBe(0);
    // The catalog matching is not enough: the rebuilt objects must behave.
    const instance = await DuckDBInstance.create(target);
    const con = await instance.connect();
    const one = async (sql: string) => (await con.runAndReadAll(sql)).getRowsJson()[0];
    const fails = (sql: string) => con.run(sql).then(() => "ok", (e) => String(e));
    try {
      expect(await one("SELECT nextval('order_ids')")).toEqual(["120"]);
      expect(await one(`SELECT add_default(1), overloaded(2, 3), typed(1), (SELECT max(label) FROM ${s}.top_n(2))`)).toEqual([11, 6, 2, "it's"]);
      expect(await one(`SELECT * FROM ${s}."v on v"`)).toEqual([12]);
      expect(await fails(`INSERT INTO ${s}."child ""x""" (id, p) VALUES (9, 99)`)).toContain("foreign key");
      expect(await fails(`INSERT INTO ${s}."child ""x""" (id, up) VALUES (9, 99)`)).toContain("foreign key");
      expect(await fails(`INSERT INTO ${s}."child ""x""" (id, qty) VALUES (9, 0)`)).toContain("CHECK constraint");
      expect(await fails(`INSERT INTO customers ("Name") VALUES ('Ann')`)).toContain("Duplicate key");
      expect(await one(`SELECT count(*) FROM customers WHERE "select" = 'X'`)).toEqual(["2"]);
    } finally {
      con.closeSync();
      instance.closeSync();
    }
  });

  test("a view that can no longer be created is left out with a warning, and so is its comment", async () => {
    const dir = tempDir();
    const source = join(dir, "orphan.duckdb");
    await runSql(source, ["CREATE TABLE gone (x INT)", "CREATE VIEW orphan AS SELECT x FROM gone", "COMMENT ON VIEW orphan IS 'sad'", "DROP TABLE gone", "CREATE TABLE kept (x INT)"]);
    const { exported, target } = await roundTrip(source, "parquet", dir);
    expect(exported.warnings).toHaveLength(1);
    expect(exported.warnings[0]).toStartWith('view "main"."orphan" left out: it cannot be recreated (Catalog Error: Table with name gone does not exist!');
    expect((await catalog(target)).views).toEqual([]);
  });

  test("incremental: rows since a date, appended once; the same export again is refused and changes nothing", async () => {
    const dir = tempDir();
    const source = join(dir, "availability.duckdb");
    await runSql(source, [
      "CREATE TABLE daily_availability AS SELECT DATE '2024-01-01' + INTERVAL (d) DAY AS date, s AS symbol, (d + s) % 2 = 0 AS available FROM range(60) t(d), range(3) u(s)",
      "CREATE TABLE symbols AS SELECT range AS s FROM range(3)",
    ]);
    const base = await exportDatabase({ database: source, out: join(dir, "base"), since: "2024-01-01", dateColumn: "date" });
    const target = join(dir, "replica.duckdb");
    await importExport({ dir: base.path, into: target });
    await runSql(source, ["INSERT INTO daily_availability SELECT DATE '2024-03-01' + INTERVAL (d) DAY, s, true FROM range(5) t(d), range(3) u(s)"]);

    const inc = await exportDatabase({ database: source, out: join(dir, "inc"), since: "2024-03-01", dateColumn: "DATE" });
    expect(inc.skipped).toEqual([{ schema: "main", name: "symbols" }]);
    expect(inc.manifest.complete).toBe(false);
    expect(inc.manifest.incremental).toEqual({ date_column: "DATE", since: "2024-03-01" });
    expect(inc.manifest.tables).toMatchObject([{ name: "daily_availability", rows: 15, range: { min: "2024-03-01 00:00:00", max: "2024-03-05 00:00:00" } }]);

    const appended = await importExport({ dir: inc.path, into: target, append: true });
    expect(appended.rows).toBe(15);
    expect(await rowDifferences(source, target, "daily_availability")).toBe(0);
    const before = sha256File(target);
    let err: unknown;
    await importExport({ dir: inc.path, into: target, append: true }).catch((e) => (err = e));
    expect(err).toBeInstanceOf(AlreadyImportedError);
    expect((err as Error).message).toStartWith(`${target}: export ${inc.manifest.export_id} was already imported on `);
    expect(sha256File(target)).toBe(before);
    expect(await query(target, "SELECT mode, since, rows FROM _duckbak_imports ORDER BY imported_at")).toEqual([
      ["new", "2024-01-01", 180n],
      ["append", "2024-03-01", 15n],
    ]);
  });

  test.each([
    [{ since: "2024-01-01" }, "--since and --date-column go together"],
    [{ since: "yesterday", dateColumn: "date" }, `--since 'yesterday' is not a DATE (column "date" of "main"."t")`],
    [{ since: "2024-01-01", dateColumn: "nope" }, "--date-column 'nope': no table has that column"],
    [{ tables: ["t", "missing"] }, "--table 'missing': no such table (tables: main.t)"],
    [{ format: "csv" as const, compression: "snappy" as const }, "--compression snappy is for Parquet"],
  ])("refuses %p", async (opts, message) => {
    const dir = tempDir();
    const source = join(dir, "db.duckdb");
    await runSql(source, ["CREATE TABLE t (date DATE)"]);
    let err: unknown;
    await exportDatabase({ database: source, out: join(dir, "out"), ...opts }).catch((e) => (err = e));
    expect((err as DuckbakError).exitCode).toBe(ExitCode.USAGE);
    expect((err as DuckbakError).message).toStartWith(message);
    expect(existsSync(join(dir, "out"))).toBe(false);
  });

  test("an append that fails half-way (a duplicate key) rolls back: the target is byte-identical", async () => {
    const dir = tempDir();
    const source = join(dir, "src.duckdb");
    await runSql(source, ["CREATE TABLE a (id INT PRIMARY KEY)", "CREATE TABLE b (id INT PRIMARY KEY)", "INSERT INTO a VALUES (1), (2)", "INSERT INTO b VALUES (1)"]);
    const target = join(dir, "target.duckdb");
    await runSql(target, ["CREATE TABLE a (id INT PRIMARY KEY)", "CREATE TABLE b (id INT PRIMARY KEY)", "INSERT INTO b VALUES (1)"]);
    const exp = await exportDatabase({ database: source, out: join(dir, "exp") });
    const before = sha256File(target);
    // Table a loads first and succeeds; b then violates its key.
    await expect(importExport({ dir: exp.path, into: target, append: true })).rejects.toThrow(`${target}: loading "main"."b" from data/0002_b.parquet failed: Constraint Error`);
    expect(sha256File(target)).toBe(before);
    expect(await query(target, "SELECT count(*) FROM a")).toEqual([[0n]]);
    expect(await query(target, "SELECT count(*) FROM duckdb_tables() WHERE table_name = '_duckbak_imports'")).toEqual([[0n]]);
    expect(readdirSync(dir).sort()).toEqual(["exp", "src.duckdb", "target.duckdb"]);
  });

  test("a changed data file is caught by its checksum before anything is built", async () => {
    const dir = tempDir();
    const source = join(dir, "src.duckdb");
    await runSql(source, ["CREATE TABLE t AS SELECT range AS x FROM range(100)"]);
    const exp = await exportDatabase({ database: source, out: join(dir, "exp"), format: "csv" });
    const file = join(exp.path, exp.manifest.tables[0]!.file);
    writeFileSync(file, readFileSync(file, "utf8").replace("\n42\n", "\n43\n"));
    let err: unknown;
    await importExport({ dir: exp.path, into: join(dir, "new.duckdb") }).catch((e) => (err = e));
    expect(err).toBeInstanceOf(CorruptExportError);
    expect((err as DuckbakError).exitCode).toBe(ExitCode.VERIFY_FAILED);
    expect((err as DuckbakError).message).toBe(`${exp.path}: data/0001_t.csv does not match its sha256 in the manifest; nothing imported`);
    expect(readdirSync(dir).sort()).toEqual(["exp", "src.duckdb"]);
  });

  test("a new database that fails to build leaves neither the database nor a temporary behind", async () => {
    const dir = tempDir();
    const source = join(dir, "src.duckdb");
    await runSql(source, ["CREATE TABLE parent (id INT PRIMARY KEY)", "CREATE TABLE child (p INT REFERENCES parent (id))", "INSERT INTO parent VALUES (1)", "INSERT INTO child VALUES (1)"]);
    // Only the child: its row references a parent the new database does not have.
    const exp = await exportDatabase({ database: source, out: join(dir, "exp"), tables: ["child"] });
    expect(exp.manifest.complete).toBe(false);
    const target = join(dir, "out", "new.duckdb");
    await expect(importExport({ dir: exp.path, into: target })).rejects.toThrow(`${target}: loading "main"."child" from data/0001_child.parquet failed: Constraint Error: Violates foreign key constraint`);
    expect(readdirSync(join(dir, "out"))).toEqual([]);
  });

  test("1M rows: Parquet and CSV exports round-trip; sizes and times are reported", async () => {
    const dir = tempDir();
    const source = join(dir, "big.duckdb");
    await runSql(source, [
      `CREATE TABLE trades AS SELECT i AS trade_id, TIMESTAMP '2024-01-02 09:30:00' + INTERVAL (i) SECOND AS ts,
         ['AAPL','MSFT','NVDA','AMZN','GOOG'][1 + i % 5] AS symbol, (1 + i % 500)::INTEGER AS quantity,
         round(100 + (i % 1000) / 7.0, 2)::DECIMAL(12,2) AS price FROM range(1000000) t(i)`,
    ]);
    for (const format of ["parquet", "csv"] as const) {
      const { exported, imported, target } = await roundTrip(source, format, dir);
      expect(imported.rows).toBe(1_000_000);
      expect(await rowDifferences(source, target, "trades")).toBe(0);
      console.log(`1M-row table, ${format}/${exported.manifest.compression}: ${exported.bytes} bytes, export ${exported.durationMs} ms, import ${imported.durationMs} ms`);
    }
  }, 120_000);

  test("an append does not bring the source's own import history into the target", async () => {
    const dir = tempDir();
    const source = join(dir, "source.duckdb");
    await runSql(source, ["CREATE TABLE t AS SELECT range AS x FROM range(3)"]);
    const e1 = await exportDatabase({ database: source, out: join(dir, "e1") });
    await importExport({ dir: e1.path, into: join(dir, "a.duckdb") }); // a records e1
    const e2 = await exportDatabase({ database: join(dir, "a.duckdb"), out: join(dir, "e2") }); // holds a's history
    await importExport({ dir: e1.path, into: join(dir, "b.duckdb") }); // b records e1 too
    await importExport({ dir: e2.path, into: join(dir, "b.duckdb"), append: true });
    expect(await query(join(dir, "b.duckdb"), "SELECT mode FROM _duckbak_imports ORDER BY mode")).toEqual([["append"], ["new"]]);
    expect(await query(join(dir, "b.duckdb"), "SELECT count(*) FROM t")).toEqual([[6n]]);
  });
});

