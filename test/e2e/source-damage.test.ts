// A source database whose blocks fail DuckDB's own checksums is still backed up (it may be the
// best copy left), flagged in the output, the manifest and status, and the run exits 7.
import { describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runBinary, runSql, sha256File, tempDir } from "../helpers.ts";

const BLOCK = 262144;
const DAMAGED_AT = 12288 + 2 * BLOCK; // block 2: table data that count(*) does not read

async function setup() {
  const dir = tempDir();
  const data = join(dir, "data");
  const bad = join(data, "bad.duckdb");
  mkdirSync(data);
  await runSql(bad, ["CREATE TABLE t AS SELECT range AS id, md5(range::VARCHAR) AS s FROM range(200000)"]);
  await runSql(join(data, "good.duckdb"), ["CREATE TABLE t AS SELECT 1 AS x"]);
  const bytes = readFileSync(bad);
  bytes[DAMAGED_AT + 5000] = bytes[DAMAGED_AT + 5000]! ^ 0x10;
  writeFileSync(bad, bytes);
  return { dir, bad };
}

describe("damage in the source at backup time", () => {
  test("backup: archive made, database flagged in output and manifest, exit 7; status shows it", async () => {
    const { dir, bad } = await setup();
    const r = await runBinary(["backup", "--name", "b1"], { cwd: dir });
    expect(r.code).toBe(7);
    expect(r.stdout).toContain("Backup created:");
    expect(r.stdout).toMatch(/DAMAGED data\/bad\.duckdb .*backed up anyway/);
    expect(r.stdout).toMatch(/ok +data\/good\.duckdb/);
    expect(r.stderr).toContain(`${bad}: 1 block(s) fail DuckDB's checksum at offset ${DAMAGED_AT}`);

    const j = await runBinary(["backup", "--name", "b2", "--json"], { cwd: dir });
    expect(j.code).toBe(7);
    const out = JSON.parse(j.stdout);
    const dbs = out.manifest.databases;
    expect(dbs.find((d: any) => d.name === "bad.duckdb").source_blocks).toEqual({
      state: "damaged",
      problems: [`1 block(s) fail DuckDB's checksum at offset ${DAMAGED_AT}`],
    });
    expect(dbs.find((d: any) => d.name === "good.duckdb").source_blocks).toEqual({ state: "ok", problems: [] });
    expect(out.databases.find((d: any) => d.path === bad)).toMatchObject({ ok: true, source_damaged: true });

    // The archive's own manifest (padded to its reserved length) says the same, and GNU tar reads it.
    const manifest = JSON.parse(await Bun.$`tar -xzOf ${join(dir, "data/backups/b2.tar.gz")} backup_metadata.json`.text());
    expect(manifest.databases.find((d: any) => d.name === "bad.duckdb").source_blocks.state).toBe("damaged");

    // verify still fails (the copy is not sound), saying the damage was in the source.
    const v = await runBinary(["verify", "b2"], { cwd: dir });
    expect(v.code).toBe(4);
    expect(v.stderr).toContain("the source was already damaged when backed up");

    // ls flags it (text and JSON), as ls --repo does (below).
    const ls = await runBinary(["ls", "b2"], { cwd: dir, env: { NO_COLOR: "1" } });
    expect(ls.stdout).toContain(`DAMAGED when backed up (the source failed DuckDB's block checksums): 1 block(s) fail DuckDB's checksum at offset ${DAMAGED_AT}`);
    expect(ls.stdout.match(/DAMAGED/g)?.length).toBe(1);
    const lsj = JSON.parse((await runBinary(["ls", "b2", "--json"], { cwd: dir })).stdout);
    expect(lsj.databases.map((d: any) => d.source_blocks.state).sort()).toEqual(["damaged", "ok"]);

    // restore gives back that best copy, byte for byte, with a warning (damage found in the archive itself is refused: verify-restore.test.ts).
    const r2 = await runBinary(["restore", "b2", "--restore-dir", join(dir, "restored"), "--only", "bad.duckdb"], { cwd: dir });
    expect(r2.code).toBe(0);
    expect(r2.stderr).toContain("bad.duckdb: restored as it was backed up, with its damage:");
    expect(sha256File(join(dir, "restored/bad.duckdb"))).toBe(sha256File(bad));

    const s = await runBinary(["status", "--max-age", "1d"], { cwd: dir });
    expect(s.code).toBe(12);
    expect(s.stdout).toMatch(/DAMAGED +.*bad\.duckdb/);
    expect(s.stdout).toContain(`${bad}: SOURCE DAMAGED when backed up in b2`);
    const sj = JSON.parse((await runBinary(["status", "--json"], { cwd: dir })).stdout);
    expect(sj.databases.find((d: any) => d.path === bad)).toMatchObject({ source_damaged: true });
    expect(sj.databases.find((d: any) => d.path !== bad)).toMatchObject({ source_damaged: false });
  }, 60_000);

  test("daily: exit 7, logged, and cleanup deletes nothing (older backups may hold the last sound copy)", async () => {
    const { dir } = await setup();
    writeFileSync(join(dir, "duckbak.toml"), `[retention]\nkeep_last = 1\nkeep_minimum = 0\nkeep_days = 0\n`);
    expect((await runBinary(["backup", "--name", "old"], { cwd: dir })).code).toBe(7);
    const r = await runBinary(["daily"], { cwd: dir });
    expect(r.code).toBe(7);
    expect(r.stdout).toContain("Cleanup skipped: 1 source database(s) are damaged");
    expect((await runBinary(["list"], { cwd: dir })).stdout).toContain("old");
    expect(readFileSync(join(dir, "data/backup.log"), "utf8")).toContain("source_damaged");
  });

  test("a sound source exits 0 and records its blocks as checked", async () => {
    const dir = tempDir();
    const db = join(dir, "fine.duckdb");
    await runSql(db, ["CREATE TABLE t AS SELECT range AS id FROM range(100000)"]);
    const r = await runBinary(["backup", db, "--backup-dir", join(dir, "bk"), "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).manifest.databases[0].source_blocks).toEqual({ state: "ok", problems: [] });
  });

  test("backup --repo: the snapshot is made, the damaged block is named, exit 7; a sound one records its blocks", async () => {
    const { dir, bad } = await setup();
    const env = { DUCKBAK_PASSWORD: "pw" };
    const repo = join(dir, "repo");
    expect((await runBinary(["init", "--repo", repo], { env })).code).toBe(0);
    const r = await runBinary(["backup", "--repo", repo, "--json"], { cwd: dir, env });
    expect(r.code).toBe(7);
    const dbs = JSON.parse(r.stdout).manifest.databases;
    expect(dbs.find((d: any) => d.name === "bad.duckdb").source_blocks).toEqual({
      state: "damaged",
      problems: [`1 block(s) fail DuckDB's checksum at offset ${DAMAGED_AT}`],
    });
    expect(dbs.find((d: any) => d.name === "good.duckdb").source_blocks).toEqual({ state: "ok", problems: [] });
    expect(JSON.parse(r.stdout).databases.find((d: any) => d.path === bad).source_damage).toEqual([`${bad}: 1 block(s) fail DuckDB's checksum at offset ${DAMAGED_AT}`]);
    // A file larger than one read slab (several MiB): every block's verdict lands on the right block.
    const big = join(dir, "big.duckdb");
    await runSql(big, ["CREATE TABLE t AS SELECT range AS id, md5(range::VARCHAR) AS s FROM range(600000)"]);
    const bytes = readFileSync(big);
    const far = 12288 + Math.floor(bytes.length / BLOCK / 2) * BLOCK;
    bytes[far + 100] = bytes[far + 100]! ^ 0x01;
    writeFileSync(big, bytes);
    const b = await runBinary(["backup", "--repo", repo, big, "--json"], { env });
    expect(b.code).toBe(7);
    expect(JSON.parse(b.stdout).manifest.databases[0].source_blocks.problems).toEqual([`1 block(s) fail DuckDB's checksum at offset ${far}`]);
  }, 60_000);

  test("repository: verify fails (exit 4) on a snapshot of a damaged source, restore gives it back byte for byte with a warning; a sound snapshot verifies", async () => {
    const { dir, bad } = await setup();
    const env = { DUCKBAK_PASSWORD: "pw", NO_COLOR: "1" };
    const run = (args: string[]) => runBinary(args, { cwd: dir, env });
    expect((await run(["init", "--repo", "repo"])).code).toBe(0);
    expect((await run(["backup", "--repo", "repo"])).code).toBe(7);
    const id: string = JSON.parse((await run(["list", "--repo", "repo", "--json"])).stdout).snapshots[0].id;
    const problem = `snapshot ${id.slice(0, 8)} bad.duckdb: 1 block(s) fail DuckDB's checksum at offset ${DAMAGED_AT} (the source was already damaged when backed up; the snapshot holds it as it was)`;
    for (const args of [["verify", "latest"], ["verify", "latest", "--read-data"], ["verify"], ["verify", "--read-data"]]) {
      const v = await run([...args, "--repo", "repo"]);
      expect(v.code, `${args.join(" ")}: ${v.stdout}${v.stderr}`).toBe(4);
      expect(v.stderr).toContain(`FAILED  ${problem}`);
      expect(v.stderr).toContain("FAILED verification.");
    }
    const vj = await run(["verify", "latest", "--repo", "repo", "--read-data", "--json"]);
    expect(vj.code).toBe(4);
    expect(JSON.parse(vj.stdout)).toMatchObject({ ok: false, exit_code: 4, problems: [problem] });

    const ls = await run(["ls", "latest", "--repo", "repo"]);
    expect(ls.stdout).toContain(`DAMAGED when backed up (the source failed DuckDB's block checksums): 1 block(s) fail DuckDB's checksum at offset ${DAMAGED_AT}`);
    expect(ls.stdout.match(/DAMAGED/g)?.length).toBe(1);
    const lsj = JSON.parse((await run(["ls", "latest", "--repo", "repo", "--json"])).stdout);
    expect(lsj.databases.find((d: any) => d.name === "bad.duckdb").source_blocks.state).toBe("damaged");

    // Restore: the snapshot's bytes (the damaged source as it was), with the archive's warning.
    const warning = `bad.duckdb: restored as it was backed up, with its damage: ${problem.slice(`snapshot ${id.slice(0, 8)} `.length)}`;
    const r = await run(["restore", "latest", "--repo", "repo", "--restore-dir", "out"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`duckbak: warning: ${warning}`);
    expect(sha256File(join(dir, "out/bad.duckdb"))).toBe(sha256File(bad));
    expect(sha256File(join(dir, "out/good.duckdb"))).toBe(sha256File(join(dir, "data/good.duckdb")));
    const rj = await run(["restore", id, "--repo", "repo", "--restore-dir", "out2", "--only", "bad.duckdb", "--json"]);
    expect(rj.code, rj.stderr).toBe(0);
    expect(JSON.parse(rj.stdout)).toMatchObject({ ok: true, snapshot: id, warnings: [warning] });
    expect(sha256File(join(dir, "out2/bad.duckdb"))).toBe(sha256File(bad));
    const good = await run(["restore", id, "--repo", "repo", "--restore-dir", "out3", "--only", "good.duckdb", "--json"]);
    expect(JSON.parse(good.stdout)).toMatchObject({ ok: true, warnings: [] });

    // A snapshot of the sound database alone verifies; the repository as a whole still holds the damaged one.
    expect((await run(["backup", "--repo", "repo", "data/good.duckdb"])).code).toBe(0);
    const ok = await run(["verify", "latest", "--repo", "repo", "--read-data"]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/Snapshot [0-9a-f]{8} is OK/);
    const whole = await run(["verify", "--repo", "repo", "--json"]);
    expect(whole.code).toBe(4);
    expect(JSON.parse(whole.stdout).problems).toEqual([problem]);
  }, 60_000);

  test("repository: daily exits 7 and skips the repository's cleanup; cleanup keeps the newest snapshot whose source was sound, which restores it", async () => {
    const dir = tempDir();
    const db = join(dir, "a.duckdb");
    await runSql(db, ["CREATE TABLE t AS SELECT range AS id, md5(range::VARCHAR) AS s FROM range(200000)", "CHECKPOINT"]);
    const sound = readFileSync(db);
    const env = { ...process.env, NO_COLOR: "1", DUCKBAK_PASSWORD: "pw-damage" } as Record<string, string>;
    const run = (args: string[]) => runBinary(args, { cwd: dir, env });
    expect((await run(["init", "--repo", "repo"])).code).toBe(0);
    writeFileSync(join(dir, "duckbak.toml"), `databases = ["a.duckdb"]\nrepository = "repo"\n[retention]\nkeep_last = 1\n`);
    expect((await run(["daily"])).code).toBe(0);
    const snapshots = async () => JSON.parse((await run(["list", "--json"])).stdout).snapshots.map((s: any) => s.id);
    const [first] = await snapshots();
    await Bun.sleep(20);
    const damaged = Buffer.from(sound);
    damaged[DAMAGED_AT + 5000] = damaged[DAMAGED_AT + 5000]! ^ 0x10;
    writeFileSync(db, damaged);
    const d = await run(["daily", "--json"]);
    expect(d.code).toBe(7);
    expect(JSON.parse(d.stdout)).toMatchObject({ repo_cleanup: null, repo_cleanup_skipped: "1 source database(s) are damaged; older snapshots may hold their last sound copy, so none is forgotten" });
    expect(readFileSync(join(dir, "data/backup.log"), "utf8")).toContain("older snapshots may hold their last sound copy");
    expect((await snapshots()).length).toBe(2); // keep_last = 1, yet nothing was forgotten
    // A cleanup by hand keeps the sound one too, and says why.
    const c = await run(["cleanup", "--repo", "repo", "--keep-last", "1", "--json"]);
    expect(c.code).toBe(0);
    const kept = JSON.parse(c.stdout).kept;
    expect(kept.map((k: any) => k.id)).toContain(first);
    expect(kept.find((k: any) => k.id === first).reasons).toEqual(["last sound backup of a.duckdb (newer ones recorded its source as damaged)"]);
    expect((await run(["restore", first, "--repo", "repo", "--restore-dir", "out"])).code).toBe(0);
    expect(sha256File(join(dir, "out", "a.duckdb"))).toBe(new Bun.CryptoHasher("sha256").update(sound).digest("hex"));
    // Once a sound snapshot is newer, the policy applies again.
    writeFileSync(db, sound);
    await Bun.sleep(20);
    expect((await run(["daily"])).code).toBe(0);
    expect((await snapshots()).length).toBe(1);
  }, 60_000);
});
