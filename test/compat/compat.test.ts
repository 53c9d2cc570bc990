// The compatibility suite: databases written by other DuckDB releases (every column type, views,
// macros, sequences, constraints, indexes, comments, a second schema, a pending WAL, 16 KiB blocks,
// a STORAGE_VERSION option and, from 1.5, encryption: 1.4 cannot encrypt without OpenSSL/httpfs,
// which is not installable offline) go through the compiled binary: backup, verify, archive
// byte-identical, restore (byte-identical unless a WAL is folded in) reopened by the release that
// wrote it with the same content fingerprint, export + import, diff. CI runs two releases;
// DUCKBAK_COMPAT=all runs every one in DUCKDB_VERSIONS (or a comma-separated list of them).
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DUCKDB_VERSIONS, runWithDuckDB } from "../duckdb-versions.ts";
import { runBinary, sha256File, tempDir } from "../helpers.ts";

const WRITER = readFileSync(join(import.meta.dir, "writer.mjs"), "utf8");
const KEY = "compat-Key-7c1d-never-printed";
const chosen = process.env.DUCKBAK_COMPAT;
const VERSIONS: readonly string[] =
  chosen === "all" ? DUCKDB_VERSIONS : chosen ? chosen.split(",") : ["1.1.3-alpha.12", "1.4.4-r.4"];

interface Variant {
  name: string;
  options: { pendingWal?: boolean; blockSize?: number; storageVersion?: string; key?: string };
}

function variants(version: string): Variant[] {
  const [major, minor] = version.split(".").map(Number) as [number, number];
  const list: Variant[] = [
    { name: "main", options: { pendingWal: true } },
    { name: "small", options: { blockSize: 16384, storageVersion: "v1.0.0" } },
  ];
  // Writing encryption needs OpenSSL (httpfs, not installable offline); 1.5 can be told to use its
  // built-in mbedtls instead, 1.4 cannot, so 1.4 files are not encrypted here.
  if (major > 1 || minor >= 5) list.push({ name: "vault", options: { blockSize: 16384, key: KEY } });
  return list;
}

async function fingerprint(version: string, path: string, key?: string): Promise<unknown> {
  return JSON.parse(await runWithDuckDB(version, WRITER, ["fingerprint", path, key ?? ""]));
}

describe.each(VERSIONS)("databases written by DuckDB %s", (version) => {
  test("backup, verify, restore byte-identical, same fingerprint in the writing release, export/import, diff", async () => {
    const dir = tempDir();
    const data = join(dir, "data");
    mkdirSync(data);
    const dbs = variants(version).map((v) => ({ ...v, path: join(data, `${v.name}.duckdb`) }));
    const before = new Map<string, unknown>();
    for (const db of dbs) {
      const { missing } = JSON.parse(await runWithDuckDB(version, WRITER, ["write", db.path, JSON.stringify(db.options)]));
      // Only types the release does not have may be missing (BIGNUM came in 1.4, as VARINT's new name).
      for (const m of missing as string[]) expect(m).toMatch(/^c_(bignum|varint) /);
      before.set(db.name, await fingerprint(version, db.path, db.options.key));
    }
    writeFileSync(join(dir, "vault.key"), KEY);
    writeFileSync(
      join(dir, "duckbak.toml"),
      `databases = [${dbs.map((d) => JSON.stringify(`data/${d.name}.duckdb`)).join(", ")}]\n` +
        (dbs.some((d) => d.options.key) ? `[[database]]\npath = "data/vault.duckdb"\nencryption_key_file = "vault.key"\n` : ""),
    );
    const outputs: string[] = [];
    const run = async (args: string[]) => {
      const r = await runBinary(args, { cwd: dir });
      outputs.push(r.stdout, r.stderr);
      return r;
    };

    const b = await run(["backup", "--name", "b", "--json"]);
    expect(b.stderr).toBe("");
    expect(b.code).toBe(0);
    const manifest = JSON.parse(b.stdout).manifest;
    const entry = (name: string) => manifest.databases.find((d: any) => d.name === `${name}.duckdb`);
    expect(entry("main").files.map((f: any) => f.role)).toEqual(["main", "wal"]);
    expect(entry("main").tables.find((t: any) => t.schema === "sales" && t.name === "late")).toEqual({ schema: "sales", name: "late", rows: 2 });
    expect(entry("small").duckdb).toMatchObject({ block_alloc_size: 16384, storage_version: 64 });
    for (const d of manifest.databases) expect(d.source_blocks.state).toBe(d.duckdb.encrypted ? "skipped" : "ok");
    if (dbs.some((d) => d.name === "vault")) expect(entry("vault").duckdb.encrypted).toBe(true);

    const v = await run(["verify", "b"]);
    expect(v.code).toBe(0);
    for (const db of dbs) expect(v.stdout).toContain(`OK      ${db.name}.duckdb: checksums, blocks, opened and read`);

    // The archive holds every file byte for byte (GNU tar extracts it).
    const extracted = join(dir, "extracted");
    mkdirSync(extracted);
    await Bun.$`tar -xzf ${join(data, "backups/b.tar.gz")} -C ${extracted}`;
    for (const db of dbs) for (const f of entry(db.name).files) expect(sha256File(join(extracted, f.entry))).toBe(sha256File(join(data, f.name)));

    // restore: byte-identical without a WAL; with one, the WAL is folded in (one file to move into
    // place), and the writing release reads the same content from it.
    const restored = join(dir, "restored");
    expect((await run(["restore", "b", "--restore-dir", restored])).code).toBe(0);
    for (const db of dbs) {
      const main = join(restored, `${db.name}.duckdb`);
      if (db.options.pendingWal) expect(existsSync(`${main}.wal`)).toBe(false);
      else expect(sha256File(main)).toBe(sha256File(db.path));
      expect(await fingerprint(version, main, db.options.key)).toEqual(before.get(db.name));
    }

    const d = await run(["diff", "b"]);
    expect(d.code).toBe(0);
    expect(d.stdout).toContain("No differences.");

    // Export from the source, import into new databases, which compare equal with the backup.
    const imported = join(dir, "imported");
    for (const db of dbs) {
      const out = join(dir, `export-${db.name}`);
      const e = await run(["export", `data/${db.name}.duckdb`, "--out", out]);
      expect(e.stderr).toBe("");
      expect(e.code).toBe(0);
      const i = await run(["import", out, "--into", join(imported, `${db.name}.duckdb`)]);
      expect(i.stderr).toBe("");
      expect(i.code).toBe(0);
      // Every table the same; the only addition is import's own record of the export.
      const diff = await run(["diff", "b", join(imported, `${db.name}.duckdb`)]);
      const changes = diff.stdout.split("\n").filter((l) => /^\s*[-+~] /.test(l));
      expect(changes).toEqual([expect.stringMatching(/^\s*\+ main\._duckbak_imports: added/)]);
      expect(diff.stdout).toMatch(/main\.types: same \(3,000 records\)/);
    }
    for (const o of outputs) expect(o).not.toContain(KEY);
  });
});
