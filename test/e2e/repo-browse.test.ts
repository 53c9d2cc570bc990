// Looking into a repository snapshot as into an archive: ls (the snapshot file, no pack read),
// sql (read-only, on a private copy restored from the snapshot and removed afterwards), and
// restore --table (one table back into a live database, in one transaction).
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { query, runBinary, runSql, sh, tempDir, WRITER } from "../helpers.ts";

const PASSWORD = "browse the snapshots";
const dir = tempDir();
const repo = join(dir, "repo");
const a = join(dir, "a.duckdb");
const b = join(dir, "b.duckdb");
const tmp = join(dir, "tmp");
const env = (extra: Record<string, string> = {}) => ({ ...process.env, NO_COLOR: "1", TMPDIR: tmp, DUCKBAK_PASSWORD: PASSWORD, ...extra }) as Record<string, string>;
const run = (args: string[], extra: Record<string, string> = {}) => runBinary([...args, "--repo", repo], { cwd: dir, env: env(extra) });
let first = "";

function walk(d: string, rel = ""): string[] {
  return readdirSync(join(d, rel), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(d, join(rel, e.name)) : [join(rel, e.name)]));
}

beforeAll(async () => {
  mkdirSync(tmp);
  for (const [path, rows] of [[a, 3000], [b, 500]] as const)
    await runSql(path, [
      "CREATE SCHEMA s",
      "CREATE TABLE s.t(id BIGINT PRIMARY KEY, v VARCHAR NOT NULL DEFAULT 'x')",
      `INSERT INTO s.t SELECT range, md5(range::VARCHAR) FROM range(${rows})`,
      `CREATE TABLE only_${path.endsWith("a.duckdb") ? "a" : "b"} AS SELECT 42 AS x`,
      "CHECKPOINT",
    ]);
  expect((await run(["init"])).code).toBe(0);
  const r = await run(["backup", a, b, "--json"]);
  expect(r.code).toBe(0);
  first = JSON.parse(r.stdout).snapshot;
  // A later snapshot with fewer rows: the first one stays addressable by its id prefix.
  await runSql(a, ["DELETE FROM s.t WHERE id >= 1000", "CHECKPOINT"]);
  expect((await run(["backup", a, b])).code).toBe(0);
});

describe("repository snapshots like archives", () => {
  test("ls: databases, tables with row counts, from the snapshot file; JSON in the common envelope", async () => {
    const r = await run(["ls", first.slice(0, 8)]);
    expect(r.code).toBe(0);
    expect(r.stdout).toStartWith(`snapshot ${first.slice(0, 8)}  ${repo}`);
    expect(r.stdout).toMatch(/^a\.duckdb {2}[\d.]+ [KM]iB, 2 tables, 3001 rows$/m);
    expect(r.stdout).toMatch(/^ {4}s\.t +3,000$/m);
    const j = JSON.parse((await run(["ls", "latest", "--json"])).stdout);
    expect(j).toMatchObject({ ok: true, command: "ls", repository: repo });
    expect(j.databases.map((d: any) => [d.name, d.rows])).toEqual([["a.duckdb", 1001], ["b.duckdb", 501]]);
    expect(j.databases[0].files[0]).not.toHaveProperty("chunks");
    const missing = await run(["ls", "ffff0000"]);
    expect(missing.code).toBe(10);
  });

  test("sql: a query on the snapshot's databases (all attached, or one with --only); the private copy is removed, no lock left", async () => {
    const r = await run(["sql", first.slice(0, 8), "SELECT (SELECT count(*) FROM a.s.t) AS a, (SELECT count(*) FROM b.s.t) AS b"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^a +b\n3000 +500\n\(1 row\)\n$/);
    const j = JSON.parse((await run(["sql", "latest", "SELECT count(*) AS n FROM s.t", "--only", "a.duckdb", "--json"])).stdout);
    expect(j).toMatchObject({ ok: true, command: "sql", repository: repo, columns: ["n"], rows: [{ n: "1000" }] });
    expect(j.snapshot).toMatch(/^[0-9a-f]{64}$/);
    expect(j.snapshot).not.toBe(first);
    // Read-only, no file access: the query cannot write into the copy or read anything else.
    const write = await run(["sql", "latest", "--only", "a.duckdb", "CREATE TABLE x AS SELECT 1"]);
    expect(write.code).toBe(1);
    expect(readdirSync(tmp)).toEqual([]);
    expect(readdirSync(join(repo, "locks"))).toEqual([]);
  });

  test("restore --table: a dropped table comes back from a snapshot; several databases hold it: --only; --replace", async () => {
    await runSql(a, ["DROP TABLE s.t", "CREATE TABLE keep_me AS SELECT 1 AS x"]);
    const several = await run(["restore", first.slice(0, 8), "--table", "s.t", "--into", a]);
    expect(several.code).toBe(2);
    expect(several.stderr).toContain("s.t is in several databases of the backup (a.duckdb, b.duckdb); choose one with --only");

    const r = await run(["restore", first.slice(0, 8), "--table", "s.t", "--into", a, "--only", "a.duckdb"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`restored  table s.t (3000 rows) from a.duckdb of snapshot ${first.slice(0, 8)} into ${a}`);
    expect(await query(a, "SELECT count(*), sum(id) FROM s.t")).toEqual([[3000n, 4498500n]]);
    expect(await query(a, "SELECT x FROM keep_me")).toEqual([[1]]);
    // The table's definition came too: the primary key and the default hold.
    await expect(runSql(a, ["INSERT INTO s.t(id) VALUES (1)"])).rejects.toThrow(/primary key|duplicate/i);

    const refused = await run(["restore", "latest", "--table", "s.t", "--into", a, "--only", "a.duckdb"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("table s.t already exists (use --replace");
    const replaced = await run(["restore", "latest", "--table", "s.t", "--into", a, "--only", "a.duckdb", "--replace", "--json"]);
    expect(replaced.code).toBe(0);
    const j = JSON.parse(replaced.stdout);
    expect(j).toMatchObject({ ok: true, command: "restore", repository: repo, database: "a.duckdb", into: a, schema: "s", table: "t", rows: 1000, replaced: true });
    expect(j.snapshot).toMatch(/^[0-9a-f]{64}$/);
    expect(await query(a, "SELECT count(*) FROM s.t")).toEqual([[1000n]]);
    // A table only one database has needs no --only.
    await runSql(b, ["DROP TABLE only_b"]);
    expect((await run(["restore", "latest", "--table", "only_b", "--into", b])).code).toBe(0);
    expect(await query(b, "SELECT x FROM only_b")).toEqual([[42]]);
    expect(readdirSync(tmp)).toEqual([]);
    expect(readdirSync(join(repo, "locks"))).toEqual([]);
  });

  test("a snapshot of a database with a pending WAL: sql and restore --table see the WAL's rows", async () => {
    const wal = join(dir, "wal.duckdb");
    await sh([process.execPath, WRITER, "leave-wal", wal]);
    expect(existsSync(`${wal}.wal`)).toBe(true);
    expect((await run(["backup", wal])).code).toBe(0);
    const j = JSON.parse((await run(["sql", "latest", "--only", "wal.duckdb", "SELECT count(*) AS n, max(x) AS m FROM t", "--json"])).stdout);
    expect(j.rows).toEqual([{ n: "15", m: "104" }]);
    const live = join(dir, "live.duckdb");
    await runSql(live, ["CREATE TABLE other AS SELECT 1 AS x"]);
    const r = await run(["restore", "latest", "--table", "t", "--into", live]);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(await query(live, "SELECT count(*), max(x) FROM t")).toEqual([[15n, 104n]]);
    expect(readdirSync(tmp)).toEqual([]);
  });

  test("the archive path's errors and exit codes: usage 2, unknown table or snapshot 10, wrong password 6, damaged pack 4 with nothing changed", async () => {
    expect((await run(["restore", "latest", "--table", "s.t"])).code).toBe(2);
    expect((await run(["restore", "latest", "--table", "s.t", "--into", a, "--restore-dir", tmp])).code).toBe(2);
    const unknown = await run(["restore", "latest", "--table", "nope", "--into", a]);
    expect(unknown.code).toBe(10);
    expect(unknown.stderr).toContain("no table main.nope");
    expect((await run(["restore", "ffff0000", "--table", "s.t", "--into", a])).code).toBe(10);
    const wrong = await run(["restore", "latest", "--table", "only_a", "--into", a], { DUCKBAK_PASSWORD: "wrong" });
    expect(wrong.code).toBe(6);

    // Every pack damaged: the table's blobs are in one of them.
    await runSql(a, ["DROP TABLE only_a"]);
    for (const f of walk(repo).filter((f) => f.startsWith("data/"))) {
      const bytes = readFileSync(join(repo, f));
      bytes[10] ^= 0xff;
      writeFileSync(join(repo, f), bytes);
    }
    const damaged = await run(["restore", first.slice(0, 8), "--table", "only_a", "--into", a]);
    expect(damaged.code).toBe(4);
    expect(damaged.stderr).toMatch(/^duckbak: error: \S+repo: snapshot [0-9a-f]{8} a\.duckdb: pack data\/\S+: blob [0-9a-f]{12}…: authentication failed .*; not extracted\n$/);
    expect(await query(a, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'only_a'")).toEqual([[0n]]);
    expect((await run(["sql", "latest", "SELECT 1"])).code).toBe(4);
    expect(readdirSync(tmp)).toEqual([]);
  });
});
