// The hot copy protocol on files no writer touches: the WAL's edge cases, where the copy must be
// taken (not refused, not crash) and hold exactly the complete commits.
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { hotCopy } from "../../../src/core/hot/copy.ts";
import { parseWalVersion } from "../../../src/core/hot/wal.ts";
import { query, tempDir } from "../../helpers.ts";

/** A database whose WAL holds two commits (the process exits without checkpointing). */
async function withWal(): Promise<string> {
  const db = join(tempDir(), "w.duckdb");
  const script = `
    import { DuckDBInstance } from "@duckdb/node-api";
    const i = await DuckDBInstance.create(${JSON.stringify(db)});
    const c = await i.connect();
    await c.run("CREATE TABLE t (x INTEGER)");
    await c.run("CHECKPOINT");
    await c.run("INSERT INTO t VALUES (1)");
    await c.run("INSERT INTO t VALUES (2)");
    process.exit(0);`;
  const proc = Bun.spawn([process.execPath, "-e", script], { cwd: join(import.meta.dir, "../../.."), stderr: "inherit" });
  expect(await proc.exited).toBe(0);
  return db;
}

describe("hot copy: WAL edge cases", () => {
  test("a WAL with no complete commit (only its version entry, or empty) is left out; the copy opens", async () => {
    const db = await withWal();
    const wal = readFileSync(`${db}.wal`);
    for (const bytes of [wal.subarray(0, parseWalVersion(wal)!.length), new Uint8Array(0)]) {
      writeFileSync(`${db}.wal`, bytes);
      const dir = join(tempDir(), "copy");
      mkdirSync(dir);
      const copy = await hotCopy(db, dir, 0);
      expect(copy.files.map((f) => f.name)).toEqual(["w.duckdb"]);
      expect(copy).toMatchObject({ attempts: 1, walBytesKept: 0, walBytesDropped: bytes.length });
      expect(existsSync(join(dir, "w.duckdb.wal"))).toBe(false);
      expect(await query(join(dir, "w.duckdb"), "SELECT count(*) FROM t")).toEqual([[0n]]);
    }
  });

  test("a WAL with complete commits and a torn tail is cut after the last commit", async () => {
    const db = await withWal();
    const wal = readFileSync(`${db}.wal`);
    writeFileSync(`${db}.wal`, wal.subarray(0, wal.length - 3));
    const dir = join(tempDir(), "copy");
    mkdirSync(dir);
    const copy = await hotCopy(db, dir, 0);
    expect(copy.walBytesKept).toBeGreaterThan(0);
    expect(copy.walBytesKept + copy.walBytesDropped).toBe(wal.length - 3);
    expect(readFileSync(join(dir, "w.duckdb.wal")).length).toBe(copy.walBytesKept);
    expect(await query(join(dir, "w.duckdb"), "SELECT x FROM t ORDER BY x")).toEqual([[1]]);
  });
});
