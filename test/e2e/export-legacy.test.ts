// export/import at the edges of DuckDB's types: GEOMETRY with M or ZM coordinates round-trips
// (Parquet has no geometry with M: such columns travel as exact WKT text); a table this DuckDB
// cannot recreate (a legacy AGGREGATE_STATE column) is reported and the others are exported.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { query, runBinary, runSql, tempDir } from "../helpers.ts";

describe("export/import edge types", () => {
  test("GEOMETRY with M and ZM coordinates imports back exactly (Parquet and CSV)", async () => {
    const dir = tempDir();
    const db = join(dir, "geo.duckdb");
    await runSql(db, [
      "CREATE TABLE shapes (id INTEGER, g GEOMETRY, flat GEOMETRY)",
      `INSERT INTO shapes VALUES
        (1, 'POINT ZM (1.5 2.25 3 4)', 'POINT (0.1 0.2)'),
        (2, 'POINT M (0.1 0.3333333333333333 7)', 'POINT (1 2)'),
        (3, 'LINESTRING ZM (1 2 3 4, 5 6 7 8)', 'LINESTRING (1 2, 3 4)'),
        (4, 'POINT Z (1 2 3)', NULL),
        (5, NULL, 'POLYGON ((0 0, 1 0, 1 1, 0 0))')`,
    ]);
    const text = "SELECT id, CAST(g AS VARCHAR), CAST(flat AS VARCHAR) FROM shapes ORDER BY id";
    const expected = await query(db, text);
    for (const format of ["parquet", "csv"]) {
      const out = join(dir, `exp-${format}`);
      const e = await runBinary(["export", db, "--out", out, "--format", format]);
      expect(e.code).toBe(0);
      const m = JSON.parse(readFileSync(join(out, "export.json"), "utf8"));
      if (format === "parquet") expect(m.tables[0].columns.map((c: any) => c.stored_as ?? null)).toEqual([null, "VARCHAR", null]);
      const target = join(dir, `imported-${format}.duckdb`);
      const i = await runBinary(["import", out, "--into", target]);
      expect(i.stderr).toBe("");
      expect(i.code).toBe(0);
      expect(await query(target, text)).toEqual(expected);
      expect(await query(target, "SELECT data_type FROM duckdb_columns() WHERE table_name = 'shapes' ORDER BY column_index")).toEqual([["INTEGER"], ["GEOMETRY"], ["GEOMETRY"]]);
    }
  });

  test("an AGGREGATE_STATE column: that table is reported NOT EXPORTED (exit 3), the others are exported and import", async () => {
    const dir = tempDir();
    const db = join(dir, "legacy.duckdb");
    await runSql(db, [
      "CREATE TABLE states AS SELECT sum(range) EXPORT_STATE AS s FROM range(10)",
      "CREATE TABLE orders AS SELECT range AS id FROM range(100)",
      "CREATE INDEX orders_id ON orders (id)",
      "CREATE VIEW v AS SELECT count(*) AS n FROM orders",
    ]);
    const out = join(dir, "exp");
    const e = await runBinary(["export", db, "--out", out]);
    expect(e.code).toBe(3);
    expect(e.stderr).toContain(`table "main"."states" NOT EXPORTED: its definition does not replay`);
    expect(e.stderr).toContain("NOT EXPORTED  main.states");
    expect(e.stdout).toContain("ok  main.orders  100 rows");
    expect(e.stdout).toContain("(partial, parquet/zstd, 1 table");
    const j = JSON.parse((await runBinary(["export", db, "--out", join(dir, "exp2"), "--json"])).stdout);
    expect(j.ok).toBe(false);
    expect(j.not_exported).toEqual([{ schema: "main", name: "states" }]);
    expect(j.manifest.complete).toBe(false);
    const target = join(dir, "imported.duckdb");
    expect((await runBinary(["import", out, "--into", target])).code).toBe(0);
    expect(await query(target, "SELECT n FROM v")).toEqual([[100n]]);
  });
});
