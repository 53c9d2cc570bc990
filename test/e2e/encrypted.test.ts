// Encrypted databases (DuckDB 1.4+ ATTACH ... ENCRYPTION_KEY): backed up, verified, restored,
// exported, compared and browsed (ls, sql, restore --table, from archives and snapshots) with keys
// from duckbak.toml or --encryption-key-file; the key appears in
// no output, log, manifest or error.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { killAtPause, query, runBinary, runSql, sha256File, tempDir, type RunResult } from "../helpers.ts";

const KEY = "k3y-Zq9Wv-not-in-any-output";
const DBS = `databases = ["data/vault.duckdb", "data/plain.duckdb"]\n`;

/** Writes an encrypted database. The embedded DuckDB writes encryption only with mbedtls forced (httpfs is not loaded). */
async function createEncrypted(path: string, key: string, statements: string[]): Promise<void> {
  const instance = await DuckDBInstance.create(":memory:");
  const con = await instance.connect();
  try {
    await con.run("SET force_mbedtls_unsafe = true");
    await con.run(`ATTACH '${path}' AS e (ENCRYPTION_KEY '${key}')`);
    await con.run("USE e");
    for (const s of statements) await con.run(s);
    await con.run("USE memory");
    await con.run("DETACH e");
  } finally {
    con.closeSync();
    instance.closeSync();
  }
}

/** Adds rows to an encrypted database that stay in its WAL (no checkpoint at close), as after a crash. */
async function appendToWal(path: string, key: string, statement: string): Promise<void> {
  const instance = await DuckDBInstance.create(":memory:");
  const con = await instance.connect();
  try {
    await con.run("SET force_mbedtls_unsafe = true");
    await con.run("PRAGMA disable_checkpoint_on_shutdown");
    await con.run(`ATTACH '${path}' AS e (ENCRYPTION_KEY '${key}')`);
    await con.run("USE e");
    await con.run(statement);
  } finally {
    con.closeSync();
    instance.closeSync();
  }
  expect(existsSync(`${path}.wal`)).toBe(true);
}

async function readEncrypted(path: string, key: string, sql: string): Promise<unknown[][]> {
  const instance = await DuckDBInstance.create(":memory:");
  const con = await instance.connect();
  try {
    await con.run(`ATTACH '${path}' AS e (ENCRYPTION_KEY '${key}', READ_ONLY)`);
    await con.run("USE e");
    return (await con.runAndReadAll(sql)).getRows();
  } finally {
    con.closeSync();
    instance.closeSync();
  }
}

const STATEMENTS = [
  "CREATE TABLE orders AS SELECT range AS id, range * 1.5 AS amount FROM range(5000)",
  "CREATE SCHEMA hr",
  "CREATE TABLE hr.staff (id INTEGER PRIMARY KEY, name VARCHAR)",
  "INSERT INTO hr.staff VALUES (1, 'Ann'), (2, 'Bob')",
];

async function setup() {
  const dir = tempDir();
  const data = join(dir, "data");
  const db = join(data, "vault.duckdb");
  await Bun.$`mkdir -p ${data}`;
  await createEncrypted(db, KEY, STATEMENTS);
  await runSql(join(data, "plain.duckdb"), ["CREATE TABLE t AS SELECT 1 AS x"]);
  writeFileSync(join(dir, "vault.key"), KEY + "\n", { mode: 0o600 });
  const outputs: RunResult[] = [];
  const run = async (args: string[]) => {
    const r = await runBinary(args, { cwd: dir });
    outputs.push(r);
    return r;
  };
  return { dir, data, db, run, outputs };
}

/** Every byte duckbak wrote that a user could read: outputs, the log, the manifests in the archives. */
function assertKeyNowhere(dir: string, outputs: RunResult[]): void {
  for (const o of outputs) expect(o.stdout + o.stderr).not.toContain(KEY);
  const walk = (d: string): string[] =>
    readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));
  for (const f of walk(dir)) {
    if (f.endsWith(".key")) continue;
    expect(readFileSync(f).includes(Buffer.from(KEY))).toBe(false);
  }
}

describe("encrypted databases", () => {
  test("without a key: that database fails with a clear message, the others are backed up (exit 3)", async () => {
    const { run, dir, outputs } = await setup();
    const r = await run(["backup", "--name", "nokey"]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("vault.duckdb: the database is encrypted and no key is configured");
    expect(r.stderr).toContain("encryption_key_file");
    assertKeyNowhere(dir, outputs);
  });

  test("key from duckbak.toml: backup, verify, restore byte-identical, export, diff; the key is printed nowhere", async () => {
    const { run, dir, db, outputs } = await setup();
    writeFileSync(join(dir, "duckbak.toml"), `${DBS}[[database]]\npath = "data/vault.duckdb"\nencryption_key_file = "vault.key"\n`);
    const b = await run(["backup", "--name", "b1", "--json"]);
    expect(b.code).toBe(0);
    const manifest = JSON.parse(b.stdout).manifest;
    const vault = manifest.databases.find((d: { name: string }) => d.name === "vault.duckdb");
    expect(vault.duckdb.encrypted).toBe(true);
    expect(vault.tables).toEqual([
      { schema: "hr", name: "staff", rows: 2 },
      { schema: "main", name: "orders", rows: 5000 },
    ]);

    const v = await run(["verify", "b1"]);
    expect(v.code).toBe(0);
    expect(v.stdout).toContain("vault.duckdb: checksums, blocks, opened and read 2 tables (5002 rows)");

    const restoreDir = join(dir, "restored");
    const rs = await run(["restore", "b1", "--restore-dir", restoreDir]);
    expect(rs.code).toBe(0);
    expect(sha256File(join(restoreDir, "vault.duckdb"))).toBe(sha256File(db));
    expect(await readEncrypted(join(restoreDir, "vault.duckdb"), KEY, "SELECT count(*), sum(amount)::VARCHAR FROM orders")).toEqual([[5000n, "18746250.0"]]);

    const e = await run(["export", "data/vault.duckdb", "--out", "exp"]);
    expect(e.code).toBe(0);
    expect(e.stdout).toContain("main.orders  5,000 rows");

    const d = await run(["diff", "b1"]);
    expect(d.code).toBe(0);
    expect(d.stdout).toContain("No differences.");

    // Without the config, verify cannot open it: a failed open check that says why.
    const noKey = await runBinary(["verify", "b1", "--backup-dir", join(dir, "data/backups")], { cwd: restoreDir });
    outputs.push(noKey);
    expect(noKey.code).toBe(4);
    expect(noKey.stderr).toContain("the database is encrypted and no key is configured");
    assertKeyNowhere(dir, outputs);
  });

  test("--encryption-key-file and encryption_key_command; a wrong key is one clear line", async () => {
    const { run, dir, outputs } = await setup();
    const viaFlag = await run(["backup", "--name", "flag", "--encryption-key-file", "vault.key"]);
    expect(viaFlag.code).toBe(0);
    expect(viaFlag.stdout).toContain("vault.duckdb");

    writeFileSync(join(dir, "duckbak.toml"), `${DBS}[[database]]\npath = "data/vault.duckdb"\nencryption_key_command = "cat vault.key"\n`);
    expect((await run(["backup", "--name", "cmd"])).code).toBe(0);
    expect((await run(["verify", "cmd"])).code).toBe(0);

    writeFileSync(join(dir, "wrong.key"), "not-the-key");
    writeFileSync(join(dir, "duckbak.toml"), `${DBS}[[database]]\npath = "data/vault.duckdb"\nencryption_key_file = "wrong.key"\n`);
    const wrong = await run(["backup", "--name", "wrong"]);
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toMatch(/vault\.duckdb: .*[Ww]rong encryption key/);
    expect(wrong.stderr).not.toContain("not-the-key");

    writeFileSync(join(dir, "duckbak.toml"), `${DBS}[[database]]\npath = "data/vault.duckdb"\nencryption_key_command = "echo oops >&2; exit 3"\n`);
    const failing = await run(["backup", "--name", "failing"]);
    expect(failing.code).toBe(3);
    expect(failing.stderr).toContain("encryption_key_command failed (exit code 3)");
    expect(failing.stderr).not.toContain("oops");
    assertKeyNowhere(dir, outputs);
  });

  test("between hooks: the copy's rows are read with the key after the after hook; a wrong key fails that database in one clear line", async () => {
    const { run, dir, outputs } = await setup();
    const hooked = (keyFile: string) =>
      `${DBS}[[database]]\npath = "data/vault.duckdb"\nencryption_key_file = "${keyFile}"\nbefore_backup = "true"\nafter_backup = "true"\n`;
    writeFileSync(join(dir, "duckbak.toml"), hooked("vault.key"));
    const b = await run(["backup", "--name", "h1", "--json"]);
    expect(b.code).toBe(0);
    const vault = JSON.parse(b.stdout).manifest.databases.find((d: { name: string }) => d.name === "vault.duckdb");
    expect(vault).toMatchObject({ consistency: "read-lock", duckdb: { encrypted: true } });
    expect(vault.tables).toEqual([
      { schema: "hr", name: "staff", rows: 2 },
      { schema: "main", name: "orders", rows: 5000 },
    ]);

    writeFileSync(join(dir, "wrong.key"), "not-the-key");
    writeFileSync(join(dir, "duckbak.toml"), hooked("wrong.key"));
    const wrong = await run(["backup", "--name", "h2"]);
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toMatch(/vault\.duckdb: .*[Ww]rong encryption key/);
    expect(wrong.stderr).toContain(`${join(dir, "data/vault.duckdb")}: `); // the database, not its private copy
    expect(wrong.stderr).not.toContain("not-the-key");
    assertKeyNowhere(dir, outputs);
  });

  test("daily into a repository: the encrypted database is snapshotted with its key and restores", async () => {
    const { dir, db, outputs } = await setup();
    const env = { ...process.env, NO_COLOR: "1", DUCKBAK_PASSWORD: "repo-pw" } as Record<string, string>;
    const run = async (args: string[]) => {
      const r = await runBinary(args, { cwd: dir, env });
      outputs.push(r);
      return r;
    };
    writeFileSync(join(dir, "duckbak.toml"), `${DBS}repository = "repo"\n[retention]\nkeep_last = 3\n[[database]]\npath = "data/vault.duckdb"\nencryption_key_file = "vault.key"\n`);
    expect((await run(["init", "--repo", join(dir, "repo")])).code).toBe(0);
    const daily = await run(["daily"]);
    expect([daily.code, daily.stderr]).toEqual([0, ""]);
    const restoreDir = join(dir, "restored");
    expect((await run(["restore", "latest", "--restore-dir", restoreDir])).code).toBe(0);
    expect(sha256File(join(restoreDir, "vault.duckdb"))).toBe(sha256File(db));
    assertKeyNowhere(dir, outputs);
  });
});

describe("browsing a backup of an encrypted database (ls, sql, restore --table)", () => {
  /** A folder without duckbak.toml: only --encryption-key-file can give the key there. */
  async function elsewhere(dir: string, outputs: RunResult[], env?: Record<string, string>) {
    const cwd = join(dir, "elsewhere");
    await Bun.$`mkdir -p ${cwd}`;
    return async (args: string[]) => {
      const r = await runBinary(args, { cwd, env });
      outputs.push(r);
      return r;
    };
  }
  const oneLine = (r: RunResult) => expect(r.stderr.trim().split("\n")).toHaveLength(1);

  test("an archive: with the key from the config or the flag; missing and wrong keys are one line, exit 1, nothing changed", async () => {
    const { run, dir, data, outputs } = await setup();
    writeFileSync(join(dir, "duckbak.toml"), `${DBS}[[database]]\npath = "data/vault.duckdb"\nencryption_key_command = "cat vault.key"\n`);
    expect((await run(["backup", "--name", "b1"])).code).toBe(0);

    const ls = await run(["ls", "b1"]);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/vault\.duckdb .*\n.*\n {2}DuckDB v[\d.]+ \(storage \d+, encrypted\)/);
    expect(ls.stdout).not.toMatch(/plain\.duckdb .*\n.*\n.*encrypted/);

    const q = await run(["sql", "b1", "SELECT count(*) AS n, sum(amount)::VARCHAR AS total FROM vault.main.orders", "--json"]);
    expect([q.code, q.stderr]).toEqual([0, ""]);
    expect(JSON.parse(q.stdout).rows).toEqual([{ n: "5000", total: "18746250.0" }]);
    // What DuckDB says about the attached copies does not include the key.
    const dbs = await run(["sql", "b1", "--only", "vault.duckdb", "SELECT * FROM duckdb_databases()", "--json"]);
    expect(dbs.code).toBe(0);
    expect(JSON.parse(dbs.stdout).rows.find((d: { database_name: string }) => d.database_name === "vault")).toMatchObject({ encrypted: true, readonly: true });

    const plain = join(data, "plain.duckdb");
    const t = await run(["restore", "b1", "--table", "hr.staff", "--into", plain, "--json"]);
    expect([t.code, t.stderr]).toEqual([0, ""]);
    expect(JSON.parse(t.stdout)).toMatchObject({ database: "vault.duckdb", schema: "hr", table: "staff", rows: 2 });
    expect(await query(plain, "SELECT id, name FROM hr.staff ORDER BY id")).toEqual([[1, "Ann"], [2, "Bob"]]);

    // Elsewhere, without the config: the flag gives the key; without it, or with a wrong one, one line and exit 1.
    // Its own TMPDIR: where the private copies go, to check that no message names them and none is left.
    const tmp = join(dir, "tmp");
    await Bun.$`mkdir -p ${tmp}`;
    const other = await elsewhere(dir, outputs, { ...process.env, NO_COLOR: "1", TMPDIR: tmp } as Record<string, string>);
    const backups = ["--backup-dir", join(data, "backups")];
    const withFlag = await other(["sql", "b1", ...backups, "--only", "vault", "SELECT count(*) AS n FROM hr.staff", "--encryption-key-file", join(dir, "vault.key"), "--json"]);
    expect([withFlag.code, withFlag.stderr]).toEqual([0, ""]);
    expect(JSON.parse(withFlag.stdout).rows).toEqual([{ n: "2" }]);

    const before = sha256File(plain);
    const into = ["--table", "main.orders", "--into", plain];
    writeFileSync(join(dir, "wrong.key"), "not-the-key");
    for (const args of [["sql", "b1", ...backups, "SELECT 1"], ["restore", "b1", ...backups, ...into]]) {
      const missing = await other(args);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain(`${join(data, "vault.duckdb")}: the database is encrypted and no key is configured`);
      if (args[0] === "sql") expect(missing.stderr).toContain("; --only plain.duckdb queries the others without it");
      oneLine(missing);
      const wrong = await other([...args, "--encryption-key-file", join(dir, "wrong.key")]);
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toMatch(/vault\.duckdb: .*Wrong encryption key.*, for its copy in b1 /);
      expect(wrong.stderr).not.toContain("not-the-key");
      expect(wrong.stderr).not.toContain(tmp); // names the database, not its private copy
      oneLine(wrong);
      const json = await other([...args, "--encryption-key-file", join(dir, "wrong.key"), "--json"]);
      expect(json.code).toBe(1);
      expect(JSON.parse(json.stdout).error.message).toMatch(/Wrong encryption key/);
    }
    expect(sha256File(plain)).toBe(before);
    const onlyPlain = await other(["sql", "b1", ...backups, "--only", "plain.duckdb", "SELECT x FROM t", "--json"]);
    expect([onlyPlain.code, JSON.parse(onlyPlain.stdout).rows]).toEqual([0, [{ x: 1 }]]);
    expect(readdirSync(tmp)).toEqual([]);

    // Whole-database restore with a wrong key: the same exit code and line (the archive is sound).
    const restoreDir = join(dir, "restored");
    const wrongRestore = await other(["restore", "b1", ...backups, "--only", "vault.duckdb", "--restore-dir", restoreDir, "--encryption-key-file", join(dir, "wrong.key")]);
    expect(wrongRestore.code).toBe(1);
    expect(wrongRestore.stderr).toMatch(/vault\.duckdb: .*Wrong encryption key.*; nothing was restored$/m);
    oneLine(wrongRestore);
    expect(readdirSync(restoreDir)).toEqual([]);
    assertKeyNowhere(dir, outputs);
  });

  test("restore --table (and import --append) into an encrypted database are refused before anything is extracted, the database unchanged", async () => {
    const { run, dir, db, outputs } = await setup();
    writeFileSync(join(dir, "duckbak.toml"), `${DBS}[[database]]\npath = "data/vault.duckdb"\nencryption_key_file = "vault.key"\n`);
    expect((await run(["backup", "--name", "b1"])).code).toBe(0);
    const before = sha256File(db);
    const r = await run(["restore", "b1", "--table", "hr.staff", "--into", db, "--replace"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${db}: the database is encrypted, and duckbak reads encrypted databases but does not write them`);
    expect(r.stderr).toContain("table hr.staff not restored");
    oneLine(r);
    expect(r.stdout).toBe("");
    expect((await run(["export", "data/plain.duckdb", "--out", "exp"])).code).toBe(0);
    const imp = await run(["import", "exp", "--into", db, "--append"]);
    expect(imp.code).toBe(1);
    expect(imp.stderr).toContain(`${db}: the database is encrypted, and duckbak reads encrypted databases but does not write them`);
    oneLine(imp);
    expect(sha256File(db)).toBe(before);
    assertKeyNowhere(dir, outputs);
  });

  test("a repository snapshot: ls, sql and restore --table with the key; missing and wrong keys exit 1; no private copy is left", async () => {
    const { dir, data, outputs } = await setup();
    const tmp = join(dir, "tmp");
    await Bun.$`mkdir -p ${tmp}`;
    const env = { ...process.env, NO_COLOR: "1", TMPDIR: tmp, DUCKBAK_PASSWORD: "repo-pw" } as Record<string, string>;
    const repo = join(dir, "repo");
    const run = async (args: string[]) => {
      const r = await runBinary([...args, "--repo", repo], { cwd: dir, env });
      outputs.push(r);
      return r;
    };
    writeFileSync(join(dir, "duckbak.toml"), `${DBS}[[database]]\npath = "data/vault.duckdb"\nencryption_key_file = "vault.key"\n`);
    expect((await run(["init"])).code).toBe(0);
    expect((await run(["backup"])).code).toBe(0);

    const ls = await run(["ls", "latest", "--json"]);
    expect(ls.code).toBe(0);
    expect(JSON.parse(ls.stdout).databases.find((d: { name: string }) => d.name === "vault.duckdb").duckdb.encrypted).toBe(true);

    const q = await run(["sql", "latest", "--only", "vault.duckdb", "SELECT count(*) AS n, max(id) AS top FROM orders", "--json"]);
    expect([q.code, q.stderr]).toEqual([0, ""]);
    expect(JSON.parse(q.stdout).rows).toEqual([{ n: "5000", top: "4999" }]);

    const plain = join(data, "plain.duckdb");
    const t = await run(["restore", "latest", "--table", "orders", "--into", plain]);
    expect([t.code, t.stderr]).toEqual([0, ""]);
    expect(t.stdout).toContain("restored  table main.orders (5000 rows) from vault.duckdb of snapshot");
    expect(await query(plain, "SELECT count(*), sum(amount)::VARCHAR FROM orders")).toEqual([[5000n, "18746250.0"]]);

    const other = await elsewhere(dir, outputs, env);
    writeFileSync(join(dir, "wrong.key"), "not-the-key");
    const before = sha256File(plain);
    for (const args of [["sql", "latest", "SELECT 1"], ["restore", "latest", "--table", "hr.staff", "--into", plain]]) {
      const missing = await other([...args, "--repo", repo]);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain(`${join(data, "vault.duckdb")}: the database is encrypted and no key is configured`);
      oneLine(missing);
      const wrong = await other([...args, "--repo", repo, "--encryption-key-file", join(dir, "wrong.key")]);
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toMatch(/vault\.duckdb: .*Wrong encryption key.*, for its copy in snapshot [0-9a-f]{8} /);
      oneLine(wrong);
      const right = await other([...args, "--repo", repo, "--encryption-key-file", join(dir, "vault.key")]);
      expect([right.code, right.stderr]).toEqual([0, ""]);
    }
    expect(await query(plain, "SELECT count(*) FROM hr.staff")).toEqual([[2n]]);
    expect(sha256File(plain)).not.toBe(before);
    // The whole database from the snapshot: a wrong key is the same line and exit code as for an archive.
    const restoreDir = join(dir, "restored");
    const wholeWrong = await other(["restore", "latest", "--repo", repo, "--only", "vault.duckdb", "--restore-dir", restoreDir, "--encryption-key-file", join(dir, "wrong.key")]);
    expect(wholeWrong.code).toBe(1);
    expect(wholeWrong.stderr).toMatch(/vault\.duckdb: .*Wrong encryption key.*; nothing was restored$/m);
    oneLine(wholeWrong);
    expect(readdirSync(restoreDir)).toEqual([]);
    // The snapshot's files were extracted into private folders under TMPDIR, all removed, failures included.
    expect(readdirSync(tmp)).toEqual([]);
    assertKeyNowhere(dir, outputs);
  });
});

describe("an encrypted database with a pending WAL", () => {
  test("sql and restore --table read it with its WAL; a whole restore puts the WAL beside it (it cannot be folded in without writing encryption); restoring over a live encrypted database with a WAL of its own is refused with nothing changed", async () => {
    const { run, dir, data, db, outputs } = await setup();
    writeFileSync(join(dir, "duckbak.toml"), `${DBS}[[database]]\npath = "data/vault.duckdb"\nencryption_key_file = "vault.key"\n`);
    // Backed up without a WAL; then the live database gets one: restoring over it must fold that WAL first.
    expect((await run(["backup", "--name", "clean"])).code).toBe(0);
    await appendToWal(db, KEY, "INSERT INTO orders SELECT range + 5000, 0 FROM range(7)");
    const live = [sha256File(db), sha256File(`${db}.wal`)];
    const over = await run(["restore", "clean", "--only", "vault.duckdb"]);
    expect(over.code).toBe(1);
    expect(over.stderr).toContain(`${db}: has a pending WAL that duckbak cannot fold into it: the database is encrypted`);
    expect(over.stderr).toContain("not replaced");
    expect(over.stderr.trim().split("\n")).toHaveLength(1);
    expect([sha256File(db), sha256File(`${db}.wal`)]).toEqual(live);

    // A backup that holds the WAL: read through it, and restored as the database and its WAL.
    const b = await run(["backup", "--name", "walled", "--json"]);
    expect(b.code).toBe(0);
    const vault = JSON.parse(b.stdout).manifest.databases.find((d: { name: string }) => d.name === "vault.duckdb");
    expect(vault.files.map((f: { role: string }) => f.role)).toEqual(["main", "wal"]);
    const q = await run(["sql", "walled", "--only", "vault", "SELECT count(*) AS n FROM orders", "--json"]);
    expect([q.code, q.stderr]).toEqual([0, ""]);
    expect(JSON.parse(q.stdout).rows).toEqual([{ n: "5007" }]);
    const plain = join(data, "plain.duckdb");
    expect((await run(["restore", "walled", "--table", "orders", "--into", plain])).code).toBe(0);
    expect(await query(plain, "SELECT count(*) FROM orders")).toEqual([[5007n]]);

    const restoreDir = join(dir, "restored");
    const r = await run(["restore", "walled", "--only", "vault.duckdb", "--restore-dir", restoreDir, "--json"]);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    const target = join(restoreDir, "vault.duckdb");
    const restored = JSON.parse(r.stdout).databases[0];
    expect([restored.files, restored.folded_from_backup]).toEqual([[target, `${target}.wal`], []]);
    expect(readdirSync(restoreDir).sort()).toEqual(["vault.duckdb", "vault.duckdb.wal"]);
    // Byte-identical to what was backed up, and DuckDB replays the WAL on open: the 7 rows are there.
    expect([sha256File(target), sha256File(`${target}.wal`)]).toEqual(live);
    expect(await readEncrypted(target, KEY, "SELECT count(*) FROM orders")).toEqual([[5007n]]);

    // The same from a repository snapshot.
    const env = { ...process.env, NO_COLOR: "1", DUCKBAK_PASSWORD: "repo-pw" } as Record<string, string>;
    const repoRun = async (args: string[]) => {
      const x = await runBinary([...args, "--repo", join(dir, "repo")], { cwd: dir, env });
      outputs.push(x);
      return x;
    };
    expect((await repoRun(["init"])).code).toBe(0);
    expect((await repoRun(["backup"])).code).toBe(0);
    const fromRepo = join(dir, "from-repo");
    const rr = await repoRun(["restore", "latest", "--only", "vault.duckdb", "--restore-dir", fromRepo]);
    expect([rr.code, rr.stderr]).toEqual([0, ""]);
    expect(readdirSync(fromRepo).sort()).toEqual(["vault.duckdb", "vault.duckdb.wal"]);
    expect(await readEncrypted(join(fromRepo, "vault.duckdb"), KEY, "SELECT count(*) FROM orders")).toEqual([[5007n]]);

    // Killed between the database's rename and its WAL's: the backup's last checkpoint, consistent;
    // running restore again completes it.
    const killed = join(dir, "killed");
    await killAtPause(["restore", "walled", "--only", "vault.duckdb", "--restore-dir", killed], "restore:renamed", { cwd: dir });
    expect(readdirSync(killed).filter((n) => !n.startsWith(".duckbak-tmp"))).toEqual(["vault.duckdb"]);
    expect(await readEncrypted(join(killed, "vault.duckdb"), KEY, "SELECT count(*) FROM orders")).toEqual([[5000n]]);
    expect((await run(["restore", "walled", "--only", "vault.duckdb", "--restore-dir", killed])).code).toBe(0);
    expect(await readEncrypted(join(killed, "vault.duckdb"), KEY, "SELECT count(*) FROM orders")).toEqual([[5007n]]);
    assertKeyNowhere(dir, outputs);
  });
});
