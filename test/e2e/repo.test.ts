// The snapshot repository through the compiled binary: init, backup, list, restore, verify, stats.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createSampleDatabases, query, runBinary, runSql, sh, sha256File, startWriter, tempDir, WRITER } from "../helpers.ts";

const PASSWORD = "correct horse battery staple";
const env = (extra: Record<string, string> = {}) => ({ ...process.env, NO_COLOR: "1", DUCKBAK_PASSWORD: PASSWORD, ...extra }) as Record<string, string>;
const run = (args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) => runBinary(args, { cwd: opts.cwd, env: opts.env ?? env() });

/** Every file under `dir`, relative, sorted. */
function walk(dir: string, rel = ""): string[] {
  return readdirSync(join(dir, rel), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(dir, join(rel, e.name)) : [join(rel, e.name)]))
    .sort();
}

async function bigDb(path: string, rows = 400_000): Promise<void> {
  await runSql(path, [
    `CREATE TABLE t AS SELECT range AS id, md5(range::VARCHAR) AS s, range * 7 % 1000 AS v FROM range(${rows})`,
    "CHECKPOINT",
  ]);
}

async function snapshotJson(repo: string, dbs: string[]): Promise<any> {
  const r = await run(["backup", "--repo", repo, "--json", ...dbs]);
  if (r.code !== 0) throw new Error(`backup exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe("repository", () => {
  test("init: needs --repo, refuses a non-empty folder, writes private files; wrong password is exit 6 and writes nothing", async () => {
    const dir = tempDir();
    // Without a repository location, init writes a duckbak.toml instead (test/e2e/init-config.test.ts).
    const plain = await run(["init"], { cwd: dir });
    expect(plain.code).toBe(0);
    expect(plain.stdout).toStartWith("Wrote duckbak.toml");
    const repo = join(dir, "repo");
    const r = await run(["init", "--repo", repo]);
    expect(r.code).toBe(0);
    expect(statSync(repo).mode & 0o777).toBe(0o700);
    for (const f of walk(repo)) expect(statSync(join(repo, f)).mode & 0o777).toBe(0o600);
    const again = await run(["init", "--repo", repo]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("not empty");
    const noPw = await runBinary(["list", "--repo", repo], { env: { ...process.env, NO_COLOR: "1", DUCKBAK_PASSWORD: "" } as Record<string, string> });
    expect(noPw.code).toBe(2);
    expect(noPw.stderr).toContain("DUCKBAK_PASSWORD");

    const db = join(dir, "a.duckdb");
    await bigDb(db, 20_000);
    const before = walk(repo);
    const wrong = await run(["backup", "--repo", repo, db], { env: env({ DUCKBAK_PASSWORD: "wrong" }) });
    expect(wrong.code).toBe(6);
    expect(wrong.stderr.trim().split("\n")).toEqual([`duckbak: error: ${repo}: wrong password (it opens none of the repository's 1 key)`]);
    expect(wrong.stderr).not.toContain(PASSWORD);
    expect(walk(repo)).toEqual(before);
    for (const cmd of [["list"], ["verify"], ["restore", "latest", "--restore-dir", join(dir, "x")], ["stats"], ["cleanup", "--keep-last", "1"]]) {
      const w = await run([...cmd, "--repo", repo], { env: env({ DUCKBAK_PASSWORD: "wrong" }) });
      expect([cmd[0], w.code]).toEqual([cmd[0], 6]);
    }
    expect(existsSync(join(dir, "x"))).toBe(false);
    expect(walk(repo)).toEqual(before);

    // DUCKBAK_PASSWORD_FILE and password_command open it too; DUCKBAK_REPOSITORY names it.
    const pwFile = join(dir, "pw");
    writeFileSync(pwFile, PASSWORD + "\n", { mode: 0o600 });
    const viaFile = await runBinary(["backup", db], { env: { ...process.env, NO_COLOR: "1", DUCKBAK_PASSWORD_FILE: pwFile, DUCKBAK_REPOSITORY: repo } as Record<string, string> });
    expect(viaFile.code).toBe(0);
    writeFileSync(join(dir, "duckbak.toml"), `repository = "repo"\npassword_command = "cat pw"\ndatabases = ["a.duckdb"]\n`);
    const viaCmd = await runBinary(["list", "--json"], { cwd: dir, env: { ...process.env, NO_COLOR: "1", DUCKBAK_PASSWORD: "" } as Record<string, string> });
    expect(viaCmd.code).toBe(0);
    expect(JSON.parse(viaCmd.stdout).snapshots.length).toBe(1);

    // Another format version: refused with one line saying which, nothing read or written.
    const config = JSON.parse(readFileSync(join(repo, "config"), "utf8"));
    expect(config.version).toBe(3);
    const old = (v: number) => `version ${v} was a pre-release format that this duckbak no longer reads; restore its snapshots with the duckbak that wrote them`;
    for (const [version, why] of [[1, old(1)], [2, old(2)], [4, "version 4 is newer than this duckbak understands"]] as const) {
      writeFileSync(join(repo, "config"), JSON.stringify({ ...config, version }));
      const other = await run(["list", "--repo", repo]);
      expect(other.code).toBe(1);
      expect(other.stderr.trim().split("\n")).toEqual([`duckbak: error: ${repo}: repository format ${why}`]);
    }
  });

  test("several passwords: key add, list, remove; a removed password no longer opens", async () => {
    const dir = tempDir();
    const repo = join(dir, "repo");
    expect((await run(["init", "--repo", repo])).code).toBe(0);
    // Without the new password: one line naming the variables key add reads, nothing added.
    const none = env();
    delete none.DUCKBAK_NEW_PASSWORD;
    delete none.DUCKBAK_NEW_PASSWORD_FILE;
    const missing = await run(["key", "add", "--repo", repo], { env: none });
    expect([missing.code, missing.stderr]).toEqual([2, "duckbak: error: key add needs the new password: set DUCKBAK_NEW_PASSWORD or DUCKBAK_NEW_PASSWORD_FILE\n"]);
    const emptyFile = join(dir, "empty");
    writeFileSync(emptyFile, "");
    const empty = await run(["key", "add", "--repo", repo], { env: { ...none, DUCKBAK_NEW_PASSWORD_FILE: emptyFile } });
    expect([empty.code, empty.stderr]).toEqual([2, `duckbak: error: ${emptyFile}: the password file (DUCKBAK_NEW_PASSWORD_FILE) is empty\n`]);
    expect(walk(join(repo, "keys")).length).toBe(1);
    const add = await run(["key", "add", "--repo", repo, "--json"], { env: env({ DUCKBAK_NEW_PASSWORD: "second password" }) });
    expect(add.code).toBe(0);
    const second = env({ DUCKBAK_PASSWORD: "second password" });
    const keys = JSON.parse((await run(["key", "list", "--repo", repo, "--json"], { env: second })).stdout).keys;
    expect(keys.length).toBe(2);
    const first = keys.find((k: any) => !k.current);
    expect((await run(["key", "remove", keys.find((k: any) => k.current).id.slice(0, 8), "--repo", repo], { env: second })).code).toBe(1);
    expect((await run(["key", "remove", first.id.slice(0, 8), "--repo", repo], { env: second })).code).toBe(0);
    expect((await run(["list", "--repo", repo])).code).toBe(6);
    expect((await run(["list", "--repo", repo], { env: second })).code).toBe(0);
  });

  test("nothing in the repository reveals database names, table names or contents", async () => {
    const dir = tempDir();
    const repo = join(dir, "repo");
    expect((await run(["init", "--repo", repo])).code).toBe(0);
    const db = join(dir, "secretive_name.duckdb");
    await runSql(db, ["CREATE TABLE hidden_table_name AS SELECT 'plaintext-marker-' || range AS s FROM range(5000)", "CHECKPOINT"]);
    expect((await run(["backup", "--repo", repo, db])).code).toBe(0);
    for (const f of walk(repo)) {
      const text = readFileSync(join(repo, f)).toString("latin1");
      for (const needle of ["secretive_name", "hidden_table_name", "plaintext-marker", "DUCK"]) expect([f, text.includes(needle)]).toEqual([f, false]);
    }
  });

  test("dedup: an append changes a few chunks; every snapshot restores byte-identical; list, stats, verify", async () => {
    const dir = tempDir();
    const repo = join(dir, "repo");
    expect((await run(["init", "--repo", repo])).code).toBe(0);
    const dbs = await createSampleDatabases(join(dir, "data"), { trades: 5000 });
    const big = join(dir, "data", "big.duckdb");
    await bigDb(big);
    const all = [...dbs, big];
    const first = await snapshotJson(repo, all);
    expect(first.stats.chunks).toBeGreaterThan(30);
    const sums: { id: string; sha: Record<string, string> }[] = [{ id: first.snapshot, sha: Object.fromEntries(all.map((d) => [d, sha256File(d)])) }];

    // A few rows appended to the big table + checkpoint: only the blocks that changed are new.
    await runSql(big, ["INSERT INTO t SELECT range, 'new', 1 FROM range(400000, 400100)", "CHECKPOINT"]);
    const second = await snapshotJson(repo, all);
    expect(second.stats.new_blobs).toBeGreaterThan(0);
    expect(second.stats.new_blobs).toBeLessThanOrEqual(12);
    expect(second.stats.added_bytes).toBeLessThan(first.stats.added_bytes / 5);
    sums.push({ id: second.snapshot, sha: Object.fromEntries(all.map((d) => [d, sha256File(d)])) });

    // Unchanged databases: nothing new at all.
    const third = await snapshotJson(repo, all);
    expect(third.stats.new_blobs).toBe(0);
    expect(third.stats.added_bytes).toBe(0);

    await runSql(dbs[0]!, ["DELETE FROM portfolio_trades WHERE trade_id % 3 = 0", "CHECKPOINT"]);
    const fourth = await snapshotJson(repo, all);
    sums.push({ id: fourth.snapshot, sha: Object.fromEntries(all.map((d) => [d, sha256File(d)])) });

    const list = JSON.parse((await run(["list", "--repo", repo, "--json"])).stdout).snapshots;
    expect(list.map((s: any) => s.id)).toEqual([fourth.snapshot, third.snapshot, second.snapshot, first.snapshot]);
    expect(list[0].databases).toEqual(["results.duckdb", "audit_trail.duckdb", "tca.duckdb", "big.duckdb"]);
    const human = await run(["list", "--repo", repo]);
    expect(human.stdout).toContain(first.snapshot.slice(0, 8));

    for (const s of sums) {
      const out = join(dir, `out-${s.id.slice(0, 8)}`);
      const r = await run(["restore", s.id.slice(0, 10), "--repo", repo, "--restore-dir", out]);
      expect(r.code).toBe(0);
      for (const d of all) expect(sha256File(join(out, d.split("/").pop()!))).toBe(s.sha[d]!);
    }
    expect(await query(join(dir, `out-${second.snapshot.slice(0, 8)}`, "big.duckdb"), "SELECT count(*) FROM t")).toEqual([[400100n]]);

    // --only, latest, ambiguous and unknown references.
    const only = join(dir, "only");
    expect((await run(["restore", "latest", "--repo", repo, "--restore-dir", only, "--only", "tca.duckdb"])).code).toBe(0);
    expect(readdirSync(only)).toEqual(["tca.duckdb"]);
    expect((await run(["restore", "ffffffffff", "--repo", repo, "--restore-dir", only])).code).toBe(10);

    const stats = JSON.parse((await run(["stats", "--repo", repo, "--json"])).stdout);
    expect(stats.snapshots).toBe(4);
    // Every distinct chunk was new in exactly one snapshot (no cleanup ran): the counts add up.
    expect([first, second, third, fourth].reduce((n, s) => n + s.stats.new_blobs, 0)).toBe(stats.blobs);
    expect(stats.dedup_ratio).toBeGreaterThan(3);
    const v = await run(["verify", "--repo", repo, "--read-data", "--json"]);
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true, problems: [] });
    const one = await run(["verify", "latest", "--repo", repo, "--read-data"]);
    expect(one.code).toBe(0);
    expect(one.stdout).toContain(`Snapshot ${fourth.snapshot.slice(0, 8)} is OK`);
  });

  test("restore over existing files keeps them as .bak, like archive restore", async () => {
    const dir = tempDir();
    const repo = join(dir, "repo");
    expect((await run(["init", "--repo", repo])).code).toBe(0);
    const db = join(dir, "a.duckdb");
    await bigDb(db, 10_000);
    const snap = await snapshotJson(repo, [db]);
    const original = sha256File(db);
    await runSql(db, ["INSERT INTO t VALUES (-1, 'x', 0)", "CHECKPOINT"]);
    const changed = sha256File(db);
    const r = await run(["restore", snap.snapshot, "--repo", repo, "--json"]);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(sha256File(db)).toBe(original);
    expect(sha256File(result.databases[0].backups[0])).toBe(changed);
  });

  test("a pending WAL is in the snapshot and restored with its rows; a locked database is refused, the others backed up (exit 3)", async () => {
    const dir = tempDir();
    const repo = join(dir, "repo");
    expect((await run(["init", "--repo", repo])).code).toBe(0);
    const wal = join(dir, "wal.duckdb");
    await sh([process.execPath, WRITER, "leave-wal", wal]);
    expect(existsSync(wal + ".wal")).toBe(true);
    const locked = join(dir, "locked.duckdb");
    await bigDb(locked, 1000);
    const writer = await startWriter(locked);
    let r;
    try {
      r = await run(["backup", "--repo", repo, "--json", wal, locked]);
    } finally {
      await writer.stop();
    }
    expect(r.code).toBe(3);
    const result = JSON.parse(r.stdout);
    expect(result.databases[1].error).toContain(`PID ${writer.pid}`);
    expect(result.manifest.databases[0].files.map((f: any) => f.role)).toEqual(["main", "wal"]);
    const out = join(dir, "out");
    expect((await run(["restore", "latest", "--repo", repo, "--restore-dir", out])).code).toBe(0);
    // Restore folds the backup's WAL into the database, as archive restore does.
    expect(readdirSync(out).sort()).toEqual(["wal.duckdb"]);
    expect(await query(join(out, "wal.duckdb"), "SELECT count(*), max(x) FROM t")).toEqual([[15n, 104n]]);
  });

  test("damage: a flipped byte in a pack, a truncated pack, a missing pack are caught, naming snapshot and file; restore writes nothing", async () => {
    const dir = tempDir();
    const repo = join(dir, "repo");
    expect((await run(["init", "--repo", repo])).code).toBe(0);
    const db = join(dir, "a.duckdb");
    await bigDb(db, 200_000);
    const snap = await snapshotJson(repo, [db]);
    const short = snap.snapshot.slice(0, 8);
    const packs = walk(repo).filter((f) => f.startsWith("data/"));
    expect(packs.length).toBe(1);
    const pack = join(repo, packs[0]!);
    const good = readFileSync(pack);

    expect((await run(["verify", "--repo", repo])).code).toBe(0);
    // One byte flipped in the middle of the pack: structure still fine, --read-data catches it.
    const flipped = Buffer.from(good);
    flipped[Math.floor(good.length / 2)]! ^= 0x01;
    writeFileSync(pack, flipped);
    expect((await run(["verify", "--repo", repo])).code).toBe(0);
    const v = await run(["verify", "--repo", repo, "--read-data"]);
    expect(v.code).toBe(4);
    expect(v.stderr).toContain(`snapshot ${short} a.duckdb: file a.duckdb: chunk`);
    expect(v.stderr).toContain("authentication failed");
    const out = join(dir, "out");
    const r = await run(["restore", "latest", "--repo", repo, "--restore-dir", out]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain("nothing was restored");
    expect(existsSync(join(out, "a.duckdb"))).toBe(false);
    expect(readdirSync(out).length).toBe(0);

    // Truncated: the structure check sees the size.
    writeFileSync(pack, good.subarray(0, good.length - 1000));
    const t = await run(["verify", "--repo", repo]);
    expect(t.code).toBe(4);
    expect(t.stderr).toContain("truncated");
    expect(t.stderr).toContain(`snapshot ${short} a.duckdb: file a.duckdb`);
    // Missing.
    unlinkSync(pack);
    const m = await run(["verify", "--repo", repo, "--json"]);
    expect(m.code).toBe(4);
    expect(JSON.parse(m.stdout).problems.join("\n")).toContain("is missing");
    expect((await run(["restore", "latest", "--repo", repo, "--restore-dir", out])).code).toBe(4);
    // Put back: everything is fine again.
    writeFileSync(pack, good);
    expect((await run(["verify", "--repo", repo, "--read-data"])).code).toBe(0);
  });

  test("a lost pack: verify names it; the next backup stores its chunks again, and that snapshot verifies and restores byte-identical", async () => {
    const dir = tempDir();
    const repo = join(dir, "repo");
    const db = join(dir, "a.duckdb");
    expect((await run(["init", "--repo", repo])).code).toBe(0);
    await bigDb(db, 150_000);
    await snapshotJson(repo, [db]);
    const [lost] = walk(join(repo, "data")).sort((a, b) => statSync(join(repo, "data", b)).size - statSync(join(repo, "data", a)).size);
    await runSql(db, ["INSERT INTO t SELECT range, 'late', 1 FROM range(150000, 160000)", "CHECKPOINT"]);
    const second = (await snapshotJson(repo, [db])).snapshot;
    unlinkSync(join(repo, "data", lost!));
    const v = await run(["verify", "--repo", repo]);
    expect(v.code).toBe(4);
    expect(v.stderr).toContain(lost!.split("/").pop()!.slice(0, 12));
    // The next backup does not take the lost copies for stored ones.
    const healed = await snapshotJson(repo, [db]);
    expect(healed.stats.new_blobs).toBeGreaterThan(0);
    const check = await run(["verify", healed.snapshot, "--repo", repo, "--read-data"]);
    expect([check.code, check.stderr]).toEqual([0, ""]);
    expect((await run(["restore", "latest", "--repo", repo, "--restore-dir", join(dir, "out")])).code).toBe(0);
    expect(sha256File(join(dir, "out", "a.duckdb"))).toBe(sha256File(db));
    // The snapshot taken before the loss had the same bytes: it reads the new copies too.
    expect((await run(["verify", second, "--repo", repo, "--read-data"])).code).toBe(0);
    // The index still names the lost pack until a cleanup drops it; then the whole repository verifies.
    expect((await run(["cleanup", "--repo", repo, "--keep-last", "1"])).code).toBe(0);
    expect((await run(["verify", "--repo", repo, "--read-data"])).code).toBe(0);
  });

  test("flags of the other target are refused (exit 2, nothing written); --backup-dir alone means the archives over a configured repository; restore latest --only of a database the newest snapshot lacks names the one that has it; ids in capitals", async () => {
    const dir = tempDir();
    const repo = join(dir, "repo");
    const db = join(dir, "a.duckdb");
    await bigDb(db, 10_000);
    expect((await run(["init", "--repo", repo])).code).toBe(0);
    expect((await run(["backup", "--backup-dir", join(dir, "bk"), "--name", "one", db])).code).toBe(0);
    for (const [args, says] of [
      [["backup", "--repo", repo, "--name", "x", db], "--name: for archives"],
      [["backup", "--repo", repo, "--compression", "gzip", "--no-compress", db], "--compression, --no-compress: for archives"],
      [["verify", "--repo", repo, "--quick"], "--quick is for archives"],
      [["list", "--repo", repo, "--backup-dir", join(dir, "bk")], "--repo and --backup-dir: give one"],
      [["restore", "latest", "--repo", repo, "--backup-dir", join(dir, "bk"), "--restore-dir", join(dir, "out")], "--repo and --backup-dir: give one"],
      // The reverse of --repo on a backup folder: an archive in the clear inside the encrypted repository.
      [["backup", "--backup-dir", repo, db], `${repo}: is a snapshot repository, not a backup folder; back up into it with --repo ${repo}`],
    ] as [string[], string][]) {
      const r = await run(args);
      expect([args.join(" "), r.code, r.stderr]).toEqual([args.join(" "), 2, expect.stringContaining(says)]);
    }
    expect(existsSync(join(repo, "snapshots"))).toBe(false); // no snapshot was made
    expect(readdirSync(repo).sort()).toEqual(["config", "keys"]); // nor an archive
    expect(existsSync(join(dir, "out"))).toBe(false);
    // A configured repository; --backup-dir names the archives.
    writeFileSync(join(dir, "duckbak.toml"), `repository = "repo"\ndatabases = ["a.duckdb"]\n`);
    const listed = await run(["list", "--backup-dir", "bk", "--json"], { cwd: dir });
    expect([listed.code, JSON.parse(listed.stdout).backups.map((b: any) => b.name)]).toEqual([0, ["one"]]);
    // A snapshot without a.duckdb is the newest: `restore latest --only a.duckdb` points at the one that has it.
    const first = (await snapshotJson(repo, [db])).snapshot;
    const other = join(dir, "b.duckdb");
    await bigDb(other, 1000);
    await Bun.sleep(20);
    await snapshotJson(repo, [other]);
    const r = await run(["restore", "LATEST", "--repo", repo, "--only", "a.duckdb", "--restore-dir", join(dir, "out")]);
    expect([r.code, r.stderr.trim()]).toEqual([2, expect.stringContaining(`; the newest snapshot that has it is ${first.slice(0, 8)}`)]);
    expect((await run(["restore", first.slice(0, 8).toUpperCase(), "--repo", repo, "--only", "a.duckdb", "--restore-dir", join(dir, "out")])).code).toBe(0);
    expect(sha256File(join(dir, "out", "a.duckdb"))).toBe(sha256File(db));
  });
});

