// `duckbak cleanup` through the compiled binary, on real archives whose file names and modification
// times disagree with their manifests' timestamps: only the manifest counts.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, renameSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { createBackup } from "../../src/core/backup.ts";
import type { Compression } from "../../src/core/naming.ts";
import { formatBytes } from "../../src/cli/output.ts";
import { runBinary, runSql, sh, tempDir } from "../helpers.ts";

const DAY = 86_400_000;

async function backupAt(db: string, dir: string, at: Date, compression: Compression = "gzip"): Promise<string> {
  const result = await createBackup({ databases: [db], backupDir: dir, now: at, compression });
  return result.archive!;
}

/** A folder listing with sizes and modification times: what "nothing changed" means. */
function snapshot(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .map((name) => {
      const st = statSync(join(dir, name));
      return `${name} ${st.size} ${st.mtimeMs}`;
    });
}

/**
 * Eight backups 1, 2, 3, 10, 40, 50, 60 and 70 days old, named and dated so that sorting by file
 * name or by mtime gives the reverse order; plus files duckbak did not write.
 */
async function misleadingFolder(): Promise<{ dir: string; bk: string; byAge: Map<number, string> }> {
  const dir = tempDir();
  const db = join(dir, "app.duckdb");
  await runSql(db, ["CREATE TABLE t AS SELECT range AS x FROM range(1000)"]);
  const bk = join(dir, "bk");
  const ages = [1, 2, 3, 10, 40, 50, 60, 70];
  const byAge = new Map<number, string>();
  for (const [i, age] of ages.entries()) {
    const archive = await backupAt(db, bk, new Date(Date.now() - age * DAY));
    const file = `backup_2020010${i + 1}_000000.tar.gz`;
    renameSync(archive, join(bk, file));
    const mtime = new Date(Date.now() - (100 - age) * DAY);
    utimesSync(join(bk, file), mtime, mtime);
    byAge.set(age, file);
  }
  writeFileSync(join(bk, "README.txt"), "not a backup");
  writeFileSync(join(bk, "broken.tar.gz"), "garbage, not gzip");
  await sh(["tar", "-czf", join(bk, "someone-elses.tar.gz"), "-C", dir, "app.duckdb"]);
  for (const foreign of ["README.txt", "broken.tar.gz", "someone-elses.tar.gz"]) utimesSync(join(bk, foreign), new Date(0), new Date(0));
  return { dir, bk, byAge };
}

const files = (byAge: Map<number, string>, ages: number[]) => ages.map((a) => byAge.get(a)!);

describe("duckbak cleanup", () => {
  test("the seed rule by default: deletes what is older than 30 days by manifest, keeping the 5 newest", async () => {
    const { bk, byAge } = await misleadingFolder();
    const before = snapshot(bk);

    const dry = await runBinary(["cleanup", "--backup-dir", bk, "--dry-run", "--json"]);
    expect(dry.code).toBe(0);
    const plan = JSON.parse(dry.stdout);
    expect(plan.policy).toEqual({ keep_days: 30, keep_minimum: 5 });
    expect(plan.kept.map((k: any) => k.file)).toEqual(files(byAge, [1, 2, 3, 10, 40]));
    expect(plan.kept[4].reasons).toEqual(["keep-minimum"]);
    expect(plan.kept[0].reasons).toEqual(["keep-days 30", "keep-minimum", "newest verified"]);
    expect(plan.deleted.map((d: any) => d.file)).toEqual(files(byAge, [50, 60, 70]));
    expect(plan.unreadable.map((u: any) => u.file).sort()).toEqual(["broken.tar.gz", "someone-elses.tar.gz"]);
    expect(snapshot(bk)).toEqual(before);

    const sizes = files(byAge, [50, 60, 70]).reduce((n, f) => n + statSync(join(bk, f)).size, 0);
    expect(plan.freed_bytes).toBe(sizes);
    const r = await runBinary(["cleanup", "--backup-dir", bk]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Policy: keep backups from the last 30 days, at least the 5 newest");
    expect(r.stdout).toMatch(new RegExp(`keep +${byAge.get(40)!.replaceAll(".", "\\.")} .*keep-minimum`));
    expect(r.stdout).toMatch(new RegExp(`deleted +${byAge.get(70)!.replaceAll(".", "\\.")} `));
    expect(r.stdout).toMatch(/skip +broken\.tar\.gz .*unreadable, not deleted/);
    expect(r.stdout).toContain(`Deleted 3 backups, freed ${formatBytes(sizes)}; kept 5; 2 unreadable archives left alone.`);
    expect(readdirSync(bk).sort()).toEqual([...files(byAge, [1, 2, 3, 10, 40]), "README.txt", "broken.tar.gz", "someone-elses.tar.gz"].sort());
    const again = JSON.parse((await runBinary(["cleanup", "--backup-dir", bk, "--json"])).stdout);
    expect(again.deleted).toEqual([]);
  });

  test("flags override the config's [retention] key by key", async () => {
    const { dir, bk, byAge } = await misleadingFolder();
    writeFileSync(join(dir, "duckbak.toml"), `backup_dir = "bk"\n[retention]\nkeep_days = 5\n`);
    const r = await runBinary(["cleanup", "--keep-minimum", "1", "--dry-run", "--json"], { cwd: dir });
    expect(r.code).toBe(0);
    const plan = JSON.parse(r.stdout);
    expect(plan.policy).toEqual({ keep_days: 5, keep_minimum: 1 });
    expect(plan.kept.map((k: any) => k.file)).toEqual(files(byAge, [1, 2, 3]));

    const gfs = JSON.parse((await runBinary(["cleanup", "--keep-last", "2", "--keep-yearly", "--dry-run", "--json"], { cwd: dir })).stdout);
    expect(gfs.backup_dir).toBe(bk);
    expect(gfs.policy).toEqual({ keep_days: 5, keep_minimum: 5, keep_last: 2, keep_yearly: "forever" });
  });

  test("GFS rules alone replace the seed rule: one backup per year, forever", async () => {
    const dir = tempDir();
    const db = join(dir, "app.duckdb");
    await runSql(db, ["CREATE TABLE t (x INT)"]);
    const bk = join(dir, "bk");
    for (const at of ["2023-06-01", "2024-03-01", "2024-09-01", "2025-01-15"]) {
      const archive = await backupAt(db, bk, new Date(`${at}T12:00:00Z`));
      renameSync(archive, join(bk, `y${at}.tar.gz`));
    }
    const r = await runBinary(["cleanup", "--backup-dir", bk, "--keep-yearly", "--json"], { env: { ...process.env, TZ: "UTC" } });
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.policy).toEqual({ keep_yearly: "forever" });
    expect(result.kept.map((k: any) => [k.file, k.reasons])).toEqual([
      ["y2025-01-15.tar.gz", ["yearly 2025", "newest verified"]],
      ["y2024-09-01.tar.gz", ["yearly 2024"]],
      ["y2023-06-01.tar.gz", ["yearly 2023"]],
    ]);
    expect(readdirSync(bk).sort()).toEqual(["y2023-06-01.tar.gz", "y2024-09-01.tar.gz", "y2025-01-15.tar.gz"]);
  });

  test("a policy that keeps nothing is refused and nothing is deleted", async () => {
    const { bk } = await misleadingFolder();
    const before = snapshot(bk);
    const r = await runBinary(["cleanup", "--backup-dir", bk, "--keep-days", "0", "--keep-minimum", "0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("retention policy keeps nothing and would delete every backup");
    expect(r.stderr.trim().split("\n").length).toBe(1);
    expect(snapshot(bk)).toEqual(before);
    const bad = await runBinary(["cleanup", "--backup-dir", bk, "--keep-last", "two"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("invalid value for --keep-last: two (must be a whole number >= 0)");
  });

  test("the newest backup that verifies is kept even when the policy keeps only a corrupt newer one", async () => {
    const dir = tempDir();
    const db = join(dir, "app.duckdb");
    await runSql(db, ["CREATE TABLE t AS SELECT range AS x, md5(range::VARCHAR) AS s FROM range(20000)"]);
    const bk = join(dir, "bk");
    const older = await backupAt(db, bk, new Date(Date.now() - 3 * DAY));
    const good = await backupAt(db, bk, new Date(Date.now() - 2 * DAY));
    const corrupt = await backupAt(db, bk, new Date(Date.now() - DAY), "none");
    // Damage the database's bytes, past the manifest at the head of the archive.
    const bytes = readFileSync(corrupt);
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    writeFileSync(corrupt, bytes);

    const r = await runBinary(["cleanup", "--backup-dir", bk, "--keep-last", "1", "--json"]);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.verified).toEqual([
      { file: basename(corrupt), ok: false },
      { file: basename(good), ok: true },
    ]);
    expect(result.kept.map((k: any) => [k.path, k.reasons])).toEqual([
      [corrupt, ["last 1"]],
      [good, ["newest verified"]],
    ]);
    expect(result.deleted.map((d: any) => d.path)).toEqual([older]);
    expect(readdirSync(bk).sort()).toEqual([basename(good), basename(corrupt)].sort());
  });
});
