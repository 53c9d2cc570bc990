// backup --repo with an index too large to hold: chunks are looked up a window at a time. Forced
// here with a tiny window (8 chunks) over a small repository, so that windows end mid-file and
// list blobs wait with them: the snapshot must be the one a whole-index backup makes.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { runSql, sha256File, tempDir } from "../../helpers.ts";
import { createRepoSnapshot, type RepoBackupOptions } from "../../../src/core/repo/backup.ts";
import { restoreRepoSnapshot } from "../../../src/core/repo/restore.ts";
import { loadSnapshot } from "../../../src/core/repo/snapshots.ts";
import { verifyRepository } from "../../../src/core/repo/verify.ts";
import { Repository } from "../../../src/core/repo/repository.ts";
import { LocalStore } from "../../../src/core/store/local.ts";
import { BlobIndex } from "../../../src/core/repo/index-file.ts";

const WINDOWED: Partial<RepoBackupOptions> = { wholeIndexBytes: 0, windowChunks: 8 };

async function snapshot(repo: Repository, db: string, extra: Partial<RepoBackupOptions> = {}) {
  const r = await createRepoSnapshot(repo, { databases: [db], ...extra });
  expect(r.databases.map((d) => d.ok)).toEqual([true]);
  return { id: r.snapshot!, data: r.snapshotData!, files: (await loadSnapshot(repo, r.snapshot!)).databases[0]!.files };
}

/** A database of `rows` rows, and two empty repositories to back it up into. */
async function setup(rows: number) {
  const dir = tempDir();
  const db = join(dir, "a.duckdb");
  await runSql(db, [`CREATE TABLE t AS SELECT range AS id, md5(range::VARCHAR) AS s FROM range(${rows})`, "CHECKPOINT"]);
  const open = (name: string) => Repository.init(new LocalStore(join(dir, name)), "pw", { scrypt: { n: 1024, r: 8, p: 1 } });
  return { dir, db, repos: [await open("a"), await open("b")] as const };
}

describe("backup with the index looked up a window at a time", () => {
  test("the same snapshot as with the whole index: lists, new chunks, restore byte-identical", async () => {
    // ~30 blocks of 256 KiB: several windows of 8 chunks.
    const { dir, db, repos: [whole, windowed] } = await setup(400_000);

    const first = [await snapshot(whole, db), await snapshot(windowed, db, WINDOWED)];
    expect(first[1]!.data.stats.chunks).toBeGreaterThan(24);
    // The lists name ids under each repository's own key: compared through their counts and what is new.
    expect(first[1]!.files.map((f) => f.chunk_count)).toEqual(first[0]!.files.map((f) => f.chunk_count));
    expect(first[1]!.data.stats.new_blobs).toBe(first[0]!.data.stats.new_blobs);

    // Unchanged: nothing new. Changed: the same few chunks as the whole-index backup finds.
    expect((await snapshot(windowed, db, WINDOWED)).data.stats.new_blobs).toBe(0);
    await runSql(db, ["INSERT INTO t SELECT range, 'late' FROM range(400000, 400200)", "CHECKPOINT"]);
    const second = [await snapshot(whole, db), await snapshot(windowed, db, WINDOWED)];
    expect(second[1]!.data.stats.new_blobs).toBeGreaterThan(0);
    expect(second[1]!.data.stats.new_blobs).toBe(second[0]!.data.stats.new_blobs);
    expect(second[1]!.data.stats.added_bytes).toBe(second[0]!.data.stats.added_bytes);

    for (const s of [first[1]!, second[1]!]) {
      const out = join(dir, `out-${s.id.slice(0, 8)}`);
      await restoreRepoSnapshot(windowed, s.id, { restoreDir: out });
      if (s === second[1]) expect(sha256File(join(out, "a.duckdb"))).toBe(sha256File(db));
    }
    const v = await verifyRepository(windowed, { readData: true });
    expect(v.problems).toEqual([]);
  }, 120_000);

  // ~110 chunks in 14 slabs, more than the slab ring holds: the reading waits for the first ones.
  test("a first backup that adds more blobs than it may remember stores and forgets them midway: the same snapshot", async () => {
    const { dir, db, repos: [whole, forgetting] } = await setup(1_600_000);
    const a = await snapshot(whole, db);
    const b = await snapshot(forgetting, db, { heldNewBlobs: 16, windowChunks: 16 });
    expect(b.data.stats.new_blobs).toBe(a.data.stats.new_blobs);
    expect(b.data.stats.added_bytes).toBeGreaterThan(a.data.stats.added_bytes); // more, smaller packs
    // Index files were written midway (one per persist), and nothing is stored twice.
    expect((await forgetting.listIds("index")).length).toBeGreaterThan(2);
    expect((await verifyRepository(forgetting, { readData: true })).problems).toEqual([]);
    expect((await BlobIndex.load(forgetting)).size).toBe((await BlobIndex.load(whole)).size);
    expect((await snapshot(forgetting, db, { heldNewBlobs: 16, windowChunks: 16 })).data.stats.new_blobs).toBe(0);
    await restoreRepoSnapshot(forgetting, b.id, { restoreDir: join(dir, "out") });
    expect(sha256File(join(dir, "out", "a.duckdb"))).toBe(sha256File(db));
  }, 120_000);
});
