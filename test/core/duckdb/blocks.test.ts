import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withDb } from "../../helpers.ts";
import {
  createBlockScanner,
  duckdbChecksum,
  scanDuckDBBlocks,
  scanDuckDBBytes,
} from "../../../src/core/duckdb/blocks.ts";
import { NotADuckDBFileError } from "../../../src/core/duckdb/header.ts";

const BLOCK = 262144;
const START = 12288;

function referenceChecksum(buf: Uint8Array, offset: number, length: number): bigint {
  const view = new DataView(buf.buffer, buf.byteOffset);
  let sum = 5381n;
  for (let i = offset; i < offset + length; i += 8) {
    sum ^= BigInt.asUintN(64, view.getBigUint64(i, true) * 0xbf58476d1ce4e5b9n);
  }
  return sum;
}

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
}


async function rows(path: string, sql: string): Promise<unknown[][]> {
  return withDb(path, { access_mode: "READ_ONLY" }, async (c) => (await c.runAndReadAll(sql)).getRows());
}

async function variant(name: string, bytes: Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

let dir: string;
let healthyPath: string;
let healthy: Uint8Array;
let dataBlock: number; // holds row data of table t
let freeBlock: number; // held table u before it was dropped

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "duckbak-blocks-"));
  healthyPath = join(dir, "healthy.duckdb");
  let dropped: number[] = [];
  await withDb(healthyPath, {}, async (c) => {
    await c.run("create table t as select i, i * 2 as j, 'str' || i as s from range(1500000) r(i)");
    await c.run("checkpoint");
    await c.run("create index ti on t(i)");
    await c.run("delete from t where i % 3 = 0");
    await c.run("checkpoint");
    await c.run("update t set j = j + 1 where i % 5 = 0");
    await c.run("create table u as select i, random() as r from range(1000000) r(i)");
    await c.run("checkpoint");
    const storage = await c.runAndReadAll("select distinct block_id from pragma_storage_info('u') where block_id >= 0");
    dropped = storage.getRows().map((r) => Number(r[0]));
    await c.run("drop table u");
    // Later data keeps u's old blocks inside the file rather than at its truncated end.
    await c.run("create table w as select i, i % 7 as k from range(800000) r(i)");
    await c.run("checkpoint");
  });
  healthy = new Uint8Array(await readFile(healthyPath));
  // The free list is a set handed out lowest first, so the highest freed block is the last to be reused.
  freeBlock = Math.max(...dropped);
  const [[id]] = (await rows(healthyPath, "select min(block_id) from pragma_storage_info('t') where block_id >= 0")) as [
    [bigint],
  ];
  dataBlock = Number(id);
}, 120_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("duckdbChecksum", () => {
  test.each([0, 8, 16, 4088, 262136, 1 << 20])("matches the BigInt reference on %p random bytes", (n) => {
    const buf = randomBytes(n + 16);
    expect(duckdbChecksum(buf, 8, n)).toBe(referenceChecksum(buf, 8, n));
  });

  test("matches the reference at unaligned offsets and on extreme words", () => {
    const buf = randomBytes(4096 + 3);
    buf.fill(0xff, 3, 67);
    buf.fill(0, 67, 131);
    for (const offset of [1, 2, 3]) {
      expect(duckdbChecksum(buf, offset, 4096)).toBe(referenceChecksum(buf, offset, 4096));
    }
    expect(duckdbChecksum(new Uint8Array(0))).toBe(5381n);
    expect(duckdbChecksum(new Uint8Array(8).fill(0xff))).toBe(5381n ^ (0xffff_ffff_ffff_ffffn * 0xbf58476d1ce4e5b9n) % 2n ** 64n);
  });

  test("rejects a length that is not a multiple of 8", () => {
    expect(() => duckdbChecksum(new Uint8Array(12))).toThrow(RangeError);
  });

  test("reproduces the stored checksums of a real file", () => {
    const view = new DataView(healthy.buffer, healthy.byteOffset);
    for (const offset of [0, 4096, 8192]) {
      expect(duckdbChecksum(healthy, offset + 8, 4088)).toBe(view.getBigUint64(offset, true));
    }
    const block = START + dataBlock * BLOCK;
    expect(duckdbChecksum(healthy, block + 8, BLOCK - 8)).toBe(view.getBigUint64(block, true));
  });
});

describe("scanDuckDBBlocks", () => {
  test("a healthy database with free blocks validates every block", async () => {
    const [[free, total]] = (await rows(healthyPath, "select free_blocks, total_blocks from pragma_database_size()")) as [
      [bigint, bigint],
    ];
    expect(free).toBeGreaterThan(0n);
    expect(healthy.length).toBe(START + Number(total) * BLOCK);
    const result = await scanDuckDBBlocks(healthyPath, { chunkSize: 3 * 1024 * 1024 });
    expect(result.blocksChecked).toBe(Number(total));
    expect(result.badBlocks).toEqual([]);
    expect(result.freeBadBlocks).toEqual([]);
    expect(result.missingBlocks).toBe(0);
    expect(result.badHeaders).toEqual([]);
    expect(result.trailingBytes).toBe(0);
    expect(result.freeListResolved).toBe(true);
    expect(result.header.active!.blockCount).toBe(Number(total));
  });

  test("streaming in odd-sized chunks gives the same result as the file scan", async () => {
    const bytes = healthy.slice();
    bytes[START + dataBlock * BLOCK + 5000] ^= 4;
    const scanner = createBlockScanner();
    const sizes = [1, 7, 12280, 100_003, BLOCK + 5, 3 * BLOCK - 1];
    for (let at = 0, i = 0; at < bytes.length; i++) {
      const size = sizes[i % sizes.length]!;
      scanner.push(bytes.subarray(at, at + size));
      at += size;
    }
    const streamed = scanner.finish();
    expect(streamed).toEqual(await scanDuckDBBlocks(await variant("stream.duckdb", bytes)));
    expect(streamed.badBlocks).toEqual([{ index: dataBlock, offset: START + dataBlock * BLOCK }]);
  });

  test("a flipped bit in a data block is reported at its offset, and DuckDB agrees", async () => {
    const bytes = healthy.slice();
    const offset = START + dataBlock * BLOCK;
    bytes[offset + 100_000] ^= 0x40;
    const path = await variant("bad-data.duckdb", bytes);
    const result = await scanDuckDBBlocks(path);
    expect(result.badBlocks).toEqual([{ index: dataBlock, offset }]);
    expect(result.freeBadBlocks).toEqual([]);
    expect(result.badHeaders).toEqual([]);
    await expect(rows(path, "select sum(i), sum(j), max(s) from t")).rejects.toThrow(/checksum/);
  });

  test.each([
    ["a flipped bit", (b: Uint8Array, at: number) => void (b[at + 9999] ^= 1)],
    ["zeros (a hole-punched block)", (b: Uint8Array, at: number) => void b.fill(0, at, at + BLOCK)],
  ])("%s in a free block is harmless, and DuckDB agrees", async (_name, damage) => {
    const bytes = healthy.slice();
    const offset = START + freeBlock * BLOCK;
    damage(bytes, offset);
    const path = await variant("bad-free.duckdb", bytes);
    const result = await scanDuckDBBlocks(path);
    expect(result.badBlocks).toEqual([]);
    expect(result.freeBadBlocks).toEqual([{ index: freeBlock, offset }]);
    expect(await rows(path, "select count(*), sum(i), max(s) from t")).toHaveLength(1);
    expect(await rows(path, "select count(*), sum(k) from w")).toEqual([[800000n, 2399995n]]);
  });

  test("the free list read from the file matches DuckDB's count of free blocks", async () => {
    // Damage every block but the free list's own: used blocks must all be bad, free ones harmless.
    const bytes = healthy.slice();
    const listBlock = scanDuckDBBytes(bytes).header.active!.freeList!.block;
    const blocks = (bytes.length - START) / BLOCK;
    for (let k = 0; k < blocks; k++) if (k !== listBlock) bytes[START + k * BLOCK + 64] ^= 1;
    const [[used, free]] = (await rows(healthyPath, "select used_blocks, free_blocks from pragma_database_size()")) as [
      [bigint, bigint],
    ];
    const result = scanDuckDBBytes(bytes);
    expect(result.freeListResolved).toBe(true);
    expect(result.badBlocks.length).toBe(Number(used) - 1);
    expect(result.freeBadBlocks.length).toBe(Number(free));
    expect(result.freeBadBlocks.map((b) => b.index)).toContain(freeBlock);
    expect(result.badBlocks.map((b) => b.index)).toContain(dataBlock);
  });

  test.each([
    ["database1", 4096],
    ["database2", 8192],
  ] as const)("a flipped bit in %s is reported and the other header is used", async (name, offset) => {
    const bytes = healthy.slice();
    bytes[offset + 2000] ^= 0x80;
    const result = await scanDuckDBBlocks(await variant(`bad-${name}.duckdb`, bytes));
    expect(result.badHeaders).toEqual([{ name, offset }]);
    expect(result.header.activeHeader).toBe(offset === 4096 ? 1 : 0);
    expect(result.badBlocks).toEqual([]);
    expect(result.blocksChecked).toBe((bytes.length - START) / BLOCK);
  });

  test("a flipped bit in the main header is reported", async () => {
    const bytes = healthy.slice();
    bytes[3000] ^= 2;
    const result = await scanDuckDBBlocks(await variant("bad-main.duckdb", bytes));
    expect(result.badHeaders).toEqual([{ name: "main", offset: 0 }]);
    expect(result.badBlocks).toEqual([]);
  });

  test("wrong magic rejects with NotADuckDBFileError", async () => {
    const bytes = healthy.slice(0, 40000);
    bytes.set(new TextEncoder().encode("PAR1"), 8);
    const path = await variant("not-duckdb.bin", bytes);
    await expect(scanDuckDBBlocks(path)).rejects.toThrow(NotADuckDBFileError);
  });

  test("a file cut inside the headers rejects with NotADuckDBFileError", async () => {
    const path = await variant("tiny.duckdb", healthy.slice(0, 5000));
    await expect(scanDuckDBBlocks(path)).rejects.toThrow("5000 bytes is shorter than the 12288-byte file header");
  });

  describe("a free list whose chain points backwards", () => {
    // Synthetic 16 KiB-block file: the list of 40 free blocks starts in block 5 and continues in block 2,
    // which a front-to-back stream has already passed.
    const size = 16384;
    const subBlock = 248; // floor((16384 - 8) / 64) rounded down to 8
    const bytes = new Uint8Array(START + 64 * size);
    const view = new DataView(bytes.buffer);
    const pointer = (block: number, sub: number) => (BigInt(sub) << 56n) | BigInt(block);
    const subAt = (block: number, sub: number) => START + block * size + 8 + sub * subBlock;
    bytes.set(new TextEncoder().encode("DUCK"), 8);
    view.setBigUint64(12, 64n, true);
    for (const [offset, iteration] of [[4096, 2n], [8192, 1n]] as const) {
      [iteration, 0xffff_ffff_ffff_ffffn, pointer(5, 0), 64n, BigInt(size), 2048n, 1n].forEach((v, i) =>
        view.setBigUint64(offset + 8 + i * 8, v, true),
      );
    }
    view.setBigUint64(subAt(5, 0), pointer(2, 7), true);
    const list = [40n, ...Array.from({ length: 40 }, (_, i) => BigInt(10 + i))]; // count, then ids 10..49
    const perSubBlock = (subBlock - 8) / 8;
    list.forEach((v, i) => {
      const at = i < perSubBlock ? subAt(5, 0) : subAt(2, 7);
      view.setBigUint64(at + 8 + (i % perSubBlock) * 8, v, true);
    });
    view.setBigUint64(subAt(2, 7), 0xffff_ffff_ffff_ffffn, true);
    for (const offset of [0, 4096, 8192]) view.setBigUint64(offset, duckdbChecksum(bytes, offset + 8, 4088), true);
    for (let k = 0; k < 64; k++) {
      const at = START + k * size;
      view.setBigUint64(at, duckdbChecksum(bytes, at + 8, size - 8), true);
    }
    bytes[START + 40 * size + 500] ^= 1; // free
    bytes[START + 60 * size + 500] ^= 1; // in use

    test("is followed with random access", async () => {
      for (const result of [scanDuckDBBytes(bytes), await scanDuckDBBlocks(await variant("chain.duckdb", bytes))]) {
        expect(result.freeListResolved).toBe(true);
        expect(result.badBlocks).toEqual([{ index: 60, offset: START + 60 * size }]);
        expect(result.freeBadBlocks).toEqual([{ index: 40, offset: START + 40 * size }]);
      }
    });

    test("without random access every failing block counts as bad", () => {
      const scanner = createBlockScanner();
      scanner.push(bytes);
      const result = scanner.finish();
      expect(result.freeListResolved).toBe(false);
      expect(result.badBlocks.map((b) => b.index)).toEqual([40, 60]);
      expect(result.freeBadBlocks).toEqual([]);
    });
  });

  describe("a truncated file", () => {
    let simple: Uint8Array;
    let total: number;

    beforeAll(async () => {
      const path = join(dir, "simple.duckdb");
      await withDb(path, {}, (c) => c.run("create table t as select i, random() as r from range(3000000) r(i)"));
      const [[free, blocks]] = (await rows(path, "select free_blocks, total_blocks from pragma_database_size()")) as [
        [bigint, bigint],
      ];
      // With no free block every block below block_count is in use, so each one cut off is missing.
      expect(free).toBe(0n);
      simple = new Uint8Array(await readFile(path));
      total = Number(blocks);
      expect(total).toBeGreaterThan(8);
    }, 60_000);

    test("inside a block: trailing bytes and every cut block reported", async () => {
      const cut = START + 5 * BLOCK + 1234;
      const result = await scanDuckDBBlocks(await variant("cut-mid.duckdb", simple.slice(0, cut)));
      expect(result.blocksChecked).toBe(5);
      expect(result.trailingBytes).toBe(1234);
      expect(result.missingBlocks).toBe(total - 5);
      expect(result.badBlocks).toEqual([]);
    });

    test("on a block boundary: the missing blocks are still counted", async () => {
      const result = await scanDuckDBBlocks(await variant("cut-edge.duckdb", simple.slice(0, START + 7 * BLOCK)));
      expect(result.blocksChecked).toBe(7);
      expect(result.trailingBytes).toBe(0);
      expect(result.missingBlocks).toBe(total - 7);
    });
  });
});
