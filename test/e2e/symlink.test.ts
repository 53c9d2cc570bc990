// A database given through a symbolic link: backed up from the real file (with the real file's
// WAL), recorded under both paths, restored into the real file.
import { describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { query, runBinary, runSql, sh, tempDir, WRITER } from "../helpers.ts";

describe.skipIf(process.platform === "win32")("symbolic links", () => {
  test("link.duckdb -> real/r.duckdb with a pending WAL: the backup has the WAL's rows; restore writes the real file, the link stays", async () => {
    const dir = tempDir();
    mkdirSync(join(dir, "in"));
    mkdirSync(join(dir, "real"));
    const real = join(dir, "real", "r.duckdb");
    const link = join(dir, "in", "link.duckdb");
    await sh([process.execPath, WRITER, "leave-wal", real]); // t: 10 rows checkpointed + 5 in the WAL
    expect(existsSync(`${real}.wal`)).toBe(true);
    symlinkSync(join("..", "real", "r.duckdb"), link);
    const bk = join(dir, "bk");

    const b = await runBinary(["backup", link, "--backup-dir", bk, "--name", "l", "--json"]);
    expect(b.code).toBe(0);
    const db = JSON.parse(b.stdout).manifest?.databases?.[0] ?? JSON.parse((await runBinary(["ls", "l", "--backup-dir", bk, "--json"])).stdout).databases[0];
    expect(db.original_path).toBe(link);
    expect(db.resolved_path).toBe(real);
    expect(db.files.map((f: { name: string }) => f.name)).toEqual(["link.duckdb", "link.duckdb.wal"]);
    expect(db.tables).toEqual([{ schema: "main", name: "t", rows: 15 }]);
    expect((await runBinary(["verify", "l", "--backup-dir", bk])).code).toBe(0);

    // Into a folder: the name as given, the WAL's rows folded in.
    expect((await runBinary(["restore", "l", "--backup-dir", bk, "--restore-dir", join(dir, "out")])).code).toBe(0);
    expect(readdirSync(join(dir, "out"))).toEqual(["link.duckdb"]);
    expect(await query(join(dir, "out", "link.duckdb"), "SELECT count(*) FROM t")).toEqual([[15n]]);

    // To the original path: the real file is replaced (its .bak beside it), the link is left a link.
    await runSql(real, ["INSERT INTO t SELECT range FROM range(100)"]);
    const r = JSON.parse((await runBinary(["restore", "l", "--backup-dir", bk, "--json"])).stdout);
    expect(r.databases[0].target).toBe(real);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(await query(link, "SELECT count(*) FROM t")).toEqual([[15n]]);
    expect(readdirSync(join(dir, "in"))).toEqual(["link.duckdb"]);
    expect(readdirSync(join(dir, "real")).map((n) => n.replace(/\d{8}_\d{6}/, "TS")).sort()).toEqual(["r.duckdb", "r.duckdb.bak.TS"]);
    expect(await query(join(dir, "real", readdirSync(join(dir, "real")).find((n) => n.includes(".bak."))!), "SELECT count(*) FROM t")).toEqual([[115n]]);

    // --overwrite too; a link whose file is gone is refused, naming the link.
    expect((await runBinary(["restore", "l", "--backup-dir", bk, "--overwrite"])).code).toBe(0);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    rmSync(join(dir, "real"), { recursive: true });
    const dangling = await runBinary(["restore", "l", "--backup-dir", bk]);
    expect(dangling.code).toBe(1);
    expect(dangling.stderr).toContain(`${link}: is a symbolic link to a missing file; not restored through it`);
    expect(existsSync(join(dir, "real"))).toBe(false);
  });

  test("the same database named twice (as itself and through a link) is backed up once", async () => {
    const dir = tempDir();
    const real = join(dir, "a.duckdb");
    await runSql(real, ["CREATE TABLE t AS SELECT 1 AS x"]);
    symlinkSync(real, join(dir, "b.duckdb"));
    const r = await runBinary(["backup", real, join(dir, "b.duckdb"), "--backup-dir", join(dir, "bk"), "--json"]);
    expect(r.stderr + r.stdout).toContain(`${join(dir, "b.duckdb")}: the same database file as ${real}`);
  });
});
