// The compact index (id-table.ts, index-file.ts): every id found after the table grows, ids that
// share their hash slot kept apart, first location wins, a filtered index keeps only what it was
// asked for, and the cost per blob stays within the documented bound.
import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { IdSet, IdTable } from "../../../src/core/repo/id-table.ts";
import { BlobIndex, IndexWriter, indexFileGroups, type IndexFile } from "../../../src/core/repo/index-file.ts";
import { Repository } from "../../../src/core/repo/repository.ts";
import { LocalStore } from "../../../src/core/store/local.ts";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const randomId = () => randomBytes(32).toString("hex");

function file(...packs: [string, [string, number, number, number][]][]): IndexFile {
  return { format: "duckbak-index", version: 1, packs: packs.map(([id, blobs]) => ({ id, size: 1000, blobs })) };
}

describe("IdTable", () => {
  test("agrees with a Map through growth: every id and its fields found, absent ids not", () => {
    const table = new IdTable(2);
    const model = new Map<string, [number, number]>();
    for (let i = 0; i < 50_000; i++) {
      const id = randomId();
      const e = table.insert(id);
      expect(e).toBeLessThan(0); // new
      table.setField(~e, 0, i);
      table.setField(~e, 1, i * 7);
      model.set(id, [i, i * 7]);
      if (i % 5 === 0) expect(table.insert(id)).toBe(~e); // present: its entry, not added again
    }
    expect(table.size).toBe(model.size);
    for (const [id, [a, b]] of model) {
      const e = table.lookup(id);
      expect(table.field(e, 0)).toBe(a);
      expect(table.field(e, 1)).toBe(b);
      expect(table.id(e)).toBe(id);
    }
    for (let i = 0; i < 10_000; i++) expect(table.has(randomId())).toBe(false);
  });

  test("ids that fall in the same slot (same first word) or differ in one last bit stay distinct", () => {
    const set = new IdSet();
    const prefix = "deadbeef";
    const same = Array.from({ length: 3000 }, () => prefix + randomBytes(28).toString("hex"));
    const base = randomBytes(32);
    const bits = Array.from({ length: 8 }, (_, b) => {
      const x = Buffer.from(base);
      x[31]! ^= 1 << b;
      return x.toString("hex");
    });
    for (const id of [...same, ...bits]) set.add(id);
    expect(set.size).toBe(same.length + bits.length);
    for (const id of [...same, ...bits]) expect(set.has(id)).toBe(true);
    expect(set.has(base.toString("hex"))).toBe(false);
    expect(set.has(prefix + "00".repeat(28))).toBe(false);
  });

  test("what is not a blob id: never found, never added", () => {
    const set = new IdSet();
    for (const bad of ["", "ab", "zz".repeat(32), "ab".repeat(31) + "zz", "ab".repeat(33)]) {
      expect(set.has(bad)).toBe(false);
      expect(() => set.add(bad)).toThrow("not a blob id");
    }
  });
});

describe("BlobIndex", () => {
  const [a, b, c, d] = [randomId(), randomId(), randomId(), randomId()];
  const p1 = "1".repeat(64);
  const p2 = "2".repeat(64);

  test("a blob listed in two index files (or two packs): the first location wins", () => {
    const index = new BlobIndex();
    index.addFile(file([p1, [[a, 0, 10, 100], [b, 10, 20, 200]]]));
    index.addFile(file([p2, [[b, 0, 30, 200], [c, 30, 40, 300]]]));
    index.addFile(file([p1, [[a, 0, 10, 100], [b, 10, 20, 200]]]));
    expect(index.size).toBe(3);
    expect(index.get(b)).toEqual({ pack: p1, offset: 10, length: 20, raw: 200 });
    expect(index.get(c)).toEqual({ pack: p2, offset: 30, length: 40, raw: 300 });
    expect(index.has(d)).toBe(false);
    expect(index.get(d)).toBeUndefined();
    expect([...index.blobsIn(p1)].map(([id]) => id)).toEqual([a, b]);
    expect([...index.blobsIn(p2)].map(([id]) => id)).toEqual([c]);
    expect(index.rawBytes()).toBe(600);
  });

  test("filtered: only the wanted blobs get a location; every pack is still known", () => {
    const index = new BlobIndex([b, d]);
    index.addFile(file([p1, [[a, 0, 10, 100], [b, 10, 20, 200]]]));
    index.addFile(file([p2, [[b, 0, 30, 200], [c, 30, 40, 300]]]));
    expect(index.size).toBe(1);
    expect(index.get(b)).toEqual({ pack: p1, offset: 10, length: 20, raw: 200 });
    for (const id of [a, c, d]) expect(index.has(id)).toBe(false); // d: wanted, in no index file
    expect([...index.packs.keys()]).toEqual([p1, p2]);
    expect([...index.blobsIn(p1)].map(([id]) => id)).toEqual([b]);
    expect([...index.blobsIn(p2)]).toEqual([]);
    expect(index.rawBytes()).toBe(200);
  });

  test("costs under 64 bytes per blob", () => {
    const index = new BlobIndex();
    const n = 200_000;
    for (let f = 0; f < n / 1000; f++) {
      const blobs: [string, number, number, number][] = [];
      for (let i = 0; i < 1000; i++) blobs.push([randomId(), i * 5000, 5000, 16384]);
      index.addFile(file([randomId(), blobs]));
    }
    expect(index.size).toBe(n);
    expect(index.memoryBytes / n).toBeLessThan(64);
  });
});

test("index files: at most 256 packs and 65,536 blobs each, a bigger pack alone", () => {
  const packs = (...sizes: number[]) => sizes.map((n) => ({ blobs: new Array(n) }));
  const sizes = (groups: { blobs: unknown[] }[][]) => groups.map((g) => g.map((p) => p.blobs.length));
  expect(sizes(indexFileGroups(packs(40_000, 25_536, 1, 70_000, 10)))).toEqual([[40_000, 25_536], [1], [70_000], [10]]);
  expect(indexFileGroups(packs(...new Array(600).fill(1))).map((g) => g.length)).toEqual([256, 256, 88]);
  expect(indexFileGroups([])).toEqual([]);
});

const newRepository = () => Repository.init(new LocalStore(join(mkdtempSync(join(tmpdir(), "duckbak-index-")), "repo")), "pw", { scrypt: { n: 1024, r: 8, p: 1 } });

describe("index files read back (scanned, or parsed when laid out otherwise)", () => {
  test("the same locations as parsing; another layout parsed; not an index file: damaged", async () => {
    const repo = await newRepository();
    const packOf = (n: number): IndexFile["packs"][number] => ({ id: randomId(), size: 123456789, blobs: Array.from({ length: n }, (_, i) => [randomId(), i * 1000, 1000 + i, 4_294_967_295 - i]) });
    const standard = file();
    standard.packs = [packOf(3), packOf(0), packOf(2000)];
    const reordered = { packs: [packOf(5)], version: 1, format: "duckbak-index" } as unknown as IndexFile; // another key order
    await repo.putJson("index", standard);
    await repo.putJson("index", reordered);
    const scanned = await BlobIndex.load(repo);
    const parsed = new BlobIndex();
    parsed.addFile(standard);
    parsed.addFile(reordered);
    expect(scanned.size).toBe(2008);
    for (const p of [...standard.packs, ...reordered.packs]) {
      expect(scanned.packs.get(p.id)!.size).toBe(123456789);
      for (const [b] of p.blobs) expect(scanned.get(b)).toEqual(parsed.get(b)!);
    }
    const wanted = [standard.packs[2]!.blobs[7]![0], reordered.packs[0]!.blobs[1]![0], randomId()];
    const some = await BlobIndex.load(repo, wanted);
    expect(some.size).toBe(2);
    expect(some.get(wanted[0]!)).toEqual(parsed.get(wanted[0]!)!);
    expect(some.get(wanted[1]!)).toEqual(parsed.get(wanted[1]!)!);
    const malformed = { packs: [{ id: randomId(), size: 1, blobs: [[12345, 0, 1, 1]] }], format: "duckbak-index", version: 1 };
    const bad = await repo.putJson("index", malformed);
    await expect(BlobIndex.load(repo)).rejects.toThrow(`index/${bad}: cannot be read ("12345" is not a blob id)`);
    await repo.store.delete(`index/${bad}`);
    await repo.putJson("index", { something: "else" });
    await expect(BlobIndex.load(repo)).rejects.toThrow(/cannot be read/);
    // A malformed chunk id in a snapshot is never located (the command then names it), not a crash.
    expect(new BlobIndex(["not-an-id"]).has("not-an-id")).toBe(false);
  });
});

test("IndexWriter: an index file is written as soon as it is full, the rest by finish", async () => {
  const repo = await newRepository();
  const writer = new IndexWriter(repo);
  const packs = Array.from({ length: 20 }, () => ({ id: randomId(), size: 1, blobs: Array.from({ length: 4096 }, (_, i) => ({ id: randomId(), offset: i, length: 1, raw: 1 })) }));
  for (const p of packs) writer.add(p);
  for (let i = 0; i < 100 && (await repo.listIds("index")).length === 0; i++) await Bun.sleep(50);
  expect((await repo.listIds("index")).length).toBe(1); // 16 packs = 65,536 blobs; 4 wait for finish
  await writer.finish();
  expect((await repo.listIds("index")).length).toBe(2);
  const index = await BlobIndex.load(repo);
  expect(index.size).toBe(20 * 4096);
  expect(index.get(packs[19]!.blobs[4095]!.id)).toEqual({ pack: packs[19]!.id, offset: 4095, length: 1, raw: 1 });
});
