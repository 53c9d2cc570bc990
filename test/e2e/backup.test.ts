// End to end against the compiled binary: what a user of `duckbak backup` and `duckbak list` checks.
import { describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createSampleDatabases, query, runBinary, runSql, sh, tempDir, withSmallDisk, WRITER, sha256File } from "../helpers.ts";


async function project(): Promise<{ dir: string; dbs: string[] }> {
  const dir = tempDir();
  const dbs = await createSampleDatabases(join(dir, "data"), { trades: 5000 });
  return { dir, dbs };
}

function archivesIn(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

describe("duckbak backup", () => {
  test("backs up ./data/*.duckdb into data/backups; GNU tar extracts byte-identical files", async () => {
    const { dir, dbs } = await project();
    const r = await runBinary(["backup"], { cwd: dir });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const [archive] = archivesIn(join(dir, "data/backups"));
    expect(archive).toMatch(/^backup_\d{8}_\d{6}\.tar\.gz$/);
    const path = join(dir, "data/backups", archive!);
    expect(r.stdout).toContain(`Backup created: ${path}`);

    const listing = (await sh(["tar", "-tzf", path])).trim().split("\n");
    expect(listing).toEqual(["backup_metadata.json", "audit_trail.duckdb", "results.duckdb", "tca.duckdb", "backup_archive.sha256"]);
    const out = join(dir, "extracted");
    mkdirSync(out);
    await sh(["tar", "-xzf", path, "-C", out]);
    for (const db of dbs) expect(sha256File(join(out, db.split("/").pop()!))).toBe(sha256File(db));

    const manifest = JSON.parse(readFileSync(join(out, "backup_metadata.json"), "utf8"));
    expect(Date.parse(manifest.timestamp)).toBeGreaterThan(Date.now() - 60_000);
    expect(manifest.compression).toBe("gzip");
    const results = manifest.databases.find((d: any) => d.name === "results.duckdb");
    expect(results.original_path).toBe(join(dir, "data/results.duckdb"));
    expect(results.size_bytes).toBe(readFileSync(dbs[0]!).length);
    expect(results.files[0].sha256).toBe(sha256File(dbs[0]!));
    expect(results.consistency).toBe("read-lock");
    expect(results.duckdb.creator_version).toMatch(/^v\d+\.\d+\.\d+/);
    expect(results.duckdb.storage_version).toBeGreaterThan(0);
    expect(results.tables).toEqual([
      { schema: "main", name: "portfolio_equity", rows: 365 },
      { schema: "main", name: "portfolio_positions", rows: 5 },
      { schema: "main", name: "portfolio_trades", rows: 5000 },
    ]);
  });

  test("zstd and --no-compress archives are read by tar --zstd and plain tar", async () => {
    const { dir, dbs } = await project();
    expect((await runBinary(["backup", "--compression", "zstd", "--name", "z"], { cwd: dir })).code).toBe(0);
    expect((await runBinary(["backup", "--no-compress", "--name", "plain"], { cwd: dir })).code).toBe(0);
    expect(archivesIn(join(dir, "data/backups"))).toEqual(["plain.tar", "z.tar.zst"]);
    for (const [file, flags] of [["z.tar.zst", ["--zstd", "-xf"]], ["plain.tar", ["-xf"]]] as const) {
      const out = join(dir, `out-${file}`);
      mkdirSync(out);
      await sh(["tar", ...flags, join(dir, "data/backups", file), "-C", out]);
      for (const db of dbs) expect(sha256File(join(out, db.split("/").pop()!))).toBe(sha256File(db));
    }
  });

  test("a pending WAL is backed up with its database and its rows are in the backup", async () => {
    const dir = tempDir();
    const db = join(dir, "wal.duckdb");
    await sh([process.execPath, WRITER, "leave-wal", db]);
    expect(existsSync(db + ".wal")).toBe(true);

    const r = await runBinary(["backup", db, "--backup-dir", join(dir, "bk"), "--name", "w", "--json"]);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.manifest.databases[0].files.map((f: any) => [f.entry, f.role])).toEqual([
      ["wal.duckdb", "main"],
      ["wal.duckdb.wal", "wal"],
    ]);
    expect(result.manifest.databases[0].tables).toEqual([{ schema: "main", name: "t", rows: 15 }]);
    const out = join(dir, "out");
    mkdirSync(out);
    await sh(["tar", "-xzf", join(dir, "bk/w.tar.gz"), "-C", out]);
    expect(await query(join(out, "wal.duckdb"), "SELECT count(*), max(x) FROM t")).toEqual([[15n, 104n]]);
  });

  test("databases with the same file name from different folders do not collide", async () => {
    const dir = tempDir();
    mkdirSync(join(dir, "a"));
    mkdirSync(join(dir, "b"));
    await runSql(join(dir, "a/results.duckdb"), ["CREATE TABLE t AS SELECT 1 AS v"]);
    await runSql(join(dir, "b/results.duckdb"), ["CREATE TABLE t AS SELECT 2 AS v", "CREATE TABLE u (x INT)"]);
    const r = await runBinary(["backup", "a/results.duckdb", "b/results.duckdb", "--backup-dir", "bk", "--name", "two"], { cwd: dir });
    expect(r.code).toBe(0);
    const out = join(dir, "out");
    mkdirSync(out);
    await sh(["tar", "-xzf", join(dir, "bk/two.tar.gz"), "-C", out]);
    expect(await query(join(out, "results.duckdb"), "SELECT v FROM t")).toEqual([[1]]);
    expect(await query(join(out, "2-results.duckdb"), "SELECT v FROM t")).toEqual([[2]]);
  });

  test("an existing --name is refused and left untouched", async () => {
    const { dir } = await project();
    expect((await runBinary(["backup", "--name", "keep"], { cwd: dir })).code).toBe(0);
    const before = sha256File(join(dir, "data/backups/keep.tar.gz"));
    const r = await runBinary(["backup", "--name", "keep", "--compression", "zstd"], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("a backup named 'keep' already exists; not overwritten");
    expect(sha256File(join(dir, "data/backups/keep.tar.gz"))).toBe(before);
    expect(archivesIn(join(dir, "data/backups"))).toEqual(["keep.tar.gz"]);
  });

  test("duckbak.toml chooses databases, backup folder and compression", async () => {
    const { dir } = await project();
    writeFileSync(join(dir, "duckbak.toml"), 'databases = ["data/tca.duckdb"]\nbackup_dir = "nightly"\ncompression = "zstd"\n');
    const r = await runBinary(["backup", "--json"], { cwd: dir });
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.archive).toStartWith(join(dir, "nightly") + "/");
    expect(result.archive).toEndWith(".tar.zst");
    expect(result.manifest.databases.map((d: any) => d.name)).toEqual(["tca.duckdb"]);
  });
});

describe("errors: one line naming the file, non-zero exit, no partial archive", () => {
  test("a missing database and a non-DuckDB file fail; the others are still backed up (exit 3)", async () => {
    const { dir, dbs } = await project();
    writeFileSync(join(dir, "data/notes.duckdb"), "just some text, not a database".repeat(500));
    const r = await runBinary(["backup", dbs[0]!, "data/missing.duckdb", "data/notes.duckdb", "--json"], { cwd: dir });
    expect(r.code).toBe(3);
    const result = JSON.parse(r.stdout);
    expect(result.databases.map((d: any) => [d.path.split("/").pop(), d.ok, d.error])).toEqual([
      ["results.duckdb", true, null],
      ["missing.duckdb", false, `${join(dir, "data/missing.duckdb")}: database file not found`],
      ["notes.duckdb", false, `${join(dir, "data/notes.duckdb")}: not a DuckDB database (no DUCK magic in its header)`],
    ]);
    expect(result.manifest.failed.length).toBe(2);
    const human = await runBinary(["backup", "data/missing.duckdb"], { cwd: dir });
    expect(human.code).toBe(1);
    expect(human.stderr).toContain(`FAILED  ${join(dir, "data/missing.duckdb")}: database file not found\n`);
  });

  test("unknown options and bad values are usage errors (exit 2)", async () => {
    const { dir } = await project();
    const r = await runBinary(["backup", "--frobnicate"], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n").length).toBe(1);
    expect(r.stderr).toContain("unknown option '--frobnicate' for backup (see duckbak backup --help)");
    const c = await runBinary(["backup", "--compression", "lz4"], { cwd: dir });
    expect(c.code).toBe(2);
    expect(c.stderr).toContain("--compression must be gzip, zstd or none, not 'lz4'");
    const n = await runBinary(["backup", "--name", "a/b"], { cwd: dir });
    expect(n.code).toBe(2);
    expect(archivesIn(join(dir, "data/backups"))).toEqual([]);
  });

  test("a backup folder that cannot be created is named in the error", async () => {
    const { dir } = await project();
    writeFileSync(join(dir, "afile"), "x");
    const r = await runBinary(["backup", "--backup-dir", "afile/sub"], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${join(dir, "afile/sub")}: a path component is not a folder`);
  });

  test("a full disk fails with a one-line error and leaves no partial archive", async () => {
    const dir = tempDir();
    const db = join(dir, "big.duckdb");
    await runSql(db, ["CREATE TABLE t AS SELECT md5(range::VARCHAR) || md5((range * 7)::VARCHAR) AS s FROM range(200000)"]);
    await withSmallDisk(dir, "1m", async (mnt) => {
      const r = await runBinary(["backup", db, "--backup-dir", mnt, "--no-compress"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`no space left on device`);
      expect(r.stderr).toContain(mnt);
      expect(readdirSync(mnt)).toEqual([]);
    });
  });
});

describe("duckbak list", () => {
  test("newest first by manifest timestamp; unrelated files ignored; unreadable archives listed as such", async () => {
    const { dir } = await project();
    expect((await runBinary(["backup", "--name", "zzz_first"], { cwd: dir })).code).toBe(0);
    expect((await runBinary(["backup", "--name", "aaa_second", "--compression", "zstd"], { cwd: dir })).code).toBe(0);
    const bk = join(dir, "data/backups");
    writeFileSync(join(bk, "README.txt"), "not a backup");
    writeFileSync(join(bk, "broken.tar.gz"), "garbage, not gzip");
    copyFileSync(join(bk, "zzz_first.tar.gz"), join(bk, "truncated.tar.gz"));
    writeFileSync(join(bk, "truncated.tar.gz"), readFileSync(join(bk, "truncated.tar.gz")).subarray(0, 300));

    const r = await runBinary(["list", "--json"], { cwd: dir });
    expect(r.code).toBe(0);
    const list = JSON.parse(r.stdout).backups;
    expect(list.map((b: any) => b.name)).toEqual(["aaa_second", "zzz_first", "truncated", "broken"]);
    expect(list[0].compression).toBe("zstd");
    expect(list[0].databases).toEqual(["audit_trail.duckdb", "results.duckdb", "tca.duckdb"]);
    expect(list[2].error).toContain("truncated.tar.gz");
    expect(list[3].error).toContain("broken.tar.gz");

    const human = await runBinary(["list"], { cwd: dir });
    expect(human.code).toBe(0);
    const lines = human.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^NAME\s+CREATED \(UTC\)\s+SIZE\s+COMPRESSION\s+DATABASES$/);
    expect(lines[1]).toStartWith("aaa_second");
    expect(lines[4]).toContain("UNREADABLE");
  });

  test("an empty or missing backup folder is not an error", async () => {
    const dir = tempDir();
    const r = await runBinary(["list", "--backup-dir", join(dir, "none")]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("No backups in");
  });
});
