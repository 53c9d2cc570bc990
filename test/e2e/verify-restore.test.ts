// verify must catch every damaged backup; restore must never damage what is there.
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync, copyFileSync, truncateSync } from "node:fs";
import { join } from "node:path";
import { hostname } from "node:os";
import { createSampleDatabases, query, runBinary, runSql, sh, startWriter, tempDir, WRITER, sha256File } from "../helpers.ts";
import { forgeArchive } from "../forge.ts";
import { verifyBackup } from "../../src/core/verify.ts";
import { restoreBackup } from "../../src/core/restore.ts";
import { resolveBackupRef } from "../../src/core/list.ts";
import { CorruptArchiveError } from "../../src/core/errors.ts";

const codecs = [
  { codec: "gzip", flags: [], ext: ".tar.gz" },
  { codec: "zstd", flags: ["--compression", "zstd"], ext: ".tar.zst" },
  { codec: "none", flags: ["--no-compress"], ext: ".tar" },
] as const;

/** Sample databases and one backup of them per codec, in a fresh folder. */
async function fixture(trades = 3000) {
  const dir = tempDir();
  const dbs = await createSampleDatabases(join(dir, "data"), { trades });
  const bk = join(dir, "data/backups");
  for (const c of codecs) expect((await runBinary(["backup", ...c.flags, "--name", `b_${c.codec}`], { cwd: dir })).code).toBe(0);
  return { dir, dbs, bk, archive: (codec: string) => join(bk, `b_${codec}${codecs.find((c) => c.codec === codec)!.ext}`) };
}

function flipBit(src: string, dst: string, offset: number, bit: number): void {
  const b = readFileSync(src);
  b[offset] = b[offset]! ^ (1 << bit);
  writeFileSync(dst, b);
}

function prng(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 2 ** 32;
  };
}

describe("verify", () => {
  test("healthy backups of every codec verify, with every check reported (exit 0)", async () => {
    const f = await fixture();
    for (const c of codecs) {
      const r = await runBinary(["verify", `b_${c.codec}`], { cwd: f.dir });
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("OK      results.duckdb: checksums, blocks, opened and read 3 tables (3370 rows)");
      expect(r.stdout).toContain(`Backup b_${c.codec} is OK.`);
    }
    const json = JSON.parse((await runBinary(["verify", "b_gzip", "--json"], { cwd: f.dir })).stdout);
    expect(json.databases.map((d: any) => d.checks)).toEqual(Array(3).fill({ checksum: "ok", blocks: "ok", open: "ok" }));
  });

  test("a single flipped bit anywhere in an archive fails verification, for every codec", async () => {
    const f = await fixture(1000);
    const work = tempDir();
    const rand = prng(42);
    let checked = 0;
    for (const c of codecs) {
      const src = f.archive(c.codec);
      const size = readFileSync(src).length;
      // The head (framing, manifest), the end (trailer, end-of-archive) and random places between.
      const offsets = [0, 1, 3, 4, 8, 9, 10, 200, 600, size - 1, size - 8, size - 100, size - 1100, size - 2100];
      for (let i = 0; i < 40; i++) offsets.push(Math.floor(rand() * size));
      for (const [i, off] of offsets.entries()) {
        const dst = join(work, `flip-${c.codec}-${i}${c.ext}`);
        flipBit(src, dst, off, i % 8);
        const r = await verifyBackup(resolveBackupRef(dst, f.bk), { quick: true });
        if (r.ok) throw new Error(`${c.codec}: flipping bit ${i % 8} at offset ${off} of ${size} went unnoticed`);
        checked++;
      }
    }
    expect(checked).toBe(3 * 54);
  });

  test("truncated archives fail verification (exit 4) naming the archive", async () => {
    const f = await fixture(1000);
    for (const c of codecs) {
      const size = readFileSync(f.archive(c.codec)).length;
      for (const at of [0, 100, 5000, Math.floor(size / 2), size - 2000, size - 1]) {
        const dst = join(f.dir, `cut${c.ext}`);
        copyFileSync(f.archive(c.codec), dst);
        truncateSync(dst, at);
        const r = await runBinary(["verify", dst]);
        expect(r.code).toBe(4);
        expect(r.stderr).toContain(dst);
        expect(r.stderr).toContain("FAILED verification");
      }
    }
  });

  test("a consistent archive whose manifest lies about checksums or row counts fails; so does an entry swapped in from another backup", async () => {
    const f = await fixture(1000);
    const manifest = JSON.parse(await sh(["tar", "-xzOf", f.archive("gzip"), "backup_metadata.json"]));
    const out = join(f.dir, "x");
    mkdirSync(out);
    await sh(["tar", "-xzf", f.archive("gzip"), "-C", out]);
    const entries = manifest.databases.map((d: any) => ({ name: d.entry, data: readFileSync(join(out, d.entry)) }));

    const forge = async (name: string, m: any, e = entries) => {
      const path = join(f.dir, `${name}.tar.gz`);
      writeFileSync(path, forgeArchive("gzip", m, e));
      return verifyBackup(resolveBackupRef(path, f.bk));
    };
    // Control: the forger itself produces archives that verify.
    expect((await forge("control", manifest)).ok).toBe(true);

    const rows = structuredClone(manifest);
    rows.databases[0].tables[0].rows += 1;
    const r1 = await forge("rows", rows);
    expect(r1.ok).toBe(false);
    expect(r1.databases[0]!.problems.join()).toContain(`has ${rows.databases[0].tables[0].rows - 1} rows, the manifest says ${rows.databases[0].tables[0].rows}`);
    expect(r1.databases[0]!.checks.open).toBe("failed");

    const sum = structuredClone(manifest);
    sum.databases[1].files[0].sha256 = "f".repeat(64);
    const r2 = await forge("sum", sum);
    expect(r2.ok).toBe(false);
    expect(r2.databases[1]!.checks.checksum).toBe("failed");

    // results.duckdb from another backup, taken after a change, under this backup's manifest.
    await runSql(f.dbs[0]!, ["INSERT INTO portfolio_equity SELECT DATE '2030-01-01' + range::INTEGER, 1.0 FROM range(100000)"]);
    const swapped = entries.map((e: any) => (e.name === "results.duckdb" ? { ...e, data: readFileSync(f.dbs[0]!) } : e));
    const r3 = await forge("swap", manifest, swapped);
    expect(r3.ok).toBe(false);
    expect(r3.problems[0]).toContain("entry 'results.duckdb' is");

    // Same size, other content: only its own checksum can tell, and only its database fails.
    const altered = entries.map((e: any) => {
      if (e.name !== "results.duckdb") return e;
      const data = Uint8Array.from(e.data);
      data[data.length - 100] ^= 1;
      return { ...e, data };
    });
    const r4 = await forge("altered", manifest, altered);
    expect(r4.ok).toBe(false);
    expect(r4.databases.find((d) => d.name === "results.duckdb")!.problems[0]).toContain("differs from the manifest");
    expect(r4.databases.find((d) => d.name === "tca.duckdb")!.ok).toBe(true);
  });

  test("a DuckDB block damaged before the backup was taken is found, at its offset", async () => {
    const dir = tempDir();
    const db = join(dir, "damaged.duckdb");
    await runSql(db, ["CREATE TABLE t AS SELECT range AS id, md5(range::VARCHAR) AS s FROM range(200000)"]);
    const bytes = readFileSync(db);
    const blockSize = 262144;
    const offset = 12288 + 2 * blockSize + 5000; // inside block 2: table data that count(*) does not read
    bytes[offset] = bytes[offset]! ^ 0x10;
    writeFileSync(db, bytes);
    // Backed up anyway, flagged (exit 7: see source-damage.test.ts).
    expect((await runBinary(["backup", db, "--backup-dir", join(dir, "bk"), "--name", "b"])).code).toBe(7);
    const r = await runBinary(["verify", "b", "--backup-dir", join(dir, "bk")]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(`damaged.duckdb: 1 block(s) fail DuckDB's checksum at offset ${12288 + 2 * blockSize}`);
    // --quick only checks the archive, which faithfully holds the damaged file.
    expect((await runBinary(["verify", "b", "--quick", "--backup-dir", join(dir, "bk")])).code).toBe(0);
  });

  test("verify leaves no temporary files behind", async () => {
    const f = await fixture(1000);
    const tmp = tempDir();
    const r = await runBinary(["verify", "b_zstd"], { cwd: f.dir, env: { ...process.env, TMPDIR: tmp, NO_COLOR: "1" } });
    expect(r.code).toBe(0);
    expect(readdirSync(tmp)).toEqual([]);
  });
});

describe("restore", () => {
  test("restores to the original paths, keeping the current files as .bak.<timestamp>", async () => {
    const f = await fixture();
    const before = f.dbs.map(sha256File);
    await runSql(f.dbs[0]!, ["DELETE FROM portfolio_trades"]);
    const changed = sha256File(f.dbs[0]!);
    const r = await runBinary(["restore", "b_gzip", "--json"], { cwd: f.dir });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(f.dbs.map(sha256File)).toEqual(before);
    const bak = result.databases.find((d: any) => d.name === "results.duckdb").backups[0];
    expect(bak).toMatch(/results\.duckdb\.bak\.\d{8}_\d{6}$/);
    expect(sha256File(bak)).toBe(changed);
    expect(await query(f.dbs[0]!, "SELECT count(*) FROM portfolio_trades")).toEqual([[3000n]]);
    expect(readdirSync(join(f.dir, "data")).filter((n) => n.startsWith(".duckbak-tmp"))).toEqual([]);
  });

  test("damaged, truncated or forged archives are refused and the current database stays byte-for-byte unchanged", async () => {
    const f = await fixture(1000);
    const current = f.dbs.map(sha256File);
    const bad: string[] = [];
    for (const c of codecs) {
      const size = readFileSync(f.archive(c.codec)).length;
      for (const off of [5, Math.floor(size / 3), size - 3]) {
        const dst = join(f.dir, `flip${off}-${c.codec}${c.ext}`);
        flipBit(f.archive(c.codec), dst, off, 2);
        bad.push(dst);
      }
      const cut = join(f.dir, `cut-${c.codec}${c.ext}`);
      copyFileSync(f.archive(c.codec), cut);
      truncateSync(cut, Math.floor(size / 2));
      bad.push(cut);
    }
    for (const archive of bad) {
      for (const flags of [[], ["--no-verify"], ["--overwrite"]]) {
        const r = await runBinary(["restore", archive, ...flags], { cwd: f.dir });
        expect(r.code).toBe(4);
        expect(r.stderr).toContain("nothing was restored");
        expect(f.dbs.map(sha256File)).toEqual(current);
      }
    }
    expect(readdirSync(join(f.dir, "data")).filter((n) => !n.endsWith(".duckdb") && n !== "backups")).toEqual([]);
  });

  test("crafted archives with ../, absolute paths, symlinks and hard links write nothing anywhere", async () => {
    const dir = tempDir();
    const target = join(dir, "target");
    mkdirSync(target);
    const outside = join(dir, "outside.duckdb");
    const db = { name: "x.duckdb", original_path: join(target, "x.duckdb"), size_bytes: 4, entry: "x.duckdb", tables: [],
      files: [{ entry: "x.duckdb", role: "main", name: "x.duckdb", size_bytes: 4, sha256: "0".repeat(64) }],
      duckdb: { creator_version: "v1.5.6", storage_version: 64, block_alloc_size: 262144, reader_version: "v1.5.6" }, consistency: "read-lock" };
    const manifest = (entry: string) => ({ format: "duckbak-backup", format_version: 1, timestamp: "2024-01-15T12:00:00.000Z",
      duckbak_version: "0.1.0", host: "h", compression: "gzip", failed: [],
      databases: [{ ...db, entry, files: [{ ...db.files[0], entry }] }] });
    const data = new TextEncoder().encode("DUCK");
    const cases = [
      { name: "dotdot", entry: "../outside.duckdb", entries: [{ name: "../outside.duckdb", data }] },
      { name: "absolute", entry: outside, entries: [{ name: outside, data }] },
      { name: "symlink", entry: "x.duckdb", entries: [{ name: "x.duckdb", type: "2" as const, linkname: outside }] },
      { name: "hardlink", entry: "x.duckdb", entries: [{ name: "x.duckdb", type: "1" as const, linkname: outside }] },
      { name: "extra", entry: "x.duckdb", entries: [{ name: "x.duckdb", data }, { name: "evil.sh", data }] },
    ];
    for (const c of cases) {
      const archive = join(dir, `${c.name}.tar.gz`);
      writeFileSync(archive, forgeArchive("gzip", manifest(c.entry), c.entries));
      const v = await runBinary(["verify", archive]);
      expect(v.code).toBe(4);
      for (const flags of [["--restore-dir", target], ["--restore-dir", target, "--no-verify"], []]) {
        const r = await runBinary(["restore", archive, ...flags]);
        expect(r.code).toBe(4);
        expect(readdirSync(target)).toEqual([]);
        expect(existsSync(outside)).toBe(false);
      }
    }
    // An archive made by GNU tar with a ../ entry is not a duckbak archive at all.
    mkdirSync(join(dir, "src"));
    writeFileSync(join(dir, "src/backup_metadata.json"), "{}");
    await sh(["tar", "-czf", join(dir, "gnu.tar.gz"), "-C", join(dir, "src"), "backup_metadata.json", "../outside-gnu"], dir).catch(() => {});
    if (existsSync(join(dir, "gnu.tar.gz"))) expect((await runBinary(["restore", join(dir, "gnu.tar.gz"), "--restore-dir", target])).code).toBe(4);
    expect(readdirSync(target)).toEqual([]);
  });

  test("a database that a running writer holds is not restored over, naming the writer's PID", async () => {
    const f = await fixture(1000);
    const writer = await startWriter(f.dbs[2]!); // it adds a table the backup does not have
    try {
      const r = await runBinary(["restore", "b_gzip", "--only", "tca.duckdb"], { cwd: f.dir });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${f.dbs[2]}: locked by PID ${writer.pid}`);
      // Restore's own words: nothing about copies or --wait, which a restore does not take.
      expect(r.stderr).toContain("not restored over, because the writer would corrupt the restored file or be corrupted (stop the writer, then restore again)");
    } finally {
      await writer.stop();
    }
    expect(await query(f.dbs[2]!, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'writer_heartbeat'")).toEqual([[1n]]);
    expect(readdirSync(join(f.dir, "data")).filter((n) => n.includes(".bak.") || n.startsWith(".duckbak-tmp"))).toEqual([]);
  });

  test("the target's pending WAL is folded into the current database (kept whole as .bak), never replayed onto the restored one", async () => {
    const f = await fixture(1000);
    const db = f.dbs[2]!; // tca.duckdb: 1000 rows in the backup
    await sh([process.execPath, WRITER, "leave-wal", db]);
    expect(existsSync(`${db}.wal`)).toBe(true);
    const r = JSON.parse((await runBinary(["restore", "b_gzip", "--only", "tca.duckdb", "--json"], { cwd: f.dir })).stdout);
    expect(r.databases[0].folded_at_target).toEqual([`${db}.wal`]);
    expect(r.databases[0].backups.map((b: string) => b.replace(/\.bak\.\d{8}_\d{6}$/, ".bak"))).toEqual([`${db}.bak`]);
    expect(existsSync(`${db}.wal`)).toBe(false);
    expect(await query(db, "SELECT count(*) FROM tca_fills")).toEqual([[1000n]]);
    expect(await query(db, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 't'")).toEqual([[0n]]);
    // The .bak alone holds the old database with its WAL's transactions (10 checkpointed + 5).
    const bakDir = join(f.dir, "bak");
    mkdirSync(bakDir);
    copyFileSync(r.databases[0].backups[0], join(bakDir, "tca.duckdb"));
    expect(await query(join(bakDir, "tca.duckdb"), "SELECT count(*) FROM t")).toEqual([[15n]]);
  });

  test("--overwrite replaces without .bak and removes stale WAL side files (.wal.checkpoint, .wal.recovery); a backup's own WAL is folded into the restored file", async () => {
    const dir = tempDir();
    const db = join(dir, "w.duckdb");
    await sh([process.execPath, WRITER, "leave-wal", db]);
    expect((await runBinary(["backup", db, "--backup-dir", join(dir, "bk"), "--name", "w"])).code).toBe(0);
    await runSql(db, ["INSERT INTO t SELECT range FROM range(1000)"]); // checkpoints on close: WAL gone
    // Left by a crash beside the target: DuckDB would consult them next to the restored database.
    writeFileSync(`${db}.wal.checkpoint`, "left over");
    writeFileSync(`${db}.wal.recovery`, "left over");
    writeFileSync(`${db}.wal.notes`, "not DuckDB's: kept");
    const r = JSON.parse((await runBinary(["restore", "w", "--overwrite", "--backup-dir", join(dir, "bk"), "--json"])).stdout);
    expect(r.databases[0].backups).toEqual([]);
    expect(r.databases[0].files).toEqual([db]);
    expect(r.databases[0].folded_from_backup).toEqual(["w.duckdb.wal"]);
    expect(readdirSync(dir).sort()).toEqual(["bk", "w.duckdb", "w.duckdb.wal.notes"]);
    expect(await query(db, "SELECT count(*) FROM t")).toEqual([[15n]]);
  });

  test("restore waits for, then gives up on, another duckbak run holding the backup folder (exit 11)", async () => {
    const f = await fixture(1000);
    const holder = { pid: process.pid, host: hostname(), started_at: new Date().toISOString(), command: "cleanup" };
    writeFileSync(join(f.bk, ".duckbak.lock"), JSON.stringify(holder));
    const r = await runBinary(["restore", "b_gzip", "--restore-dir", join(f.dir, "r"), "--lock-wait", "1"], { cwd: f.dir });
    expect(r.code).toBe(11);
    expect(r.stderr).toContain(`backup folder locked by duckbak cleanup (PID ${process.pid}`);
    expect(existsSync(join(f.dir, "r"))).toBe(false);
  });

  test("--only and --restore-dir (created when missing) leave the originals alone", async () => {
    const f = await fixture(1000);
    const before = f.dbs.map(sha256File);
    const out = join(f.dir, "restore/here");
    const r = await runBinary(["restore", "b_zstd", "--only", "results.duckdb", "--only", "tca.duckdb", "--restore-dir", out], { cwd: f.dir });
    expect(r.code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(["results.duckdb", "tca.duckdb"]);
    expect(sha256File(join(out, "results.duckdb"))).toBe(before[0]!);
    expect(f.dbs.map(sha256File)).toEqual(before);
    const bad = await runBinary(["restore", "b_zstd", "--only", "nope.duckdb", "--restore-dir", out], { cwd: f.dir });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--only nope.duckdb: no such database in the backup");
  });

  test("schemas, views, macros, sequences, enums, constraints, an index and comments restore byte-exact and work", async () => {
    const dir = tempDir();
    const db = join(dir, "rich.duckdb");
    await runSql(db, [
      "CREATE SCHEMA sales",
      "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')",
      "CREATE SEQUENCE sales.order_id START 100",
      "CREATE TABLE sales.customers (id INTEGER PRIMARY KEY, name VARCHAR NOT NULL UNIQUE, m mood DEFAULT 'ok', CHECK (length(name) > 1))",
      "CREATE TABLE sales.orders (id INTEGER DEFAULT nextval('sales.order_id') PRIMARY KEY, customer INTEGER REFERENCES sales.customers(id), amount DECIMAL(10,2))",
      "INSERT INTO sales.customers VALUES (1, 'Ada', 'happy'), (2, 'Bob', 'sad')",
      "INSERT INTO sales.orders (customer, amount) VALUES (1, 10.50), (2, 20.25), (1, 3.00)",
      "CREATE INDEX orders_amount ON sales.orders(amount)",
      "CREATE VIEW sales.big_orders AS SELECT * FROM sales.orders WHERE amount > 5",
      "CREATE MACRO sales.with_tax(x) AS x * 1.2",
      "COMMENT ON TABLE sales.orders IS 'every order'",
      "COMMENT ON COLUMN sales.customers.name IS 'full name'",
    ]);
    const original = sha256File(db);
    expect((await runBinary(["backup", db, "--backup-dir", join(dir, "bk"), "--name", "rich"])).code).toBe(0);
    expect((await runBinary(["verify", "rich", "--backup-dir", join(dir, "bk")])).code).toBe(0);
    const out = join(dir, "out");
    expect((await runBinary(["restore", "rich", "--backup-dir", join(dir, "bk"), "--restore-dir", out])).code).toBe(0);
    const restored = join(out, "rich.duckdb");
    expect(sha256File(restored)).toBe(original);
    expect(await query(restored, "SELECT count(*) FROM sales.big_orders")).toEqual([[2n]]);
    expect(await query(restored, "SELECT sales.with_tax(10)::INTEGER")).toEqual([[12]]);
    expect(await query(restored, "SELECT comment FROM duckdb_tables() WHERE table_name = 'orders'")).toEqual([["every order"]]);
    expect(await query(restored, "SELECT comment FROM duckdb_columns() WHERE table_name = 'customers' AND column_name = 'name'")).toEqual([["full name"]]);
    expect(await query(restored, "SELECT count(*) FROM duckdb_indexes() WHERE index_name = 'orders_amount'")).toEqual([[1n]]);
    expect(await query(restored, "SELECT count(*) FROM duckdb_constraints() WHERE constraint_type IN ('PRIMARY KEY', 'FOREIGN KEY', 'UNIQUE', 'CHECK', 'NOT NULL')")).toEqual([[8n]]);
    expect(await query(restored, "SELECT enum_range(NULL::mood)::VARCHAR")).toEqual([["[sad, ok, happy]"]]);
    // The sequence continues where it was; constraints still bite.
    await runSql(restored, ["INSERT INTO sales.orders (customer, amount) VALUES (2, 1)"]);
    expect(await query(restored, "SELECT max(id) FROM sales.orders")).toEqual([[103]]);
    await expect(runSql(restored, ["INSERT INTO sales.orders (customer, amount) VALUES (99, 1)"])).rejects.toThrow(/foreign key/i);
  });
});

describe("library", () => {
  test("restoreBackup throws CorruptArchiveError for a damaged archive", async () => {
    const f = await fixture(1000);
    const dst = join(f.dir, "damaged.tar.gz");
    flipBit(f.archive("gzip"), dst, 300, 1);
    await expect(restoreBackup(resolveBackupRef(dst, f.bk), { restoreDir: join(f.dir, "r") })).rejects.toBeInstanceOf(CorruptArchiveError);
    expect(existsSync(join(f.dir, "r"))).toBe(false);
  });
});

describe("two databases with the same file name from different folders", () => {
  // The tester's report: `--only 2-a.duckdb --overwrite` wrote proj/data/a.duckdb over the
  // restored data/a.duckdb, and `--only a.duckdb` restored both. Archives and snapshots alike.
  for (const kind of ["archive", "repository"] as const)
    test(`${kind}: full restore gives a.duckdb and 2-a.duckdb; --only picks exactly one under that name; an ambiguous --only is exit 2 and writes nothing`, async () => {
      const dir = tempDir();
      mkdirSync(join(dir, "data"));
      mkdirSync(join(dir, "proj/data"), { recursive: true });
      const first = join(dir, "data/a.duckdb");
      const second = join(dir, "proj/data/a.duckdb");
      await runSql(first, ["CREATE TABLE t AS SELECT range AS id, 'first' AS who FROM range(200000)", "CHECKPOINT"]);
      await runSql(second, ["CREATE TABLE t AS SELECT range AS id, 'second' AS who FROM range(10)", "CHECKPOINT"]);
      const sums: Record<string, string> = { "a.duckdb": sha256File(first), "2-a.duckdb": sha256File(second) };
      expect(sums["a.duckdb"]).not.toBe(sums["2-a.duckdb"]);
      const where = kind === "archive" ? ["--backup-dir", "bk"] : ["--repo", "repo"];
      const env = { ...process.env, NO_COLOR: "1", DUCKBAK_PASSWORD: "same names" } as Record<string, string>;
      const run = (args: string[]) => runBinary([...args, ...where], { cwd: dir, env });
      if (kind === "repository") expect((await run(["init"])).code).toBe(0);
      const made = await run(["backup", "data/a.duckdb", "proj/data/a.duckdb", ...(kind === "archive" ? ["--name", "two"] : [])]);
      expect(made.code).toBe(0);
      const ref = kind === "archive" ? "two" : "latest";
      /** The restored files in `out`, each with whose bytes it holds. */
      const restored = (out: string) => Object.fromEntries(readdirSync(out).sort().map((n) => [n, sha256File(join(out, n))]));

      // list and ls show the names --only takes.
      expect((await run(["list"])).stdout).toContain("a.duckdb, 2-a.duckdb");
      expect(JSON.parse((await run(["list", "--json"])).stdout)[kind === "archive" ? "backups" : "snapshots"][0].databases).toEqual(["a.duckdb", "2-a.duckdb"]);
      const ls = (await run(["ls", ref])).stdout;
      expect(ls).toMatch(new RegExp(`\\n2-a\\.duckdb  .*\\n  from ${second.replace(/[.]/g, "\\.")}`));

      const full = join(dir, "full");
      expect((await run(["restore", ref, "--restore-dir", full])).code).toBe(0);
      expect(restored(full)).toEqual(sums);

      // The report's command: only 2-a.duckdb is replaced, by its own bytes; a.duckdb is untouched.
      const again = await run(["restore", ref, "--restore-dir", full, "--only", "2-a.duckdb", "--overwrite"]);
      expect(again.code).toBe(0);
      expect(again.stdout).toContain("restored  full/2-a.duckdb\n          replaced full/2-a.duckdb (--overwrite)\n");
      expect(again.stdout).not.toContain("full/a.duckdb");
      expect(restored(full)).toEqual(sums);

      // Each alone, by restore name (with or without .duckdb) or original path (relative or absolute).
      const picks = [["2-a.duckdb", "2-a.duckdb"], ["2-a", "2-a.duckdb"], [second, "2-a.duckdb"], ["proj/data/a.duckdb", "2-a.duckdb"], [first, "a.duckdb"], ["data/a.duckdb", "a.duckdb"]];
      for (const [i, [pick, name]] of picks.entries()) {
        const out = join(dir, `only${i}`);
        const r = await run(["restore", ref, "--restore-dir", out, "--only", pick!]);
        expect([pick, r.code]).toEqual([pick, 0]);
        expect([pick, restored(out)]).toEqual([pick, { [name!]: sums[name!] }]);
      }

      // A name both answer to: refused with the choices, nothing written (not even the folder).
      for (const pick of ["a.duckdb", "a"]) {
        const out = join(dir, "ambiguous");
        const r = await run(["restore", ref, "--restore-dir", out, "--only", pick]);
        expect(r.code).toBe(2);
        expect(r.stderr).toContain(`--only ${pick}: matches 2 databases of the backup: ${first} (as a.duckdb), ${second} (as 2-a.duckdb)`);
        expect(existsSync(out)).toBe(false);
        const over = await run(["restore", ref, "--restore-dir", full, "--only", pick, "--overwrite"]);
        expect(over.code).toBe(2);
        expect(restored(full)).toEqual(sums);
      }

      // To the original paths: --only 2-a.duckdb touches proj/data/a.duckdb only (its .bak beside it).
      const home = await run(["restore", ref, "--only", "2-a.duckdb"]);
      expect(home.code).toBe(0);
      expect(readdirSync(join(dir, "data"))).toEqual(["a.duckdb"]);
      expect(readdirSync(join(dir, "proj/data")).filter((n) => n.startsWith("a.duckdb.bak.")).length).toBe(1);
      expect([sha256File(first), sha256File(second)]).toEqual([sums["a.duckdb"]!, sums["2-a.duckdb"]!]);

      // sql takes the same names.
      const q = await run(["sql", ref, "--only", "2-a", "SELECT DISTINCT who FROM t", "--json"]);
      expect(JSON.parse(q.stdout).rows).toEqual([{ who: "second" }]);
      expect((await run(["sql", ref, "--only", "a.duckdb", "SELECT 1"])).code).toBe(2);
    }, 60_000);
});
