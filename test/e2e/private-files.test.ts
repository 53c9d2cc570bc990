// Files duckbak creates are private (0600, folders 0700) unless file_mode says otherwise; archives
// record each file's mode and owner, and restore gives them back; restore's .bak files are listed
// by status and removed by cleanup --bak-older-than.
import { describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createSampleDatabases, runBinary, sh, tempDir } from "../helpers.ts";
import { parseBakName } from "../../src/core/bakfiles.ts";
import { parseIdFile } from "../../src/core/owners.ts";
import { umaskFor } from "../../src/core/fsutil.ts";
import { tarHeader } from "../../src/core/archive/tar.ts";

const mode = (p: string) => (statSync(p).mode & 0o7777).toString(8).padStart(4, "0");
const isRoot = process.getuid?.() === 0;

describe("pure parts", () => {
  test("umaskFor gives folders x where files have r", () => {
    expect(umaskFor(0o600)).toBe(0o077);
    expect(umaskFor(0o640)).toBe(0o027);
    expect(umaskFor(0o644)).toBe(0o022);
  });
  test(".bak names parse to the file and instant, others do not", () => {
    expect(parseBakName("r.duckdb.bak.20240115_120000")).toEqual({ of: "r.duckdb", createdAt: new Date("2024-01-15T12:00:00Z") });
    expect(parseBakName("r.duckdb.wal.bak.20240115_120000_2")?.of).toBe("r.duckdb.wal");
    expect(parseBakName("r.duckdb.bak")).toBeNull();
    expect(parseBakName("r.duckdb.bak.2024")).toBeNull();
  });
  test("passwd/group parsing maps names and ids both ways", () => {
    const t = parseIdFile("# c\nroot:x:0:0::/root:/bin/sh\nsvc:x:1234:1234::/:/bin/false\nbroken\n");
    expect(t.byName.get("svc")).toBe(1234);
    expect(t.byId.get(0)).toBe("root");
    expect(t.byName.has("broken")).toBe(false);
  });
  test("duckbak's own entries (manifest, trailer) keep their bytes: readers rebuild the trailer exactly", () => {
    // The header of the integrity trailer as archives made before modes were recorded have it.
    const h = new Bun.CryptoHasher("sha256").update(tarHeader({ name: "backup_archive.sha256", size: 162, mtime: new Date(0) })).digest("hex");
    expect(h).toBe("ecbf9e5d4d9d394c3c0340e591236ff98186bf8624390abf910e39473c15fd70");
  });
  test("ids past ustar's range and long owner names go into pax records", () => {
    const h = new TextDecoder().decode(tarHeader({ name: "x", size: 1, mtime: new Date(0), uid: 2 ** 22, gid: 5, owner: "u".repeat(40), group: "g" }));
    expect(h).toContain(` uid=${2 ** 22}\n`);
    expect(h).toContain(` uname=${"u".repeat(40)}\n`);
    expect(h).not.toContain(" gid=");
  });
});

describe("private files, recorded modes and owners", () => {
  test("archive 0600 in a 0700 folder; tar and manifest record mode and owner; restore gives them back", async () => {
    const dir = tempDir();
    const [results] = await createSampleDatabases(join(dir, "data"), { trades: 50 });
    chmodSync(results!, 0o640);
    if (isRoot) chownSync(results!, 1234, 2345);
    const bk = join(dir, "out/backups");
    const r = await runBinary(["backup", "--name", "p1", "--backup-dir", bk], { cwd: dir });
    expect(r.code).toBe(0);
    const archive = join(bk, "p1.tar.gz");
    expect(mode(archive)).toBe("0600");
    expect(mode(bk)).toBe("0700");
    expect(mode(join(dir, "out"))).toBe("0700");
    // GNU tar sees the modes and owners.
    const listing = await sh(["tar", "tvzf", archive, "--numeric-owner"]);
    const line = listing.split("\n").find((l) => l.endsWith(" results.duckdb"))!;
    expect(line).toStartWith("-rw-r-----");
    if (isRoot) expect(line).toContain("1234/2345");
    const manifest = JSON.parse(await sh(["tar", "xzOf", archive, "backup_metadata.json"]));
    const file = manifest.databases.find((d: any) => d.name === "results.duckdb").files[0];
    expect(file.mode).toBe("0640");
    if (isRoot) expect(file).toMatchObject({ uid: 1234, gid: 2345 });

    // The live file loses its mode and owner; restore puts back the archived ones.
    chmodSync(results!, 0o666);
    if (isRoot) chownSync(results!, 0, 0);
    const restored = await runBinary(["restore", "p1", "--only", "results.duckdb", "--backup-dir", bk], { cwd: dir });
    expect(restored.code).toBe(0);
    expect(mode(results!)).toBe("0640");
    if (isRoot) expect([statSync(results!).uid, statSync(results!).gid]).toEqual([1234, 2345]);
    // Into another folder too (a restore drill), where no current file exists.
    const drill = join(dir, "drill");
    expect((await runBinary(["restore", "p1", "--restore-dir", drill, "--backup-dir", bk], { cwd: dir })).code).toBe(0);
    expect(mode(join(drill, "results.duckdb"))).toBe("0640");
    expect(mode(join(drill, "tca.duckdb"))).toBe("0644");
    expect(mode(drill)).toBe("0700");
  });

  test("daily's log is private; file_mode in the config loosens archives, folders and the log", async () => {
    const dir = tempDir();
    await createSampleDatabases(join(dir, "data"), { trades: 50 });
    expect((await runBinary(["daily"], { cwd: dir })).code).toBe(0);
    expect(mode(join(dir, "data/backup.log"))).toBe("0600");

    const loose = tempDir();
    await createSampleDatabases(join(loose, "data"), { trades: 50 });
    writeFileSync(join(loose, "duckbak.toml"), 'file_mode = "0640"\nbackup_dir = "shared/backups"\n');
    expect((await runBinary(["daily"], { cwd: loose })).code).toBe(0);
    const [archive] = (await sh(["ls", join(loose, "shared/backups")])).trim().split("\n");
    expect(mode(join(loose, "shared/backups", archive!))).toBe("0640");
    expect(mode(join(loose, "shared/backups"))).toBe("0750");
    expect(mode(join(loose, "data/backup.log"))).toBe("0640");

    writeFileSync(join(loose, "duckbak.toml"), "file_mode = 0o755\n");
    const bad = await runBinary(["list"], { cwd: loose });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("file_mode");
  });
});

describe(".bak files of restore", () => {
  test("status lists them with their size; cleanup --bak-older-than removes the old ones (dry run first)", async () => {
    const dir = tempDir();
    const [results] = await createSampleDatabases(join(dir, "data"), { trades: 50 });
    expect((await runBinary(["backup", "--name", "b"], { cwd: dir })).code).toBe(0);
    expect((await runBinary(["restore", "b", "--only", "results.duckdb"], { cwd: dir })).code).toBe(0);
    const old = `${results}.bak.20200101_000000`;
    writeFileSync(old, "x".repeat(1000));
    writeFileSync(`${results}.bak.notastamp`, "not ours");

    const status = await runBinary(["status", "--json"], { cwd: dir });
    const baks = JSON.parse(status.stdout).bak_files;
    expect(baks.map((b: any) => b.path.split("/").pop())).toEqual([
      "results.duckdb.bak.20200101_000000",
      expect.stringMatching(/^results\.duckdb\.bak\.\d{8}_\d{6}$/),
    ]);
    expect(baks[0]).toMatchObject({ size_bytes: 1000, of: results, created_at: "2020-01-01T00:00:00.000Z" });
    const text = await runBinary(["status"], { cwd: dir });
    expect(text.stdout).toContain("results.duckdb.bak.20200101_000000  1000 B");

    const dry = await runBinary(["cleanup", "--bak-older-than", "7d", "--dry-run"], { cwd: dir });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`would delete  ${old}  1000 B`);
    expect(dry.stdout).toContain("Dry run: would delete 1 .bak file kept by restore");
    expect(existsSync(old)).toBe(true);

    const real = await runBinary(["cleanup", "--bak-older-than", "7d", "--json"], { cwd: dir });
    expect(real.code).toBe(0);
    expect(JSON.parse(real.stdout).bak_files_deleted.map((b: any) => b.path)).toEqual([old]);
    expect(existsSync(old)).toBe(false);
    expect(existsSync(`${results}.bak.notastamp`)).toBe(true);
    expect(baks[1] && existsSync(baks[1].path)).toBe(true);
    expect(readFileSync(results!).length).toBeGreaterThan(0);
  });
});
