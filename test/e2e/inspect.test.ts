// `duckbak inspect FILE`: the header of a real database file, read without DuckDB.
import { describe, expect, test } from "bun:test";
import { statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { query, runBinary, runSql, sh, tempDir, WRITER } from "../helpers.ts";

describe("duckbak inspect", () => {
  test("reports what DuckDB wrote: version, storage format, block size, checkpoint, blocks, no WAL", async () => {
    const dir = tempDir();
    const db = join(dir, "real.duckdb");
    await runSql(db, ["CREATE TABLE t AS SELECT range AS x, md5(range::VARCHAR) AS s FROM range(200000)", "CHECKPOINT", "INSERT INTO t VALUES (-1, 'x')"]);
    const [[version, sourceId]] = (await query(db, "SELECT version(), source_id FROM pragma_version()")) as [[string, string]];
    const r = await runBinary(["inspect", db, "--json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info).toMatchObject({
      path: db,
      size_bytes: statSync(db).size,
      creator_version: version,
      source_id: sourceId,
      storage_version: 64,
      serialization_compatibility: 1,
      opens_with: "v1.0.0 and later",
      encrypted: false,
      block_alloc_size: 262144,
      vector_size: 2048,
      truncated: false,
      checksums: { main: true, database_headers: [true, true] },
      wal: null,
    });
    // Two checkpoints (the explicit one and the one on close), each a new header iteration.
    expect(info.checkpoint_iteration).toBeGreaterThanOrEqual(2);
    expect(info.block_count).toBeGreaterThan(1);
    expect(info.expected_min_size).toBe(12288 + info.block_count * 262144);
    expect(info.expected_min_size).toBeLessThanOrEqual(info.size_bytes);

    const text = await runBinary(["inspect", db]);
    expect(text.stdout).toContain(`Created by:       DuckDB ${version} (${sourceId})`);
    expect(text.stdout).toContain("Opens with:       DuckDB v1.0.0 and later");
    expect(text.stdout).toContain("WAL:              none");
  });

  test("a newer storage version, a pending WAL and a truncated file are reported", async () => {
    const dir = tempDir();
    const v15 = join(dir, "v15.duckdb");
    (await DuckDBInstance.create(v15, { storage_compatibility_version: "v1.5.0" })).closeSync();
    expect(JSON.parse((await runBinary(["inspect", v15, "--json"])).stdout)).toMatchObject({ serialization_compatibility: 7, opens_with: "v1.5.0 and later" });

    const wal = join(dir, "wal.duckdb");
    await sh([process.execPath, WRITER, "leave-wal", wal]);
    const withWal = JSON.parse((await runBinary(["inspect", wal, "--json"])).stdout);
    expect(withWal.wal).toEqual({ path: `${wal}.wal`, size_bytes: statSync(`${wal}.wal`).size });
    expect(withWal.wal.size_bytes).toBeGreaterThan(0);

    truncateSync(wal, statSync(wal).size - 4096);
    const cut = await runBinary(["inspect", wal]);
    expect(cut.code).toBe(0);
    expect(cut.stdout).toContain("TRUNCATED: the file is shorter than");
  });

  test("free blocks DuckDB trimmed from the end are not truncation; a cut into used blocks is", async () => {
    const dir = tempDir();
    const db = join(dir, "trimmed.duckdb");
    await runSql(db, [
      "CREATE TABLE keep AS SELECT range AS id FROM range(1000)",
      "CHECKPOINT",
      "CREATE TABLE big AS SELECT range AS id, md5(range::VARCHAR) AS s FROM range(300000)",
      "CHECKPOINT",
      "DROP TABLE big",
      "CHECKPOINT",
    ]);
    const r = JSON.parse((await runBinary(["inspect", db, "--json"])).stdout);
    // The premise: the file is shorter than block_count blocks (DuckDB truncated free blocks).
    expect(statSync(db).size).toBeLessThan(r.expected_min_size);
    expect(r.truncated).toBe(false);
    expect((await runBinary(["inspect", db])).stdout).not.toContain("TRUNCATED");
    expect((await runBinary(["backup", db, "--backup-dir", join(dir, "bk"), "--name", "b"])).code).toBe(0);
    expect((await runBinary(["verify", "b", "--backup-dir", join(dir, "bk")])).code).toBe(0);
    // Negative control: cutting into the blocks still in use is reported.
    truncateSync(db, 12288 + 262144 / 2);
    expect(JSON.parse((await runBinary(["inspect", db, "--json"])).stdout).truncated).toBe(true);
  });

  test("a file that is not a DuckDB database, or is missing, is an error naming it", async () => {
    const dir = tempDir();
    const text = join(dir, "notes.duckdb");
    writeFileSync(text, "x".repeat(20000));
    const r = await runBinary(["inspect", text]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${text}: not a DuckDB database file: expected magic "DUCK" at byte 8`);
    const missing = await runBinary(["inspect", join(dir, "nope.duckdb")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`${join(dir, "nope.duckdb")}: database file not found`);
  });
});
