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

  test("daily --dry-run (text and --json) says where tonight's run goes: the archive, the repository, their cleanups, off-site; it opens and writes nothing", async () => {
    const dir = tempDir();
    await runSql(join(dir, "a.duckdb"), ["CREATE TABLE t AS SELECT range AS i FROM range(100)"]);
    const noPassword = { ...process.env, NO_COLOR: "1" } as Record<string, string>;
    delete noPassword.DUCKBAK_PASSWORD;
    delete noPassword.DUCKBAK_PASSWORD_FILE;
    const dry = async (toml: string) => {
      writeFileSync(join(dir, "duckbak.toml"), `databases = ["a.duckdb"]
${toml}[retention]
keep_last = 2
`);
      const text = await runBinary(["daily", "--dry-run"], { cwd: dir, env: noPassword });
      const json = await runBinary(["daily", "--dry-run", "--json"], { cwd: dir, env: noPassword });
      expect([text.code, text.stderr, json.code, json.stderr]).toEqual([0, "", 0, ""]);
      return { text: text.stdout, json: JSON.parse(json.stdout) };
    };
    const repo = join(dir, "repo");
    const policy = "keep the last 2; the newest verified backup is always kept";

    // The repository alone: no backup folder anywhere, the snapshot and the repository's cleanup.
    const only = await dry(`repository = "repo"\n`);
    expect(only.text).not.toContain("backup folder");
    expect(only.text).not.toContain("data/backups");
    expect(only.text).toContain(`into a new snapshot in the repository ${repo}\n`);
    expect(only.text).toContain(`apply the retention policy: ${policy}\n  in ${repo}: forget the snapshots it does not keep`);
    expect(only.json).toMatchObject({
      ok: true, command: "daily", exit_code: 0, dry_run: true, config: join(dir, "duckbak.toml"), log_file: join(dir, "data/backup.log"),
      databases: [{ path: join(dir, "a.duckdb"), hot: false, before_backup: null, after_backup: null }],
      archive: null, repository: { location: repo, max_unused: 0.1 }, policy: { keep_last: 2 }, policy_text: policy, offsite: null,
    });

    // Both, and off-site: the archive and its cleanup too, then the copy.
    const both = await dry(`backup_dir = "bk"\nrepository = "repo"\noffsite = "s3://bucket/duckbak"\n`);
    expect(both.text).toContain(`into a new archive (gzip) in the backup folder ${join(dir, "bk")}\ninto a new snapshot in the repository ${repo}\n`);
    expect(both.text).toContain(`  in ${join(dir, "bk")}: delete the archives it does not keep\n  in ${repo}: forget`);
    expect(both.text).toContain("then copy tonight's snapshot to s3://bucket/duckbak and apply the same policy there");
    expect(both.json).toMatchObject({ archive: { backup_dir: join(dir, "bk"), compression: "gzip" }, repository: { location: repo }, offsite: { location: "s3://bucket/duckbak", action: "copy" } });

    // The archive alone: no repository.
    const archive = await dry("");
    expect(archive.text).toContain(`into a new archive (gzip) in the backup folder ${join(dir, "data/backups")}\n`);
    expect(archive.text).not.toContain("repository");
    expect(archive.json).toMatchObject({ archive: { backup_dir: join(dir, "data/backups") }, repository: null, offsite: null });
    expect(readdirSync(dir).sort()).toEqual(["a.duckdb", "duckbak.toml"]);
  });
});
