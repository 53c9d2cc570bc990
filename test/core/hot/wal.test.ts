import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { cutWal, parseWalVersion, walChecksum } from "../../../src/core/hot/wal.ts";
import { tempDir } from "../../helpers.ts";

/** A WAL with three commits, written by a process that exits without checkpointing. */
async function walWithCommits(storage?: string, extra = ""): Promise<Uint8Array> {
  const db = join(tempDir(), "w.duckdb");
  const script = `
    import { DuckDBInstance } from "@duckdb/node-api";
    const i = await DuckDBInstance.create(${JSON.stringify(db)}${storage ? `, { storage_compatibility_version: "${storage}" }` : ""});
    const c = await i.connect();
    await c.run("CREATE TABLE t (x INTEGER, s VARCHAR)");
    await c.run("INSERT INTO t VALUES (1, 'a')");
    await c.run("INSERT INTO t SELECT range, 'odd-length' FROM range(7)");
    ${extra ? `await c.run(${JSON.stringify(extra)});` : ""}
    process.exit(0);`;
  const proc = Bun.spawn([process.execPath, "-e", script], { cwd: join(import.meta.dir, "../../.."), stderr: "inherit" });
  expect(await proc.exited).toBe(0);
  return new Uint8Array(readFileSync(`${db}.wal`));
}

describe("WAL cut", () => {
  test("a complete WAL is kept whole: every entry's checksum verifies, commits counted", async () => {
    const wal = await walWithCommits();
    const cut = await cutWal(wal);
    expect(cut).toMatchObject({ keep: wal.length, stopped: "end", checkpoint: false, commits: 3 });
    expect(cut.version.version).toBe(2);
  });

  test("a v1.4 storage WAL carries the checkpoint iteration in its version entry", async () => {
    const wal = await walWithCommits("v1.4.0");
    expect(parseWalVersion(wal)?.checkpointIteration).not.toBeNull();
    expect((await cutWal(wal)).keep).toBe(wal.length);
  });

  test("cut at the last complete commit: a torn tail or a bad checksum drops the commit they belong to", async () => {
    const wal = await walWithCommits();
    const full = await cutWal(wal);
    const torn = await cutWal(wal.subarray(0, wal.length - 3));
    expect(torn.stopped).toBe("torn-tail");
    expect(torn.commits).toBe(2);
    expect(torn.keep).toBeLessThan(wal.length);
    expect((await cutWal(wal.subarray(0, torn.keep))).keep).toBe(torn.keep);
    const bad = wal.slice();
    bad[torn.keep + 17]! ^= 0xff; // in the payload of the third commit's first entry
    expect(await cutWal(bad)).toMatchObject({ stopped: "bad-checksum", keep: torn.keep, commits: 2 });
    expect(full.commits).toBe(3);
  });

  test("a WAL file is read in bounded pieces: entries larger than the window cut as from its bytes, and a torn one is dropped", async () => {
    // One commit of a 3 MiB string: its entry is larger than the 1 MiB reading window.
    const wal = await walWithCommits(undefined, "INSERT INTO t VALUES (9, repeat('x', 3 * 1024 * 1024 + 5))");
    const path = join(tempDir(), "big.wal");
    for (const bytes of [wal, wal.subarray(0, wal.length - 1024 * 1024)]) {
      writeFileSync(path, bytes);
      const h = await open(path, "r");
      try {
        expect(await cutWal(h)).toEqual(await cutWal(bytes));
      } finally {
        await h.close();
      }
    }
    expect((await cutWal(wal)).commits).toBe(4);
    expect((await cutWal(wal.subarray(0, wal.length - 1024 * 1024))).commits).toBe(3);
  });

  test("checksum of lengths that are not a multiple of 8 (DuckDB's remainder hash)", () => {
    // Values computed by DuckDB's Checksum(buffer, size) (common/checksum.cpp) are checked against
    // real WAL entries above; here: length changes change the sum and the function is total.
    const a = walChecksum(new Uint8Array([1, 2, 3]));
    const b = walChecksum(new Uint8Array([1, 2, 3, 0]));
    expect(a).not.toBe(b);
    expect(walChecksum(new Uint8Array(0))).toBe(5381n);
  });

  test("not a WAL, or one without checksums, is refused", async () => {
    expect(cutWal(new Uint8Array([1, 2, 3]))).rejects.toThrow("does not start with a complete version entry");
    // WAL_VERSION entry with version 1: 100 -> 98, 101 -> 1, end.
    expect(cutWal(new Uint8Array([100, 0, 98, 101, 0, 1, 0xff, 0xff]))).rejects.toThrow("WAL version 1 (without checksums)");
  });
});
