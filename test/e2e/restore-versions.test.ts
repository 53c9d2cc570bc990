// The backup's WAL is folded into the restored file by the embedded DuckDB: the result must still
// open, with the same rows, in the DuckDB version that wrote it (no storage upgrade).
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { runBinary, tempDir } from "../helpers.ts";
import { DUCKDB_VERSIONS, runWithDuckDB } from "../duckdb-versions.ts";
import { readDuckDBHeader } from "../../src/core/duckdb/open.ts";

const LEAVE_WAL = `
import { DuckDBInstance } from "@duckdb/node-api";
const i = await DuckDBInstance.create(process.argv[2]);
const c = await i.connect();
globalThis.keep = [i, c];
await c.run("CREATE TABLE t AS SELECT range AS x FROM range(10)");
await c.run("CHECKPOINT");
await c.run("INSERT INTO t SELECT range + 100 FROM range(5)");
process.exit(0);
`;
const COUNT = `
import { DuckDBInstance } from "@duckdb/node-api";
const i = await DuckDBInstance.create(process.argv[2], { access_mode: "READ_ONLY" });
const c = await i.connect();
console.log(String((await c.runAndReadAll("SELECT count(*), sum(x) FROM t")).getRows()[0]));
`;

describe("a backup's WAL folded at restore, per DuckDB version", () => {
  for (const version of DUCKDB_VERSIONS.slice(0, -1))
    test(`written by ${version}: restored file opens there with every row, same storage version`, async () => {
      const dir = tempDir();
      const db = join(dir, "v.duckdb");
      await runWithDuckDB(version, LEAVE_WAL, [db]);
      const before = await readDuckDBHeader(db);
      expect((await runBinary(["backup", db, "--backup-dir", join(dir, "bk"), "--name", "v"])).code).toBe(0);
      const r = await runBinary(["restore", "v", "--backup-dir", join(dir, "bk"), "--restore-dir", join(dir, "out")]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const restored = join(dir, "out", "v.duckdb");
      expect((await readDuckDBHeader(restored)).storageVersion).toBe(before.storageVersion);
      expect((await runWithDuckDB(version, COUNT, [restored])).trim()).toBe("15,555");
    });
});
