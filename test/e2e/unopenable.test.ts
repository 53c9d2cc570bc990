// Files the embedded DuckDB cannot open (a newer storage version, a pre-0.9 one, vector size 512)
// are backed up under DuckDB's own fcntl lock taken without DuckDB, verified with the open check
// SKIPPED (not failed), and restored with a warning.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY, runBinary, runSql, sha256File, tempDir, tryOpenReadWrite } from "../helpers.ts";
import { patchStorageVersion, patchVectorSize } from "../patch-header.ts";

const CASES = [
  { name: "newer", patch: (s: string, d: string) => patchStorageVersion(s, d, 69), reason: "needs DuckDB ≥ v2.0.0; this duckbak embeds DuckDB v1.5.5" },
  {
    name: "older",
    patch: (s: string, d: string) => patchStorageVersion(s, d, 51),
    reason: "written by DuckDB v0.8.0 to v0.8.1 (storage version 51), which only those releases open; this duckbak embeds DuckDB v1.5.5",
  },
  {
    name: "vector512",
    patch: (s: string, d: string) => patchVectorSize(s, d, 512),
    reason: "vector size 512: opens only in a DuckDB compiled with that vector size; this duckbak embeds DuckDB v1.5.5 (vector size 2048)",
  },
] as const;

async function unopenable(dir: string, c: (typeof CASES)[number]): Promise<string> {
  const healthy = join(dir, "healthy.duckdb");
  await runSql(healthy, ["CREATE TABLE t AS SELECT range AS id, md5(range::VARCHAR) AS s FROM range(100000)"]);
  const db = join(dir, `${c.name}.duckdb`);
  c.patch(healthy, db);
  return db;
}

describe("files the embedded DuckDB cannot open", () => {
  for (const c of CASES) {
    test(`${c.name}: backup under a raw lock (exit 0, warning), verify SKIPS the open check, restore byte-identical`, async () => {
      const dir = tempDir();
      const db = await unopenable(dir, c);
      const bk = join(dir, "bk");
      const b = await runBinary(["backup", db, "--backup-dir", bk, "--name", "b"]);
      expect(b.code).toBe(0);
      expect(b.stderr).toContain(`warning: ${db}: the embedded DuckDB cannot open it (`);
      expect(b.stderr).toContain("copied under DuckDB's file lock taken without DuckDB");

      const j = JSON.parse((await runBinary(["backup", db, "--backup-dir", bk, "--name", "j", "--json"])).stdout);
      const m = j.manifest.databases[0];
      expect(m.consistency).toBe("raw-lock");
      expect(typeof m.duckdb.open_error).toBe("string");
      expect(m.tables).toEqual([]);
      expect(m.source_blocks).toEqual({ state: "ok", problems: [] });
      expect(j.databases[0].not_opened).toBe(m.duckdb.open_error);

      const v = await runBinary(["verify", "b", "--backup-dir", bk]);
      expect(v.stderr).toBe("");
      expect(v.code).toBe(0);
      expect(v.stdout).toContain(`OK      ${c.name}.duckdb: checksums, blocks\n`);
      expect(v.stdout).toContain(`SKIPPED ${c.name}.duckdb: open check: ${c.reason}`);
      const vj = JSON.parse((await runBinary(["verify", "b", "--backup-dir", bk, "--json"])).stdout);
      expect(vj.databases[0].checks).toEqual({ checksum: "ok", blocks: "ok", open: "skipped" });

      // The repository: the lock taken without DuckDB, DuckDB's failure found by the describing process.
      const repo = join(dir, "repo");
      const env = { DUCKBAK_PASSWORD: "pw-unopenable" };
      expect((await runBinary(["init", "--repo", repo], { env })).code).toBe(0);
      const rb = await runBinary(["backup", "--repo", repo, db, "--json"], { env });
      expect(rb.code).toBe(0);
      expect((await runBinary(["backup", "--repo", repo, db], { env })).stderr).toContain(`warning: ${db}: the embedded DuckDB cannot open it (`);
      const rj = JSON.parse(rb.stdout);
      expect(rj.manifest.databases[0]).toMatchObject({ consistency: "raw-lock", tables: [], duckdb: { open_error: m.duckdb.open_error } });
      expect(rj.databases[0].not_opened).toBe(m.duckdb.open_error);
      const rr = await runBinary(["restore", "latest", "--repo", repo, "--restore-dir", join(dir, "from-repo")], { env });
      expect(rr.code).toBe(0);
      expect(sha256File(join(dir, "from-repo", `${c.name}.duckdb`))).toBe(sha256File(db));

      for (const flags of [[], ["--no-verify"]]) {
        const out = join(dir, `restored${flags.length}`);
        const r = await runBinary(["restore", "b", "--backup-dir", bk, "--restore-dir", out, ...flags]);
        expect(r.code).toBe(0);
        expect(r.stderr).toContain(`warning: ${join(out, `${c.name}.duckdb`)}: restored without an open check: ${c.reason}`);
        expect(sha256File(join(out, `${c.name}.duckdb`))).toBe(sha256File(db));
      }
    });
  }

  test("the raw lock keeps DuckDB writers out while it is held, and only then", async () => {
    const dir = tempDir();
    const db = await unopenable(dir, CASES[0]);
    // The holder as backup runs it: keys on its stdin, the lock until stdin closes.
    const holder = Bun.spawn([BINARY, "__snapshot-holder", "0", db], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
    holder.stdin.write("{}\n");
    holder.stdin.flush();
    const reader = holder.stdout.getReader();
    const report = JSON.parse(new TextDecoder().decode((await reader.read()).value));
    expect(report[0]).toMatchObject({ ok: true, tables: [] });
    expect(report[0].rawReason).toBeString();
    expect(await tryOpenReadWrite(db)).toContain("Could not set lock on file");
    holder.stdin.end();
    await holder.exited;
    // Negative control: released, a writer gets past the lock (and fails on the format instead).
    const after = await tryOpenReadWrite(db);
    expect(after).not.toContain("Could not set lock");
    expect(readFileSync(db).length).toBeGreaterThan(12288);
  });

  test("a file DuckDB cannot open for another reason (damage) is still copied, and verify fails it", async () => {
    const dir = tempDir();
    const healthy = join(dir, "healthy.duckdb");
    await runSql(healthy, ["CREATE TABLE t AS SELECT range AS id FROM range(1000)"]);
    const bytes = readFileSync(healthy);
    bytes.fill(0x55, 4096 + 8, 4096 + 64); // both database headers' fields, checksums left wrong
    bytes.fill(0x55, 8192 + 8, 8192 + 64);
    const db = join(dir, "broken.duckdb");
    await Bun.write(db, bytes);
    const bk = join(dir, "bk");
    const b = await runBinary(["backup", db, "--backup-dir", bk, "--name", "b"]);
    expect(b.code).toBe(7);
    expect(b.stderr).toContain("database1 header at offset 4096 fails its checksum");
    const v = await runBinary(["verify", "b", "--backup-dir", bk]);
    expect(v.code).toBe(4);
  });
});
