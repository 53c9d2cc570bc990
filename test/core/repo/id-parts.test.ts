// stats, verify and cleanup of the whole repository with an index too large to hold: they go
// through the blob ids a part of the id space at a time (index-file.ts IndexParts). Forced here
// with tiny parts (about 8 passes) over a small repository with several snapshots and changes: every
// result must be the one a single pass gives, damage included.
import { describe, expect, test } from "bun:test";
import { copyFileSync, cpSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { killAtPause, ROOT, runSql, sha256File, tempDir } from "../../helpers.ts";
import { createRepoSnapshot } from "../../../src/core/repo/backup.ts";
import { copySnapshots, type CopyOptions } from "../../../src/core/repo/copy.ts";
import { cleanupRepository, type RepoCleanupResult } from "../../../src/core/repo/gc.ts";
import { BlobIndex, IndexParts, IndexWriter, readIndexFile } from "../../../src/core/repo/index-file.ts";
import { loadSnapshot, loadSnapshots } from "../../../src/core/repo/snapshots.ts";
import { repackBlobs } from "../../../src/core/repo/repack.ts";
import { Repository } from "../../../src/core/repo/repository.ts";
import { restoreRepoSnapshot } from "../../../src/core/repo/restore.ts";
import { repositoryStats } from "../../../src/core/repo/stats.ts";
import { verifyRepository } from "../../../src/core/repo/verify.ts";
import { LocalStore } from "../../../src/core/store/local.ts";

const PASSES = 8;
const dir = tempDir();
/** The databases' digests as each kept snapshot holds them. */
const expected: { snapshot: string; db: string; sha256: string }[] = [];

const open = (path: string) => Repository.open(new LocalStore(path), "pw");
/** passIndexBytes that cuts `path`'s index into about PASSES parts. */
const tiny = (path: string) => Math.ceil(readdirSync(join(path, "index")).reduce((n, f) => n + statSync(join(path, "index", f)).size, 0) / PASSES);
/** A copy of the repository to change. */
function copyOf(name: string): string {
  const to = join(dir, name);
  cpSync(join(dir, "repo"), to, { recursive: true });
  return to;
}
const packFiles = (path: string) => readdirSync(join(path, "data"), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));

/** The repository, made by the first test that needs it. */
let made: Promise<void> | null = null;
const ready = () => (made ??= setup());

async function setup(): Promise<void> {
  const a = join(dir, "a.duckdb");
  const b = join(dir, "b.duckdb");
  await runSql(a, ["CREATE TABLE t AS SELECT range AS id, md5(range::VARCHAR) AS s FROM range(400000)", "CHECKPOINT"]);
  await runSql(b, ["CREATE TABLE u AS SELECT range AS id, range * 7 AS v, md5((range * 3)::VARCHAR) AS s FROM range(200000)", "CHECKPOINT"]);
  const repo = await Repository.init(new LocalStore(join(dir, "repo")), "pw", { scrypt: { n: 1024, r: 8, p: 1 } });
  const snapshot = async (dbs: string[]) => {
    const r = await createRepoSnapshot(repo, { databases: dbs });
    expect(r.databases.every((d) => d.ok)).toBe(true);
    for (const db of dbs) expected.push({ snapshot: r.snapshot!, db, sha256: sha256File(db) });
  };
  // c: a's twin, so that a snapshot holds the same chunks twice.
  const c = join(dir, "c.duckdb");
  copyFileSync(a, c);
  await snapshot([a, b, c]);
  await runSql(a, ["UPDATE t SET s = 'changed' WHERE id % 40 = 0", "CHECKPOINT"]);
  await snapshot([a]);
  await runSql(a, ["DELETE FROM t WHERE id < 150000", "INSERT INTO t SELECT range, 'new' || range FROM range(400000, 500000)", "CHECKPOINT"]);
  await runSql(b, ["UPDATE u SET v = -v WHERE id % 3 = 0", "CHECKPOINT"]);
  await snapshot([a, b, c]);
  await runSql(b, ["INSERT INTO u SELECT range, range, 'late' FROM range(200000, 260000)", "CHECKPOINT"]);
  await snapshot([b]);
}

describe("whole-repository commands in passes over parts of the id space", () => {
  test("stats: the same numbers", async () => {
    await ready();
    const repo = await open(join(dir, "repo"));
    const one = await repositoryStats(repo);
    expect(one.blobs).toBeGreaterThan(50);
    expect(one.listBlobs).toBeGreaterThan(4);
    expect(await repositoryStats(repo, { passIndexBytes: tiny(join(dir, "repo")) })).toEqual(one);
  }, 120_000);

  test("verify, clean: the same result, with and without --read-data", async () => {
    await ready();
    const repo = await open(join(dir, "repo"));
    for (const readData of [false, true]) {
      const one = await verifyRepository(repo, { readData });
      expect(one.problems).toEqual([]);
      expect(one.packs).toBeGreaterThan(3);
      expect(await verifyRepository(repo, { readData, passIndexBytes: tiny(join(dir, "repo")) })).toEqual(one);
    }
  });

  test("verify of a damaged repository: the same problems, in the same order", async () => {
    await ready();
    const path = copyOf("damaged");
    const packs = packFiles(path).sort();
    // One pack missing, one with a flipped byte in a blob, one truncated.
    rmSync(packs[0]!);
    const flipped = readFileSync(packs[1]!);
    flipped[100] = flipped[100]! ^ 0xff;
    writeFileSync(packs[1]!, flipped);
    writeFileSync(packs[2]!, readFileSync(packs[2]!).subarray(0, 1000));
    const repo = await open(path);
    for (const readData of [false, true]) {
      const one = await verifyRepository(repo, { readData });
      expect(one.ok).toBe(false);
      expect(one.problems.some((p) => p.includes("is missing"))).toBe(true);
      expect(one.problems.some((p) => p.includes("truncated"))).toBe(true);
      expect(one.problems.filter((p) => /: chunk (list )?\d+ /.test(p)).length).toBeGreaterThan(0);
      if (readData) expect(one.problems.some((p) => p.includes("does not match its name"))).toBe(true);
      expect(await verifyRepository(repo, { readData, passIndexBytes: tiny(path) })).toEqual(one);
    }
  }, 60_000);

  test("verify: a chunk in no index file, in each part in turn, is found and named as in one pass", async () => {
    await ready();
    const repo = await open(join(dir, "repo"));
    const { parts } = await IndexParts.of(repo, tiny(join(dir, "repo")));
    expect(parts.length).toBe(PASSES);
    const lists = new Set<string>();
    for (const s of await loadSnapshots(repo)) for (const db of (await loadSnapshot(repo, s.id)).databases) for (const f of db.files) f.lists.forEach((id) => lists.add(id));
    for (const part of parts) {
      // A copy whose index lacks one chunk of this part (its pack keeps it).
      const path = copyOf(`unindexed-${part.n}`);
      const copy = await open(path);
      let dropped = "";
      for (const f of await copy.listIds("index")) {
        const file = await readIndexFile(copy, f);
        for (const p of file.packs) {
          const i = dropped ? -1 : p.blobs.findIndex(([b]) => part.has(b) && !lists.has(b));
          if (i < 0) continue;
          dropped = p.blobs[i]![0];
          p.blobs.splice(i, 1);
          await copy.putJson("index", file);
          await copy.store.delete(`index/${f}`);
        }
      }
      expect(dropped).not.toBe("");
      const one = await verifyRepository(copy, {});
      expect(one.problems.length).toBeGreaterThan(0);
      expect(one.problems.every((p) => p.includes(`(${dropped.slice(0, 12)}…): in no index file`))).toBe(true);
      expect(await verifyRepository(copy, { passIndexBytes: tiny(path) })).toEqual(one);
    }
  }, 60_000);

  test("cleanup (forget, blobs stored twice, repacking): the same packs deleted and repacked; the rest verifies and restores", async () => {
    await ready();
    // Every blob stored three times, as repacks killed before their old index files went leave them.
    const twice = copyOf("twice");
    const repo = await open(twice);
    const index = await BlobIndex.load(repo);
    const files = await repo.listIds("index");
    for (let round = 0; round < 2; round++) {
      const chosen = new Set(index.packs.keys());
      async function* sources() {
        for (const f of files) for (const p of (await readIndexFile(repo, f)).packs) if (chosen.delete(p.id)) yield p;
      }
      const indexer = new IndexWriter(repo);
      const r = await repackBlobs(repo, sources(), 0, () => true, indexer);
      await indexer.finish();
      expect(r.blobs).toBeGreaterThan(10);
    }
    const runs: { path: string; result: RepoCleanupResult; packs: string[] }[] = [];
    // (Cleanup's passes hold the used blobs only, about half of these: its parts are cut finer.)
    for (const [name, passIndexBytes] of [["single", undefined], ["passes", tiny(twice) / 2]] as const) {
      const path = join(dir, `cleanup-${name}`);
      cpSync(twice, path, { recursive: true });
      const before = packFiles(path);
      const result = await cleanupRepository(await open(path), { policy: { keepLast: 1 }, maxUnused: 0, passIndexBytes });
      expect(result.errors).toEqual([]);
      // The new packs' names differ (each pack's header is sealed with a nonce of its own): the old ones left are compared.
      runs.push({ path, result, packs: packFiles(path).filter((p) => before.includes(p)).map((p) => p.slice(path.length)) });
    }
    const [one, passes] = runs;
    expect(one!.result.forgotten.length).toBe(2);
    expect(one!.result.packsDeleted).toBeGreaterThan(0);
    expect(one!.result.packsRepacked).toBeGreaterThan(0);
    expect(one!.result.blobsRepacked).toBeGreaterThan(0);
    const { kept: _k, forgotten: _f, ...counts } = one!.result;
    const { kept: _k2, forgotten: _f2, ...passCounts } = passes!.result;
    expect(passCounts).toEqual(counts);
    expect(passes!.result.forgotten.map((s) => s.id)).toEqual(one!.result.forgotten.map((s) => s.id));
    expect(passes!.packs.sort()).toEqual(one!.packs.sort());
    // What is left verifies, every byte, and each kept snapshot restores its databases byte-identical.
    const left = await open(passes!.path);
    expect((await verifyRepository(left, { readData: true })).problems).toEqual([]);
    // No blob is stored twice any more.
    const after = await BlobIndex.load(left);
    expect([...after.packs.values()].reduce((n, p) => n + p.blobs, 0)).toBe(after.size);
    const kept = new Set(passes!.result.kept.map((k) => k.snapshot.id));
    for (const e of expected.filter((e) => kept.has(e.snapshot))) {
      const out = join(dir, `restored-${e.snapshot.slice(0, 8)}`);
      await restoreRepoSnapshot(left, e.snapshot, { restoreDir: out, only: [e.db] });
      expect(sha256File(join(out, e.db.slice(dir.length + 1)))).toBe(e.sha256);
    }
    // A second cleanup in passes finds nothing left to do.
    const again = await cleanupRepository(left, { policy: { keepLast: 1 }, maxUnused: 0, passIndexBytes: tiny(passes!.path) });
    expect([again.packsDeleted, again.packsRepacked]).toEqual([0, 0]);
  }, 120_000);

  test("copy with neither index held (windows of 8 chunks, or one per snapshot): the same snapshots and new blobs; the destination verifies and restores", async () => {
    await ready();
    const src = await open(join(dir, "repo"));
    const order = (await loadSnapshots(src)).map((s) => s.id).reverse(); // oldest first
    const runs: { repo: Repository; copied: number[] }[] = [];
    // Windows of 8 chunks (one list each), and the default (a snapshot in one window, twins included).
    for (const [name, limits] of [["whole", {}], ["windowed", { wholeIndexBytes: 0, windowChunks: 8 }], ["one-window", { wholeIndexBytes: 0 }]] as [string, CopyOptions][]) {
      const dst = await Repository.init(new LocalStore(join(dir, `copy-${name}`)), "pw2", { scrypt: { n: 1024, r: 8, p: 1 } });
      // Two snapshots, then all: the later ones mostly find their chunks in the destination already.
      const first = await copySnapshots(src, dst, { ...limits, snapshots: order.slice(0, 2) });
      const all = await copySnapshots(src, dst, limits);
      runs.push({ repo: dst, copied: [...first, ...all].map((r) => (r.copied ? r.newBlobs : -1)) });
    }
    const [whole, windowed, oneWindow] = runs;
    expect(whole!.copied.filter((n) => n > 0).length).toBe(4);
    expect(windowed!.copied).toEqual(whole!.copied);
    expect(oneWindow!.copied).toEqual(whole!.copied);
    // (The lists name ids under each destination's own key: compared through their counts.)
    const snapshotsOf = async (repo: Repository) =>
      Promise.all((await loadSnapshots(repo)).map(async (s) => (await loadSnapshot(repo, s.id)).databases.map((d) => ({ ...d, files: d.files.map((f) => ({ ...f, lists: f.lists.length })) }))));
    expect(await snapshotsOf(windowed!.repo)).toEqual(await snapshotsOf(whole!.repo));
    expect(await snapshotsOf(oneWindow!.repo)).toEqual(await snapshotsOf(whole!.repo));
    // Nothing stored twice, nothing missing; windows it was: packs stored midway (every 8 new blobs), so more of them.
    const [wholeIndex, windowedIndex] = [await BlobIndex.load(whole!.repo), await BlobIndex.load(windowed!.repo)];
    expect(windowedIndex.size).toBe(wholeIndex.size);
    expect((await BlobIndex.load(oneWindow!.repo)).size).toBe(wholeIndex.size);
    expect(windowedIndex.packs.size).toBeGreaterThan(wholeIndex.packs.size);
    expect((await verifyRepository(windowed!.repo, { readData: true })).problems).toEqual([]);
    const copies = new Map((await loadSnapshots(windowed!.repo)).map((s) => [s.snapshot.timestamp + s.snapshot.databases.map((d) => d.name).join(), s.id]));
    for (const s of await loadSnapshots(src)) {
      const target = copies.get(s.snapshot.timestamp + s.snapshot.databases.map((d) => d.name).join())!;
      for (const e of expected.filter((e) => e.snapshot === s.id)) {
        const out = join(dir, `copied-${s.id.slice(0, 8)}`);
        await restoreRepoSnapshot(windowed!.repo, target, { restoreDir: out, only: [e.db] });
        expect(sha256File(join(out, e.db.slice(dir.length + 1)))).toBe(e.sha256);
      }
    }
  }, 120_000);

  test("windowed copy killed -9 between a window's packs and its index, then after its index: the destination verifies each time, the next copy reuses what was indexed, stores nothing twice, and restores", async () => {
    await ready();
    const src = await open(join(dir, "repo"));
    const limits: CopyOptions = { wholeIndexBytes: 0, windowChunks: 8 };
    const init = (name: string) => Repository.init(new LocalStore(join(dir, name)), "pw2", { scrypt: { n: 1024, r: 8, p: 1 } });
    const full = await copySnapshots(src, await init("copy-full"), limits);
    const killed = await init("copy-killed");
    for (const point of ["copy:window-packed", "copy:window-indexed"]) {
      await killAtPause([join(ROOT, "test/fixtures/copy-windowed.ts"), join(dir, "repo"), join(dir, "copy-killed")], point, { exe: process.execPath });
      const v = await verifyRepository(killed, { readData: true });
      expect(v.problems).toEqual([]);
      expect(v.snapshots).toEqual([]); // killed inside the first snapshot: none appeared
      expect(v.unindexedPacks).toBeGreaterThan(0); // the first kill's packs, never indexed
    }
    const indexedBefore = (await BlobIndex.load(killed)).size;
    expect(indexedBefore).toBeGreaterThan(0); // the second kill came after a window's index files
    const again = await copySnapshots(src, killed, limits);
    const newBlobs = (r: { newBlobs: number }[]) => r.reduce((n, c) => n + c.newBlobs, 0);
    expect(newBlobs(again)).toBeLessThan(newBlobs(full));
    const index = await BlobIndex.load(killed);
    expect([...index.packs.values()].reduce((n, p) => n + p.blobs, 0)).toBe(index.size); // none indexed twice
    expect(index.size).toBe((await BlobIndex.load(await Repository.open(new LocalStore(join(dir, "copy-full")), "pw2"))).size);
    expect((await verifyRepository(killed, { readData: true })).problems).toEqual([]);
    const cleaned = await cleanupRepository(killed, { policy: { keepLast: 10 }, maxUnused: 0 });
    expect(cleaned.packsDeleted).toBeGreaterThan(0); // the unindexed packs
    const v = await verifyRepository(killed, { readData: true });
    expect([v.problems, v.unindexedPacks, v.snapshots.length]).toEqual([[], 0, 4]);
    const copies = new Map((await loadSnapshots(killed)).map((s) => [s.snapshot.timestamp + s.snapshot.databases.map((d) => d.name).join(), s.id]));
    for (const s of await loadSnapshots(src))
      for (const e of expected.filter((e) => e.snapshot === s.id)) {
        const out = join(dir, `killed-copy-${s.id.slice(0, 8)}`);
        await restoreRepoSnapshot(killed, copies.get(s.snapshot.timestamp + s.snapshot.databases.map((d) => d.name).join())!, { restoreDir: out, only: [e.db] });
        expect(sha256File(join(out, e.db.slice(dir.length + 1)))).toBe(e.sha256);
      }
  }, 180_000);
});
