// kill -9 at the dangerous instants of a repository backup and cleanup: the repository still
// verifies, nothing a remaining snapshot needs is lost, and the next run goes on. Cleanup racing a
// backup: the locks keep garbage collection from deleting what the backup is about to name.
import { describe, expect, test } from "bun:test";
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { BINARY, killAtPause, runBinary, runSql, sha256File, tempDir } from "../helpers.ts";

// Bun runs every test file in one process: the password goes into this file's env, not process.env.
const env = { ...process.env, NO_COLOR: "1", DUCKBAK_PASSWORD: "pw-crash" } as Record<string, string>;
const run = (args: string[]) => runBinary(args, { env });

async function verifyAll(repo: string): Promise<any> {
  const r = await run(["verify", "--repo", repo, "--read-data", "--json"]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
}

async function restoredSha(repo: string, id: string, dir: string, name: string): Promise<string> {
  const out = join(dir, `out-${id.slice(0, 8)}-${Math.random().toString(36).slice(2, 6)}`);
  const r = await run(["restore", id, "--repo", repo, "--restore-dir", out]);
  expect(r.code).toBe(0);
  return sha256File(join(out, name));
}

async function newContent(db: string, seed: number): Promise<void> {
  rmSync(db, { force: true });
  await runSql(db, [`CREATE TABLE t AS SELECT range AS id, md5((range * ${seed})::VARCHAR) AS s FROM range(40000)`, "CHECKPOINT"]);
}

const lockFiles = (repo: string) => readdirSync(join(repo, "locks"));

describe("repository crash safety", () => {
  test("kill -9 after the packs and after the index of a backup: verifies, the next backup works", async () => {
    const dir = tempDir();
    const repo = join(dir, "repo");
    const db = join(dir, "a.duckdb");
    expect((await run(["init", "--repo", repo])).code).toBe(0);
    await newContent(db, 1);
    const first = JSON.parse((await run(["backup", "--repo", repo, "--json", db])).stdout).snapshot;
    for (const [i, point] of ["repo:after-packs", "repo:after-index"].entries()) {
      await newContent(db, 10 + i);
      await killAtPause(["backup", "--repo", repo, db], point, { env });
      expect(lockFiles(repo).length).toBe(1); // the dead run's lock is left behind
      const v = await verifyAll(repo);
      expect(v.snapshots).toEqual([first]); // no snapshot appeared
      if (point === "repo:after-packs") expect(v.unindexed_packs).toBeGreaterThan(0);
    }
    // The next backup breaks the dead run's lock, reuses the blobs indexed before the kill, and works.
    const r = await run(["backup", "--repo", repo, "--json", db]);
    expect(r.code).toBe(0);
    const next = JSON.parse(r.stdout);
    expect(next.stats.new_blobs).toBe(0);
    expect(lockFiles(repo)).toEqual([]);
    expect(await restoredSha(repo, next.snapshot, dir, "a.duckdb")).toBe(sha256File(db));
    // Cleanup removes the packs of the killed run that no index names.
    const c = JSON.parse((await run(["cleanup", "--repo", repo, "--keep-last", "5", "--json"])).stdout);
    expect(c.packs_deleted).toBeGreaterThan(0);
    expect((await verifyAll(repo)).unindexed_packs).toBe(0);
    expect(await restoredSha(repo, first, dir, "a.duckdb")).toBeString();
  });

  test("kill -9 at each step of cleanup: verifies every time, the remaining snapshots restore, the next cleanup finishes", async () => {
    const dir = tempDir();
    const repo = join(dir, "repo");
    const db = join(dir, "a.duckdb");
    expect((await run(["init", "--repo", repo])).code).toBe(0);
    const snaps: { id: string; sha: string }[] = [];
    const snapshot = async (seed: number) => {
      await newContent(db, seed);
      const r = await run(["backup", "--repo", repo, "--json", db]);
      expect(r.code).toBe(0);
      snaps.push({ id: JSON.parse(r.stdout).snapshot, sha: sha256File(db) });
      await Bun.sleep(15);
    };
    for (let seed = 1; seed <= 3; seed++) await snapshot(seed);
    for (const point of ["repo:after-forget", "repo:after-new-index", "repo:before-pack-delete"]) {
      await snapshot(snaps.length + 1);
      await killAtPause(["cleanup", "--repo", repo, "--keep-last", "2"], point, { env });
      const v = await verifyAll(repo);
      // Whatever the kill interrupted, the two newest snapshots are whole.
      for (const s of snaps.slice(-2)) expect(v.snapshots).toContain(s.id);
    }
    const c = await run(["cleanup", "--repo", repo, "--keep-last", "2", "--json"]);
    expect(c.code).toBe(0);
    const v = await verifyAll(repo);
    expect(v.snapshots).toEqual(snaps.slice(-2).map((s) => s.id).reverse());
    expect(v.unindexed_packs).toBe(0);
    for (const s of snaps.slice(-2)) expect(await restoredSha(repo, s.id, dir, "a.duckdb")).toBe(s.sha);
    // Only the packs of the two remaining snapshots are left (each snapshot here has its own).
    const again = JSON.parse((await run(["cleanup", "--repo", repo, "--keep-last", "2", "--json"])).stdout);
    expect(again.packs_deleted).toBe(0);
  });

  test("kill -9 at each step of a repacking cleanup: verifies every time, nothing a snapshot uses is lost, the next cleanup leaves no copy twice", async () => {
    const dir = tempDir();
    const repo = join(dir, "repo");
    const stable = join(dir, "s.duckdb");
    const db = join(dir, "a.duckdb");
    expect((await run(["init", "--repo", repo])).code).toBe(0);
    const points = ["repo:after-repack", "repo:after-new-index", "repo:before-pack-delete", "repo:after-first-pack-delete"];
    for (const [round, point] of points.entries()) {
      // Two snapshots sharing this round's s.duckdb: once the first is forgotten, its pack is partly used.
      await newContent(stable, 100 + round);
      let last = { id: "", shas: [] as string[] };
      for (const seed of [1, 2]) {
        await newContent(db, 10 * round + seed);
        const r = await run(["backup", "--repo", repo, "--json", stable, db]);
        expect(r.code).toBe(0);
        last = { id: JSON.parse(r.stdout).snapshot, shas: [sha256File(stable), sha256File(db)] };
        await Bun.sleep(15);
      }
      await killAtPause(["cleanup", "--repo", repo, "--keep-last", "1", "--max-unused", "0%"], point, { env });
      const v = await verifyAll(repo);
      expect(v.snapshots).toContain(last.id);
      const out = join(dir, `out-${round}`);
      expect((await run(["restore", last.id, "--repo", repo, "--restore-dir", out])).code).toBe(0);
      expect([sha256File(join(out, "s.duckdb")), sha256File(join(out, "a.duckdb"))]).toEqual(last.shas);
      if (point === "repo:after-repack") expect(v.unindexed_packs).toBeGreaterThan(0); // the new pack, not yet indexed
    }
    const c = JSON.parse((await run(["cleanup", "--repo", repo, "--keep-last", "1", "--max-unused", "0%", "--json"])).stdout);
    expect(c.ok).toBe(true);
    const v = await verifyAll(repo);
    expect(v.unindexed_packs).toBe(0);
    expect(v.snapshots).toHaveLength(1);
    // No blob is left in two packs and nothing is partly used: a further run has nothing to do.
    const again = JSON.parse((await run(["cleanup", "--repo", repo, "--keep-last", "1", "--max-unused", "0%", "--json"])).stdout);
    expect([again.packs_deleted, again.packs_repacked]).toEqual([0, 0]);
    const stats = JSON.parse((await run(["stats", "--repo", repo, "--json"])).stdout);
    expect(stats.packs).toBe(v.packs);
  });

  test("cleanup racing a backup: refused while the backup holds its lock, waits with --lock-wait; concurrent runs lose nothing", async () => {
    const dir = tempDir();
    const repo = join(dir, "repo");
    const db = join(dir, "a.duckdb");
    expect((await run(["init", "--repo", repo])).code).toBe(0);
    await newContent(db, 1);
    expect((await run(["backup", "--repo", repo, db])).code).toBe(0);
    await newContent(db, 2);
    // A backup stopped after storing its packs, before its index and snapshot: GC must not touch them.
    const proc = Bun.spawn([BINARY, "backup", "--repo", repo, db], { env: { ...env, DUCKBAK_TEST_PAUSE: "repo:after-packs" }, stdout: "ignore", stderr: "pipe" });
    const reader = proc.stderr.getReader();
    let err = "";
    while (!err.includes("duckbak-test-paused")) err += new TextDecoder().decode((await reader.read()).value);
    const refused = await run(["cleanup", "--repo", repo, "--keep-last", "1", "--lock-wait", "0"]);
    expect(refused.code).toBe(11);
    expect(refused.stderr).toContain(`locked by backup (PID ${proc.pid}`);
    const packsDuringBackup = readdirSync(join(repo, "data"), { recursive: true }).length;
    expect(packsDuringBackup).toBeGreaterThan(1);
    proc.kill("SIGKILL");
    await proc.exited;

    // Real races: backups and cleanups started together; each waits for the other's lock.
    for (let round = 3; round <= 5; round++) {
      await newContent(db, round);
      const sha = sha256File(db);
      const [b, c] = await Promise.all([
        run(["backup", "--repo", repo, "--json", db, "--lock-wait", "120"]),
        run(["cleanup", "--repo", repo, "--keep-last", "1", "--lock-wait", "120"]),
      ]);
      expect([b.code, b.stderr.replace(/duckbak: repository locked by.*\n/, "")]).toEqual([0, ""]);
      expect(c.code).toBe(0);
      const id = JSON.parse(b.stdout).snapshot;
      expect(await restoredSha(repo, id, dir, "a.duckdb")).toBe(sha);
    }
    await verifyAll(repo);
  });

  test("a backup waiting for the repository lock holds no database meanwhile: a writer gets in, and the snapshot has its rows", async () => {
    const dir = tempDir();
    const repo = join(dir, "repo");
    const db = join(dir, "a.duckdb");
    expect((await run(["init", "--repo", repo])).code).toBe(0);
    for (const seed of [1, 2]) {
      await newContent(db, seed);
      expect((await run(["backup", "--repo", repo, db])).code).toBe(0);
    }
    // A cleanup stopped while it holds the exclusive lock.
    const cleanup = Bun.spawn([BINARY, "cleanup", "--repo", repo, "--keep-last", "1"], { env: { ...env, DUCKBAK_TEST_PAUSE: "repo:after-forget" }, stdout: "ignore", stderr: "pipe" });
    const cleanupErr = cleanup.stderr.getReader();
    for (let e = ""; !e.includes("duckbak-test-paused"); ) e += new TextDecoder().decode((await cleanupErr.read()).value);
    const backup = Bun.spawn([BINARY, "backup", "--repo", repo, db, "--lock-wait", "60", "--json"], { env, stdout: "pipe", stderr: "pipe" });
    const backupErr = backup.stderr.getReader();
    for (let e = ""; !e.includes("repository locked by"); ) e += new TextDecoder().decode((await backupErr.read()).value);
    // The backup started capturing while it opened the repository; waiting, it lets the database go
    // (given time: the capture it started may still be loading DuckDB when the wait begins).
    await Bun.sleep(2000);
    await runSql(db, ["INSERT INTO t SELECT range + 1000000, 'late' FROM range(10)", "CHECKPOINT"]);
    const sha = sha256File(db);
    cleanup.kill("SIGKILL");
    await cleanup.exited;
    expect(await backup.exited).toBe(0);
    const id = JSON.parse(await new Response(backup.stdout).text()).snapshot;
    expect(await restoredSha(repo, id, dir, "a.duckdb")).toBe(sha);
  });
});

