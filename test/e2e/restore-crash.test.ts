// kill -9 at every commit instant of restore: the target must be exactly its pre-restore state or
// the backup's, with and without --overwrite, with and without a pending WAL on either side.
import { describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { killAtPause, query, runBinary, runSql, sh, sha256File, tempDir, WRITER } from "../helpers.ts";

const dir = tempDir();

/** What an application opening the database sees: each table with its row count and a checksum. */
async function content(files: Record<string, string>): Promise<string> {
  const scratch = join(dir, `look-${Math.random().toString(36).slice(2)}`);
  mkdirSync(scratch);
  for (const [name, path] of Object.entries(files)) copyFileSync(path, join(scratch, name));
  const db = join(scratch, "x.duckdb");
  const tables = (await query(db, "SELECT table_name FROM duckdb_tables() ORDER BY 1")).map((r) => String(r[0]));
  const parts: string[] = [];
  for (const t of tables) parts.push(`${t}=${String((await query(db, `SELECT count(*), sum(hash(x)) FROM "${t}"`))[0])}`);
  return parts.join(";");
}

/** The database files at `target` (main and .wal), by name beside it. */
function filesAt(folder: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of readdirSync(folder)) if (n === "x.duckdb" || n.startsWith("x.duckdb.wal")) out[n] = join(folder, n);
  return out;
}

/** A database at `path`; with `wal`, part of its rows are in a pending WAL. */
async function makeDb(path: string, table: string, rows: number, wal: boolean): Promise<void> {
  if (!wal) return runSql(path, [`CREATE TABLE ${table} AS SELECT range AS x FROM range(${rows})`]);
  await sh([process.execPath, WRITER, "leave-wal-sql", path, `CREATE TABLE ${table} AS SELECT range AS x FROM range(${rows})`, `INSERT INTO ${table} SELECT range + 1000000 FROM range(7)`]);
  expect(existsSync(`${path}.wal`)).toBe(true);
}

const POINTS = ["restore:fold-copy", "restore:fold-target", "restore:keep-bak", "restore:remove-side", "restore:rename", "restore:renamed"] as const;

describe("restore survives kill -9 at every commit instant", async () => {
  // Two archives (backup side with / without a WAL) and two old states (with / without a WAL).
  const archives: Record<string, string> = {};
  const backupContent: Record<string, string> = {};
  for (const wal of [false, true]) {
    const src = join(dir, `src-${wal}`);
    mkdirSync(src);
    await makeDb(join(src, "x.duckdb"), "from_backup", 300, wal);
    backupContent[String(wal)] = await content(filesAt(src));
    const r = await runBinary(["backup", join(src, "x.duckdb"), "--backup-dir", join(dir, "bk"), "--name", `b-${wal}`, "--no-compress"]);
    expect(r.code).toBe(0);
    archives[String(wal)] = join(dir, "bk", `b-${wal}.tar`);
  }
  const olds: Record<string, string> = {};
  for (const wal of [false, true]) {
    olds[String(wal)] = join(dir, `old-${wal}`);
    mkdirSync(olds[String(wal)]!);
    await makeDb(join(olds[String(wal)]!, "x.duckdb"), "current", 200, wal);
  }
  let n = 0;
  for (const overwrite of [false, true])
    for (const targetWal of [false, true])
      for (const backupWal of [false, true])
        test(`${overwrite ? "--overwrite" : "keeping .bak"}, target ${targetWal ? "with" : "without"} WAL, backup ${backupWal ? "with" : "without"} WAL`, async () => {
          const oldFiles = filesAt(olds[String(targetWal)]!);
          const oldContent = await content(oldFiles);
          const oldBytes = Object.fromEntries(Object.entries(oldFiles).map(([k, p]) => [k, sha256File(p)]));
          for (const point of POINTS) {
            const target = join(dir, `t${++n}`);
            mkdirSync(target);
            for (const [name, p] of Object.entries(oldFiles)) copyFileSync(p, join(target, name));
            // --no-verify: the pre-scan writes nothing, and skipping it halves the time of each run.
            const args = ["restore", archives[String(backupWal)]!, "--restore-dir", target, "--no-verify", ...(overwrite ? ["--overwrite"] : [])];
            if (point === "restore:fold-copy" && !backupWal) continue; // nothing to fold
            if (point === "restore:fold-target" && !targetWal) continue;
            await killAtPause(args, point);
            const now = filesAt(target);
            const label = `${point}: ${Object.keys(now).join(",")}`;
            if (point === "restore:renamed") {
              expect(label).toBe(`${point}: x.duckdb`);
              expect(await content(now)).toBe(backupContent[String(backupWal)]!);
            } else {
              expect(await content(now)).toBe(oldContent);
              // Before the target's WAL is folded, byte for byte; after, one file of the same content.
              if (point === "restore:fold-copy" || point === "restore:fold-target" || !targetWal)
                expect(Object.fromEntries(Object.entries(now).map(([k, p]) => [k, sha256File(p)]))).toEqual(oldBytes);
              else expect(label).toBe(`${point}: x.duckdb`);
            }
            // A .bak, once made, holds the whole old database.
            const baks = readdirSync(target).filter((f) => f.includes(".bak."));
            if (baks.length) {
              expect(baks).toEqual([expect.stringMatching(/^x\.duckdb\.bak\.\d{8}_\d{6}$/)]);
              expect(await content({ "x.duckdb": join(target, baks[0]!) })).toBe(oldContent);
            }
            // The next run removes the dead run's temporaries and completes the restore (checked at
            // one instant per case: each run costs a second).
            if (point !== "restore:rename") continue;
            const again = await runBinary(args);
            expect(again.code).toBe(0);
            expect(readdirSync(target).filter((f) => f.startsWith(".duckbak-tmp"))).toEqual([]);
            expect(Object.keys(filesAt(target))).toEqual(["x.duckdb"]);
            expect(await content(filesAt(target))).toBe(backupContent[String(backupWal)]!);
          }
        });
});

describe("a WAL that cannot be folded", () => {
  test("a current database whose WAL DuckDB cannot replay is not replaced: refused with the reason, every byte left", async () => {
    const d = join(dir, "corrupt-wal");
    mkdirSync(d);
    await makeDb(join(d, "x.duckdb"), "current", 200, true);
    const wal = readFileSync(join(d, "x.duckdb.wal"));
    wal.fill(0x5a, 60, 90);
    writeFileSync(join(d, "x.duckdb.wal"), wal);
    const before = Object.fromEntries(readdirSync(d).map((n) => [n, sha256File(join(d, n))]));
    for (const overwrite of [[], ["--overwrite"]]) {
      const r = await runBinary(["restore", join(dir, "bk", "b-false.tar"), "--restore-dir", d, ...overwrite]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${join(d, "x.duckdb")}: has a pending WAL that DuckDB cannot fold into it (`);
      expect(r.stderr).toContain("not replaced (move it and its .wal away, or use --restore-dir)");
      expect(Object.fromEntries(readdirSync(d).map((n) => [n, sha256File(join(d, n))]))).toEqual(before);
    }
  });
});
