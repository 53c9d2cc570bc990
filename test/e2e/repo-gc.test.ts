// cleanup --repo: forgets snapshots by the retention policy, deletes only unused packs; the rest
// still restores byte-identical.
import { describe, expect, test } from "bun:test";
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { runBinary, runSql, sha256File, tempDir } from "../helpers.ts";

const env = { ...process.env, NO_COLOR: "1", DUCKBAK_PASSWORD: "pw-gc" } as Record<string, string>;
const run = (args: string[]) => runBinary(args, { env });

function packs(repo: string): string[] {
  return readdirSync(join(repo, "data"), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name).sort();
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
    expect(packs(repo).length).toBe(before.length - result.packs_deleted);
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
});
