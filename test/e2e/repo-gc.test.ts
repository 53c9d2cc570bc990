// cleanup --repo: forgets snapshots by the retention policy, deletes only unused packs; the rest
// still restores byte-identical.
import { describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { runBinary, runSql, sha256File, tempDir } from "../helpers.ts";

const env = { ...process.env, NO_COLOR: "1", DUCKBAK_PASSWORD: "pw-gc" } as Record<string, string>;
const run = (args: string[]) => runBinary(args, { env });

function packs(repo: string): string[] {
  return readdirSync(join(repo, "data"), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name).sort();
}

/** A new repository with one snapshot of a.duckdb (`rows` rows of t(id, s)). */
async function oneSnapshot(rows: number): Promise<{ dir: string; repo: string; db: string; snapshot: string }> {
  const dir = tempDir();
  const repo = join(dir, "repo");
  const db = join(dir, "a.duckdb");
  expect((await run(["init", "--repo", repo])).code).toBe(0);
  await runSql(db, [`CREATE TABLE t AS SELECT range AS id, md5(range::VARCHAR) AS s FROM range(${rows})`, "CHECKPOINT"]);
  const r = await run(["backup", "--repo", repo, "--json", db]);
  expect(r.code).toBe(0);
  return { dir, repo, db, snapshot: JSON.parse(r.stdout).snapshot };
}

describe("repository cleanup", () => {
  test("forgets by policy, deletes the packs only forgotten snapshots used, keeps the rest restorable", async () => {
    const dir = tempDir();
    const repo = join(dir, "repo");
    expect((await run(["init", "--repo", repo])).code).toBe(0);
    const db = join(dir, "a.duckdb");
    const stable = join(dir, "stable.duckdb");
    await runSql(stable, ["CREATE TABLE s AS SELECT range AS i FROM range(50000)", "CHECKPOINT"]);
    const snaps: { id: string; sha: string; stable: string }[] = [];
    for (let seed = 1; seed <= 4; seed++) {
      // A new file each time: its blocks share nothing with the previous ones.
      rmSync(db, { force: true });
      await runSql(db, [`CREATE TABLE t AS SELECT range AS id, md5((range * ${seed})::VARCHAR) AS s FROM range(60000)`, "CHECKPOINT"]);
      const r = await run(["backup", "--repo", repo, "--json", db, stable]);
      expect(r.code).toBe(0);
      snaps.push({ id: JSON.parse(r.stdout).snapshot, sha: sha256File(db), stable: sha256File(stable) });
      await Bun.sleep(20);
    }
    const before = packs(repo);
    const dry = await run(["cleanup", "--repo", repo, "--keep-last", "2", "--dry-run", "--json"]);
    expect(dry.code).toBe(0);
    const planned = JSON.parse(dry.stdout);
    expect(planned.deleted.map((s: any) => s.id)).toEqual([snaps[1]!.id, snaps[0]!.id]);
    expect(planned.packs_deleted).toBeGreaterThan(0);
    expect(packs(repo)).toEqual(before);

    const r = await run(["cleanup", "--repo", repo, "--keep-last", "2", "--json"]);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.deleted.map((s: any) => s.id)).toEqual([snaps[1]!.id, snaps[0]!.id]);
    expect(result.packs_deleted).toBe(planned.packs_deleted);
    expect(result.freed_bytes).toBeGreaterThan(0);
    // The first pack also holds stable.duckdb, which the kept snapshots use: repacked (default
    // --max-unused 10%). Fresh files can share a few blocks (empty ones, the same metadata) with
    // the forgotten snapshots', so another partly used pack may be repacked too.
    expect(result.packs_repacked).toBe(planned.packs_repacked);
    expect(result.packs_repacked).toBeGreaterThanOrEqual(1);
    expect(result.packs_written).toBeGreaterThanOrEqual(1);
    expect(result.packs_written).toBeLessThanOrEqual(result.packs_repacked);
    expect(packs(repo).length).toBe(before.length - result.packs_deleted + result.packs_written);
    const list = JSON.parse((await run(["list", "--repo", repo, "--json"])).stdout).snapshots;
    expect(list.map((s: any) => s.id)).toEqual([snaps[3]!.id, snaps[2]!.id]);

    expect((await run(["verify", "--repo", repo, "--read-data"])).code).toBe(0);
    for (const s of snaps.slice(2)) {
      const out = join(dir, `out-${s.id.slice(0, 8)}`);
      expect((await run(["restore", s.id, "--repo", repo, "--restore-dir", out])).code).toBe(0);
      expect(sha256File(join(out, "a.duckdb"))).toBe(s.sha);
      expect(sha256File(join(out, "stable.duckdb"))).toBe(s.stable);
    }
    // A second run has nothing left to do.
    const again = JSON.parse((await run(["cleanup", "--repo", repo, "--keep-last", "2", "--json"])).stdout);
    expect([again.deleted.length, again.packs_deleted]).toEqual([0, 0]);
  });

  test("repacking: the used blobs of partly used packs move into new packs, the rest is freed; --max-unused; a damaged pack is not repacked", async () => {
    const dir = tempDir();
    const repo = join(dir, "repo");
    expect((await run(["init", "--repo", repo])).code).toBe(0);
    const stable = join(dir, "stable.duckdb");
    const db = join(dir, "a.duckdb");
    await runSql(stable, ["CREATE TABLE s AS SELECT range AS i, md5(range::VARCHAR) AS h FROM range(120000)", "CHECKPOINT"]);
    const snaps: string[] = [];
    for (let seed = 1; seed <= 2; seed++) {
      rmSync(db, { force: true });
      await runSql(db, [`CREATE TABLE t AS SELECT range AS id, md5((range * ${seed})::VARCHAR) AS s FROM range(60000)`, "CHECKPOINT"]);
      const r = await run(["backup", "--repo", repo, "--json", stable, db]);
      expect(r.code).toBe(0);
      snaps.push(JSON.parse(r.stdout).snapshot);
      await Bun.sleep(20);
    }
    const shas = { stable: sha256File(stable), a: sha256File(db) };
    const dataBytes = () => readdirSync(join(repo, "data"), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).reduce((n, e) => n + statSync(join(e.parentPath, e.name)).size, 0);
    // The first pack holds stable.duckdb and the first a.duckdb: once the first snapshot is
    // forgotten it is partly used. 100% tolerates any unused share: nothing is repacked.
    const before = packs(repo);
    writeFileSync(join(dir, "duckbak.toml"), 'max_unused = "100%"\n');
    const tolerant = JSON.parse((await run(["cleanup", "--repo", repo, "--keep-last", "1", "--config", join(dir, "duckbak.toml"), "--json"])).stdout);
    expect(tolerant).toMatchObject({ ok: true, packs_deleted: 0, packs_repacked: 0, packs_written: 0, freed_bytes: 0 });
    expect(tolerant.deleted.map((x: any) => x.id)).toEqual([snaps[0]]);
    expect(packs(repo)).toEqual(before);

    const dry = JSON.parse((await run(["cleanup", "--repo", repo, "--keep-last", "1", "--max-unused", "0%", "--dry-run", "--json"])).stdout);
    expect(dry).toMatchObject({ dry_run: true, packs_repacked: 1, packs_deleted: 1 });
    // The text counts the repacked pack once: as repacked, not also as unused.
    expect((await run(["cleanup", "--repo", repo, "--keep-last", "1", "--max-unused", "0%", "--dry-run"])).stdout).toContain("delete 0 unused packs and repack 1 partly used pack,");
    expect(dry.freed_bytes).toBeGreaterThan(500_000);
    expect(packs(repo)).toEqual(before);

    // A damaged partly used pack (in a copy of the repository) is left whole, with an error.
    const damaged = join(dir, "damaged");
    cpSync(repo, damaged, { recursive: true });
    const sizes = new Map(before.map((p) => [p, statSync(join(damaged, "data", p.slice(0, 2), p)).size]));
    const partly = before.filter((p) => readFileSync(join(damaged, "data", p.slice(0, 2), p)).length === Math.max(...sizes.values()))[0]!;
    const f = join(damaged, "data", partly.slice(0, 2), partly);
    const bytes = readFileSync(f);
    bytes[bytes.length >> 1] ^= 1; // in a chunk (a chunk list, damaged, would stop the cleanup: exit 4)
    writeFileSync(f, bytes);
    const bad = await run(["cleanup", "--repo", damaged, "--keep-last", "1", "--max-unused", "0%", "--json"]);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, packs_repacked: 0, packs_written: 0, packs_deleted: 0 });
    expect(bad.stdout).toContain(`data/${partly.slice(0, 2)}/${partly}: content does not match its name; not repacked`);
    expect(packs(damaged)).toEqual(before);

    const bytesBefore = dataBytes();
    const r = await run(["cleanup", "--repo", repo, "--keep-last", "1", "--max-unused", "0%"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Forgot 0 snapshots, deleted 1 pack \(1 partly used pack repacked into 1\), freed [\d.]+ [KM]iB; kept 1\.$/m);
    const after = packs(repo);
    expect(after).toHaveLength(before.length);
    expect(after.filter((p) => before.includes(p))).toHaveLength(before.length - 1);
    const freed = bytesBefore - dataBytes();
    expect(freed).toBeGreaterThan(500_000);
    expect(Math.abs(freed - dry.freed_bytes)).toBeLessThan(4096); // the estimate is the unused blobs' bytes
    expect((await run(["verify", "--repo", repo, "--read-data"])).code).toBe(0);
    const out = join(dir, "out");
    expect((await run(["restore", "latest", "--repo", repo, "--restore-dir", out])).code).toBe(0);
    expect([sha256File(join(out, "stable.duckdb")), sha256File(join(out, "a.duckdb"))]).toEqual([shas.stable, shas.a]);
    // Nothing partly used is left: the next run has nothing to do, whatever the threshold.
    const again = JSON.parse((await run(["cleanup", "--repo", repo, "--keep-last", "1", "--max-unused", "0", "--json"])).stdout);
    expect([again.packs_deleted, again.packs_repacked]).toEqual([0, 0]);
    expect((await run(["cleanup", "--max-unused", "5%"])).code).toBe(2);
  });

  test("an index file missing: cleanup refuses (exit 4) and deletes no pack a kept snapshot needs; with the index file back, it restores", async () => {
    const { dir, repo, db } = await oneSnapshot(100_000);
    const [firstIndex] = readdirSync(join(repo, "index"));
    await Bun.sleep(20);
    await runSql(db, ["INSERT INTO t SELECT range, 'new' FROM range(100000, 110000)", "CHECKPOINT"]);
    const second = JSON.parse((await run(["backup", "--repo", repo, "--json", db])).stdout).snapshot;
    // The first backup's index file (naming the chunks both snapshots share) goes missing.
    const saved = join(dir, "saved-index");
    cpSync(join(repo, "index", firstIndex!), saved);
    rmSync(join(repo, "index", firstIndex!));
    const before = packs(repo);
    const c = await run(["cleanup", "--repo", repo, "--keep-last", "1"]);
    expect(c.code).toBe(4);
    expect(c.stderr).toMatch(/chunk [0-9a-f]{12}… of a kept snapshot is in no index file; no pack deleted \(run verify\)/);
    expect(packs(repo)).toEqual(before);
    cpSync(saved, join(repo, "index", firstIndex!));
    expect((await run(["restore", second, "--repo", repo, "--restore-dir", join(dir, "out")])).code).toBe(0);
    expect(sha256File(join(dir, "out", "a.duckdb"))).toBe(sha256File(db));
  });

  test("stray files are passed over (verify names them); a snapshot file that is a link is read through it; one that is a folder is damage: list and verify say so, cleanup deletes nothing, other snapshots restore by id", async () => {
    const { dir, repo, db, snapshot: first } = await oneSnapshot(60_000);
    const firstSha = sha256File(db);
    await Bun.sleep(20);
    rmSync(db);
    await runSql(db, ["CREATE TABLE t AS SELECT range AS id, md5((range * 7)::VARCHAR) AS s FROM range(60000)", "CHECKPOINT"]);
    const second = JSON.parse((await run(["backup", "--repo", repo, "--json", db])).stdout).snapshot;

    // Stray files: every command passes them over; verify names them.
    mkdirSync(join(repo, "data", "zz"));
    for (const f of ["snapshots/README", "index/notes.txt", "data/zz/junk"]) writeFileSync(join(repo, f), "x");
    const listed = await run(["list", "--repo", repo, "--json"]);
    expect([listed.code, JSON.parse(listed.stdout).snapshots.length]).toEqual([0, 2]);
    const v = await run(["verify", "--repo", repo, "--json"]);
    expect([v.code, JSON.parse(v.stdout).unexpected_files]).toEqual([0, ["data/zz/junk", "index/notes.txt", "snapshots/README"]]);
    const before = packs(repo);
    const c = JSON.parse((await run(["cleanup", "--repo", repo, "--keep-last", "2", "--json"])).stdout);
    expect([c.packs_deleted, packs(repo)]).toEqual([0, before]);

    // The newest snapshot file a link to a copy of itself: read through it, its packs kept.
    const file = join(repo, "snapshots", second);
    const saved = join(dir, "saved-snapshot");
    cpSync(file, saved);
    rmSync(file);
    symlinkSync(saved, file);
    expect(JSON.parse((await run(["list", "--repo", repo, "--json"])).stdout).snapshots.map((s: any) => s.id)).toEqual([second, first]);
    expect((await run(["cleanup", "--repo", repo, "--keep-last", "2"])).code).toBe(0);
    expect(packs(repo)).toEqual(before);

    // A folder in its place: damage, said by list and verify; cleanup stops before deleting anything.
    rmSync(file);
    mkdirSync(file);
    const l = await run(["list", "--repo", repo, "--json"]);
    expect(l.code).toBe(4);
    const entries = JSON.parse(l.stdout).snapshots;
    expect(entries.map((s: any) => [s.id, s.error === null])).toEqual([[first, true], [second, false]]);
    expect((await run(["verify", "--repo", repo])).code).toBe(4);
    const refused = await run(["cleanup", "--repo", repo, "--keep-last", "1"]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(second);
    expect(packs(repo)).toEqual(before);
    // The other snapshot restores by its id; "latest" might name the damaged one: refused.
    expect((await run(["restore", first, "--repo", repo, "--restore-dir", join(dir, "one")])).code).toBe(0);
    expect(sha256File(join(dir, "one", "a.duckdb"))).toBe(firstSha);
    const latest = await run(["restore", "latest", "--repo", repo, "--restore-dir", join(dir, "two")]);
    expect(latest.code).toBe(4);
    expect(latest.stderr).toContain("'latest' may name it");
    rmSync(file, { recursive: true });
    cpSync(saved, file);
    expect((await run(["restore", "latest", "--repo", repo, "--restore-dir", join(dir, "three")])).code).toBe(0);
    expect(sha256File(join(dir, "three", "a.duckdb"))).toBe(sha256File(db));
  });

  test("temporaries that killed runs of this host left (in data/, index/, snapshots/) are removed by cleanup; a live run's are not", async () => {
    const { repo } = await oneSnapshot(50_000);
    const dead = Bun.spawnSync(["true"]).pid; // exited: its pid is free
    const fan = readdirSync(join(repo, "data"))[0]!;
    const leftovers = [`data/${fan}`, "index", "snapshots"].map((f) => join(repo, f, `.duckbak-tmp.${hostname()}.${dead}.abcd1234.${"0".repeat(64)}`));
    const live = join(repo, "index", `.duckbak-tmp.${hostname()}.${process.pid}.abcd1234.${"1".repeat(64)}`);
    for (const f of [...leftovers, live]) writeFileSync(f, "partial");
    const c = await run(["cleanup", "--repo", repo, "--keep-last", "1", "--json"]);
    expect(c.code).toBe(0);
    expect(JSON.parse(c.stdout).removed_temporaries.map((t: any) => t.path).sort()).toEqual([...leftovers].sort());
    expect(leftovers.filter((f) => existsSync(f))).toEqual([]);
    expect(existsSync(live)).toBe(true);
    expect((await run(["verify", "--repo", repo, "--read-data"])).code).toBe(0);
  });
});

