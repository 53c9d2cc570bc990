// backup --repo hashes only the chunks that changed since this host's last backup (the sum cache):
// what changed is still found, whatever kind of change, and a damaged or foreign cache is not believed.
import { describe, expect, test } from "bun:test";
import { chmodSync, closeSync, copyFileSync, lstatSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { duckdbChecksum } from "../../src/core/duckdb/blocks.ts";
import { BLOCKS_START } from "../../src/core/duckdb/header.ts";
import { killAtPause, runBinary, runSql, sh, sha256File, tempDir, withSmallDisk } from "../helpers.ts";

const PASSWORD = "correct horse battery staple";
const BLOCK = 262144;

describe("sum cache", () => {
  test("a second backup hashes only changed blocks, and a change DuckDB's own checksum cannot see is still backed up", async () => {
    const dir = tempDir();
    const cache = join(dir, "cache");
    const env = { ...process.env, NO_COLOR: "1", DUCKBAK_PASSWORD: PASSWORD, XDG_CACHE_HOME: cache } as Record<string, string>;
    const run = (args: string[]) => runBinary(args, { env });
    const repo = join(dir, "repo");
    const db = join(dir, "a.duckdb");
    await runSql(db, [
      "CREATE TABLE t AS SELECT range AS id, md5(range::VARCHAR) AS s, range * 7 % 1000 AS v FROM range(400000)",
      "CHECKPOINT",
    ]);
    expect((await run(["init", "--repo", repo])).code).toBe(0);
    const versions: string[] = [];
    const backup = async (...extra: string[]) => {
      const r = await run(["backup", "--repo", repo, "--json", ...extra, db]);
      if (r.code !== 0) throw new Error(`backup exited ${r.code}: ${r.stderr}`);
      versions.push(await sha256File(db));
      return JSON.parse(r.stdout).stats as { logical_bytes: number; new_blobs: number; hashed_bytes: number };
    };

    const first = await backup();
    expect(first.hashed_bytes).toBe(first.logical_bytes);
    const sums = join(cache, "duckbak", "sums");
    expect(statSync(sums).mode & 0o777).toBe(0o700);
    const [cacheFile, ...others] = readdirSync(sums);
    expect(others).toEqual([]);
    expect(statSync(join(sums, cacheFile!)).mode & 0o777).toBe(0o600);

    // A cache no backup has rewritten for 60 days (a database no longer backed up here) is
    // removed; nothing else is, however old.
    const old = new Date(Date.now() - 61 * 86400_000);
    const stale = join(sums, "0".repeat(32));
    const notOurs = join(sums, "notes.txt");
    for (const f of [stale, notOurs]) {
      writeFileSync(f, "x", { mode: 0o600 });
      utimesSync(f, old, old);
    }
    expect(await backup()).toMatchObject({ hashed_bytes: 0, new_blobs: 0 });
    expect(readdirSync(sums).sort()).toEqual([cacheFile!, "notes.txt"].sort());
    rmSync(notOurs);

    // Two different words of a block swapped: same size, same offset, and DuckDB's checksum (an
    // XOR over the block's words) still matches. The block is hashed again and the new bytes kept.
    const at = BLOCKS_START + 2 * BLOCK;
    const block = new Uint8Array(BLOCK);
    const fd = openSync(db, "r+");
    readSync(fd, block, 0, BLOCK, at);
    const before = duckdbChecksum(block, 8);
    const a = 1024;
    let b = a + 8;
    while (Buffer.compare(block.subarray(a, a + 8), block.subarray(b, b + 8)) === 0) b += 8;
    const wordA = block.slice(a, a + 8);
    block.copyWithin(a, b, b + 8);
    block.set(wordA, b);
    expect(duckdbChecksum(block, 8)).toBe(before);
    writeSync(fd, block, 0, BLOCK, at);
    closeSync(fd);
    expect(await backup()).toMatchObject({ hashed_bytes: BLOCK, new_blobs: 1 });

    await runSql(db, ["UPDATE t SET v = v + 1 WHERE id % 5000 = 0", "CHECKPOINT"]);
    const updated = await backup();
    expect(updated.hashed_bytes).toBeGreaterThan(0);
    expect(updated.hashed_bytes).toBeLessThan(updated.logical_bytes / 2);

    // A damaged record is not believed (its chunk is hashed), the others still are. Records: a
    // 40-byte header (magic, seeds, when they were drawn), then 68 bytes per chunk (offset, length,
    // print, SHA-256, check).
    const path = join(sums, cacheFile!);
    const saved = join(dir, "saved-cache");
    copyFileSync(path, saved);
    const record = (k: number) => 40 + k * 68;
    const damage = (at: number[]) => {
      const bytes = readFileSync(saved);
      for (const i of at) bytes[i]! ^= 0xff;
      writeFileSync(path, bytes, { mode: 0o600 });
    };
    damage([record(3) + 40, record(5) + 2]); // chunk 3's SHA-256, chunk 5's offset
    expect(await backup()).toMatchObject({ hashed_bytes: 2 * BLOCK, new_blobs: 0 });
    // Every record damaged, each in another field: every chunk is hashed.
    const records = (statSync(saved).size - 40) / 68;
    damage(Array.from({ length: records }, (_, k) => record(k) + ((k * 7) % 68)));
    const full = await backup();
    expect(full).toMatchObject({ hashed_bytes: full.logical_bytes, new_blobs: 0 });
    // Nor is one that others can write.
    copyFileSync(saved, path);
    chmodSync(path, 0o666);
    expect((await backup()).hashed_bytes).toBe(full.logical_bytes);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    // Nor one whose seeds were drawn 8 days ago (its records still sound): they are redrawn.
    const aged = readFileSync(path);
    const seeds = aged.subarray(16, 32).toString("hex");
    new DataView(aged.buffer, aged.byteOffset).setBigUint64(32, BigInt(Date.now() - 8 * 86400_000), true);
    writeFileSync(path, aged, { mode: 0o600 });
    expect((await backup()).hashed_bytes).toBe(full.logical_bytes);
    expect(readFileSync(path).subarray(16, 32).toString("hex")).not.toBe(seeds);
    expect(await backup()).toMatchObject({ hashed_bytes: 0, new_blobs: 0 });
    // A FIFO in the cache's place is not waited on; a link there is not followed.
    rmSync(path);
    await sh(["mkfifo", path]);
    expect((await backup()).hashed_bytes).toBe(full.logical_bytes);
    rmSync(path);
    symlinkSync(saved, path);
    expect((await backup()).hashed_bytes).toBe(full.logical_bytes);
    expect(lstatSync(path).isFile()).toBe(true);
    // --rehash hashes everything, with a sound cache too.
    expect((await backup("--rehash")).hashed_bytes).toBe(full.logical_bytes);
    expect((await backup()).hashed_bytes).toBe(0);
    const archive = await run(["backup", "--rehash", "--backup-dir", join(dir, "arch"), db]);
    expect(archive.code).toBe(2);
    expect(archive.stderr).toContain("--rehash applies to a repository (--repo) only");

    // Every snapshot restores to the bytes backed up.
    const list = JSON.parse((await run(["list", "--repo", repo, "--json"])).stdout).snapshots as { id: string }[];
    expect(list.length).toBe(versions.length);
    for (const [i, s] of [...list].reverse().entries()) {
      const out = join(dir, `restore-${i}`);
      const r = await run(["restore", s.id, "--repo", repo, "--restore-dir", out]);
      expect(r.code).toBe(0);
      expect([i, await sha256File(join(out, "a.duckdb"))]).toEqual([i, versions[i]!]);
    }
  }, 120000);

  test("kill -9 while the cache is written, or once it is ahead of the repository: the next backup is still whole", async () => {
    const dir = tempDir();
    const env = { ...process.env, NO_COLOR: "1", DUCKBAK_PASSWORD: PASSWORD, XDG_CACHE_HOME: join(dir, "cache") } as Record<string, string>;
    const run = (args: string[]) => runBinary(args, { env });
    const repo = join(dir, "repo");
    const db = join(dir, "a.duckdb");
    const sums = join(dir, "cache", "duckbak", "sums");
    await runSql(db, ["CREATE TABLE t AS SELECT range AS id, md5(range::VARCHAR) AS s FROM range(200000)", "CHECKPOINT"]);
    expect((await run(["init", "--repo", repo])).code).toBe(0);
    expect((await run(["backup", "--repo", repo, db])).code).toBe(0);
    const [cacheFile] = readdirSync(sums);
    const cachePath = join(sums, cacheFile!);
    const backup = async () => {
      const r = await run(["backup", "--repo", repo, "--json", db]);
      expect([r.code, r.stderr]).toEqual([0, ""]);
      return JSON.parse(r.stdout) as { snapshot: string; stats: { new_blobs: number; hashed_bytes: number } };
    };
    const restored = async (id: string) => {
      const out = join(dir, `restore-${id.slice(0, 8)}`);
      expect((await run(["restore", id, "--repo", repo, "--restore-dir", out])).code).toBe(0);
      return sha256File(join(out, "a.duckdb"));
    };

    // Killed with the new cache written to its temporary: the old one stays, the temporary goes.
    await runSql(db, ["UPDATE t SET s = 'x' WHERE id % 3000 = 0", "CHECKPOINT"]);
    const old = await sha256File(cachePath);
    await killAtPause(["backup", "--repo", repo, db], "sums:written", { env });
    expect(readdirSync(sums).length).toBe(2);
    expect(await sha256File(cachePath)).toBe(old);
    const after1 = await backup();
    expect(after1.stats.hashed_bytes).toBeGreaterThan(0);
    expect(readdirSync(sums)).toEqual([cacheFile!]);
    expect(await restored(after1.snapshot)).toBe(await sha256File(db));

    // Killed once the cache records the new content, before the snapshot (its new chunks never
    // stored): the next backup hashes nothing, yet finds those chunks missing and stores them.
    await runSql(db, ["UPDATE t SET s = 'y' WHERE id % 3000 = 0", "CHECKPOINT"]);
    await killAtPause(["backup", "--repo", repo, db], "sums:renamed", { env });
    expect(await sha256File(cachePath)).not.toBe(old);
    const after2 = await backup();
    expect(after2.stats.hashed_bytes).toBe(0);
    expect(after2.stats.new_blobs).toBeGreaterThan(0);
    expect(await restored(after2.snapshot)).toBe(await sha256File(db));
    const verified = await run(["verify", "--repo", repo, "--read-data"]);
    expect([verified.code, verified.stderr]).toEqual([0, ""]);
  }, 120000);

  test("a cache folder on a full disk: the backup succeeds, the old cache is kept", async () => {
    const dir = tempDir();
    await withSmallDisk(dir, "64k", async (small) => {
      const env = { ...process.env, NO_COLOR: "1", DUCKBAK_PASSWORD: PASSWORD, XDG_CACHE_HOME: small } as Record<string, string>;
      const run = (args: string[]) => runBinary(args, { env });
      const repo = join(dir, "repo");
      const db = join(dir, "a.duckdb");
      await runSql(db, ["CREATE TABLE t AS SELECT range AS id, md5(range::VARCHAR) AS s FROM range(200000)", "CHECKPOINT"]);
      expect((await run(["init", "--repo", repo])).code).toBe(0);
      expect((await run(["backup", "--repo", repo, db])).code).toBe(0);
      const sums = join(small, "duckbak", "sums");
      const [cacheFile] = readdirSync(sums);
      const old = await sha256File(join(sums, cacheFile!));
      // Fill the disk.
      const fd = openSync(join(small, "filler"), "w");
      try {
        for (;;) writeSync(fd, new Uint8Array(4096));
      } catch (err) {
        expect((err as NodeJS.ErrnoException).code).toBe("ENOSPC");
      }
      closeSync(fd);
      await runSql(db, ["UPDATE t SET s = 'x' WHERE id % 3000 = 0", "CHECKPOINT"]);
      const r = await run(["backup", "--repo", repo, "--json", db]);
      expect([r.code, r.stderr]).toEqual([0, ""]);
      expect(readdirSync(sums)).toEqual([cacheFile!]);
      expect(await sha256File(join(sums, cacheFile!))).toBe(old);
      const out = join(dir, "restored");
      expect((await run(["restore", "latest", "--repo", repo, "--restore-dir", out])).code).toBe(0);
      expect(await sha256File(join(out, "a.duckdb"))).toBe(await sha256File(db));
    });
  }, 120000);

  test("a cache folder that is a link is not used (the next place is), and nothing it points to is removed", async () => {
    const dir = tempDir();
    const cache = join(dir, "cache");
    // HOME too: its ~/.cache would be the next place tried.
    const env = { ...process.env, NO_COLOR: "1", DUCKBAK_PASSWORD: PASSWORD, XDG_CACHE_HOME: cache, HOME: join(dir, "home") } as Record<string, string>;
    const elsewhere = join(dir, "elsewhere");
    mkdirSync(elsewhere, { mode: 0o700 });
    const precious = join(elsewhere, "f".repeat(32));
    writeFileSync(precious, "keep me", { mode: 0o600 });
    const old = new Date(Date.now() - 400 * 86400_000);
    utimesSync(precious, old, old);
    mkdirSync(join(cache, "duckbak"), { recursive: true, mode: 0o700 });
    symlinkSync(elsewhere, join(cache, "duckbak", "sums"));
    const repo = join(dir, "repo");
    const db = join(dir, "a.duckdb");
    await runSql(db, ["CREATE TABLE t AS SELECT range AS id FROM range(1000)", "CHECKPOINT"]);
    expect((await runBinary(["init", "--repo", repo], { env })).code).toBe(0);
    for (const hashed of ["all", "none"]) {
      const r = await runBinary(["backup", "--repo", repo, "--json", db], { env });
      expect([r.code, r.stderr]).toEqual([0, ""]);
      const stats = JSON.parse(r.stdout).stats;
      expect(stats.hashed_bytes).toBe(hashed === "all" ? stats.logical_bytes : 0);
    }
    expect(readdirSync(elsewhere)).toEqual(["f".repeat(32)]);
    // The next place (~/.cache) was used instead.
    expect(readdirSync(join(dir, "home", ".cache", "duckbak", "sums")).length).toBe(1);
  }, 60000);
});
