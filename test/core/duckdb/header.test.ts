import { opensWith } from "../../../src/core/duckdb/compat.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DuckDBConnection } from "@duckdb/node-api";
import { withDb } from "../../helpers.ts";
import {
  NotADuckDBFileError,
  parseDuckDBHeader,
} from "../../../src/core/duckdb/header.ts";

let dir: string;


async function one(c: DuckDBConnection, sql: string): Promise<unknown[]> {
  return (await c.runAndReadAll(sql)).getRows()[0]!;
}

async function headOf(path: string): Promise<Uint8Array> {
  return new Uint8Array(await readFile(path)).subarray(0, 12288);
}

let defaultPath: string;
let version: string;
let sourceId: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "duckbak-header-"));
  defaultPath = join(dir, "default.duckdb");
  [version, sourceId] = (await withDb(defaultPath, {}, async (c) => {
    await c.run("create table t as select i, 'row ' || i as s from range(300000) r(i)");
    await c.run("checkpoint");
    await c.run("insert into t select i, 'more' from range(1000) r(i)");
    await c.run("checkpoint");
    return one(c, "select version(), source_id from pragma_version()");
  })) as [string, string];
}, 60_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("parseDuckDBHeader", () => {
  test("reads the main header of a file written by this DuckDB", async () => {
    const h = parseDuckDBHeader(await headOf(defaultPath));
    expect(version).toMatch(/^v\d+\.\d+\.\d+$/);
    expect(h.magicOk).toBe(true);
    expect(h.creatorVersion).toBe(version);
    expect(h.sourceId).toBe(sourceId);
    expect(h.storageVersion).toBe(64);
    expect(h.mainChecksumValid).toBe(true);
    expect(h.encrypted).toBe(false);
  });

  test("reads both database headers and picks the newer one", async () => {
    const h = parseDuckDBHeader(await headOf(defaultPath));
    const [h1, h2] = h.headers!;
    expect(h1.checksumValid).toBe(true);
    expect(h2.checksumValid).toBe(true);
    expect([h1.offset, h2.offset]).toEqual([4096, 8192]);
    // Two explicit checkpoints alternate the slots: iteration 1 in the first, 2 in the second.
    expect([h1.iteration, h2.iteration]).toEqual([1, 2]);
    expect(h.activeHeader).toBe(1);
    expect(h.active).toBe(h2);
    expect(h2.blockAllocSize).toBe(262144);
    expect(h2.vectorSize).toBe(2048);
    expect(h2.serializationCompatibility).toBe(1);
    // The free list also records the metadata blocks, so it exists even with no free block.
    expect(h2.metaBlock).not.toBeNull();
    expect(h2.freeList).not.toBeNull();
    const [totalBlocks] = await withDb(defaultPath, { access_mode: "READ_ONLY" }, (c) =>
      one(c, "select total_blocks from pragma_database_size()"),
    );
    expect(h2.blockCount).toBe(Number(totalBlocks));
  });

  test("reads newer storage versions and small blocks", async () => {
    const path = join(dir, "v15.duckdb");
    await withDb(path, { storage_compatibility_version: "v1.5.0", default_block_size: "16384" }, (c) =>
      c.run("create table t as select * from range(100000)"),
    );
    const h = parseDuckDBHeader(await headOf(path));
    expect(h.storageVersion).toBe(68);
    expect(h.active!.serializationCompatibility).toBe(7);
    expect(h.active!.blockAllocSize).toBe(16384);
    expect(opensWith(h)).toBe("v1.5.0 and later");
  });

  test("an encrypted file has readable main header but opaque database headers", async () => {
    const path = join(dir, "encrypted.duckdb");
    await withDb(":memory:", {}, async (c) => {
      await c.run("set force_mbedtls_unsafe = 'true'");
      await c.run(`attach '${path.replaceAll("'", "''")}' as e (encryption_key 'secret')`);
      await c.run("create table e.t as select * from range(1000)");
      await c.run("detach e");
    });
    const h = parseDuckDBHeader(await headOf(path));
    expect(h.encrypted).toBe(true);
    expect(h.mainChecksumValid).toBe(true);
    expect(h.creatorVersion).toBe(version);
    expect(h.headers).toBeNull();
    expect(h.activeHeader).toBeNull();
  });

  test.each([
    ["database1", 4096, 1],
    ["database2", 8192, 0],
  ])("a flipped bit in %s marks it invalid and makes the other active", async (_name, offset, other) => {
    const bytes = (await headOf(defaultPath)).slice();
    bytes[offset + 40] ^= 0x10;
    const h = parseDuckDBHeader(bytes);
    expect(h.headers![1 - other]!.checksumValid).toBe(false);
    expect(h.headers![other]!.checksumValid).toBe(true);
    expect(h.activeHeader).toBe(other as 0 | 1);
  });

  test("a flipped bit in the main header fails its checksum only", async () => {
    const bytes = (await headOf(defaultPath)).slice();
    bytes[200] ^= 1;
    const h = parseDuckDBHeader(bytes);
    expect(h.mainChecksumValid).toBe(false);
    expect(h.headers!.map((x) => x.checksumValid)).toEqual([true, true]);
  });

  test("wrong magic throws NotADuckDBFileError", async () => {
    const bytes = (await headOf(defaultPath)).slice();
    bytes.set(new TextEncoder().encode("SQLi"), 8);
    expect(() => parseDuckDBHeader(bytes)).toThrow(NotADuckDBFileError);
    expect(() => parseDuckDBHeader(bytes)).toThrow('expected magic "DUCK" at byte 8, found "SQLi"');
  });

  test("a buffer shorter than the three headers throws NotADuckDBFileError", async () => {
    const bytes = (await headOf(defaultPath)).subarray(0, 8192);
    expect(() => parseDuckDBHeader(bytes)).toThrow(NotADuckDBFileError);
    expect(() => parseDuckDBHeader(bytes)).toThrow("8192 bytes is shorter than the 12288-byte file header");
  });
});
