// daily with a repository: a snapshot (and the policy applied there) besides the archive when
// both are configured, the snapshot alone when only the repository is.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runBinary, runSql, tempDir } from "../helpers.ts";

const env = { ...process.env, NO_COLOR: "1", DUCKBAK_PASSWORD: "pw-daily" } as Record<string, string>;

describe("daily with a repository", () => {
  test("both configured: an archive and a snapshot, retention in both; repository alone: only a snapshot", async () => {
    const dir = tempDir();
    await runSql(join(dir, "a.duckdb"), ["CREATE TABLE t AS SELECT range AS i FROM range(10000)", "CHECKPOINT"]);
    expect((await runBinary(["init", "--repo", join(dir, "repo")], { env })).code).toBe(0);
    writeFileSync(
      join(dir, "duckbak.toml"),
      `databases = ["a.duckdb"]\nbackup_dir = "bk"\nrepository = "repo"\n[retention]\nkeep_last = 2\n`,
    );
    for (let i = 0; i < 3; i++) {
      const r = await runBinary(["daily"], { cwd: dir, env });
      expect([r.code, r.stderr]).toEqual([0, ""]);
      expect(r.stdout).toContain("Snapshot ");
      await Bun.sleep(1100); // archive names have one-second resolution
    }
    expect(readdirSync(join(dir, "bk")).filter((n) => n.endsWith(".tar.gz")).length).toBe(2);
    const list = JSON.parse((await runBinary(["list", "--json"], { cwd: dir, env })).stdout).snapshots;
    expect(list.length).toBe(2);
    const log = readFileSync(join(dir, "data/backup.log"), "utf8");
    expect(log).toContain("snapshot");
    expect(log).toContain("repo_cleanup");

    // Only the repository configured: no archive at all.
    writeFileSync(join(dir, "duckbak.toml"), `databases = ["a.duckdb"]\nrepository = "repo"\n`);
    const r = await runBinary(["daily"], { cwd: dir, env });
    expect(r.code).toBe(0);
    expect(existsSync(join(dir, "data/backups"))).toBe(false);
    expect(JSON.parse((await runBinary(["list", "--json"], { cwd: dir, env })).stdout).snapshots.length).toBe(3);

    // A wrong password fails the run with exit 6, logged.
    const w = await runBinary(["daily"], { cwd: dir, env: { ...env, DUCKBAK_PASSWORD: "nope" } });
    expect(w.code).toBe(6);
    expect(readFileSync(join(dir, "data/backup.log"), "utf8")).toContain("wrong password");
  });
});
