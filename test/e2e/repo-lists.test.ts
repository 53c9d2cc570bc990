// Chunk lists (repository format 3): a file's chunk ids live in list blobs of 8,192 ids beside its
// chunks, not in the snapshot file. A real database of 16 KiB blocks with more than 8,192 of them
// needs two lists; an unchanged file adds none; cleanup marks the lists and what they name; a
// damaged list stops cleanup before anything is deleted and is named by verify and restore.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { runBinary, runSql, sha256File, tempDir } from "../helpers.ts";
import { Repository } from "../../src/core/repo/repository.ts";
import { LocalStore } from "../../src/core/store/local.ts";
import { loadSnapshot } from "../../src/core/repo/snapshots.ts";
import { BlobIndex } from "../../src/core/repo/index-file.ts";
import { LIST_IDS } from "../../src/core/repo/lists.ts";

const PASSWORD = "pw-lists";
const env = { ...process.env, NO_COLOR: "1", DUCKBAK_PASSWORD: PASSWORD } as Record<string, string>;
const run = (args: string[]) => runBinary(args, { env });

function packs(repo: string): string[] {
  return readdirSync(join(repo, "data"), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name).sort();
}

/** ~145 MB of 16 KiB blocks: ~8,800 chunks, two chunk lists. */
async function smallBlockDb(path: string): Promise<void> {
  const instance = await DuckDBInstance.create(":memory:");
  const con = await instance.connect();
  try {
    await con.run(`ATTACH '${path}' AS d (BLOCK_SIZE 16384)`);
    await con.run("CREATE TABLE d.t AS SELECT range AS id, random() AS a, random() AS b FROM range(6000000)");
    await con.run("CHECKPOINT d");
    await con.run("DETACH d");
  } finally {
    con.closeSync();
    instance.closeSync();
  }
}

describe("repository chunk lists", () => {
  test("a file of more than 8,192 chunks: two lists, restored byte-exact; unchanged adds no list; cleanup keeps what lists name; a damaged list stops cleanup and is named", async () => {
    const dir = tempDir();
    const repo = join(dir, "repo");
    const db = join(dir, "small-blocks.duckdb");
    expect((await run(["init", "--repo", repo])).code).toBe(0);
    await smallBlockDb(db);
    const backup = async () => {
      const r = await run(["backup", "--repo", repo, "--json", db]);
      expect(r.code).toBe(0);
      return JSON.parse(r.stdout);
    };
    const first = await backup();
    const open = () => Repository.open(new LocalStore(repo), PASSWORD);
    const mainOf = async (id: string) => (await loadSnapshot(await open(), id)).databases[0]!.files.find((f) => f.role === "main")!;
    const main1 = await mainOf(first.snapshot);
    expect(main1.chunk_count).toBeGreaterThan(LIST_IDS);
    expect(main1.lists.length).toBe(2);
    expect(first.stats.chunks).toBe(main1.chunk_count);
    // The snapshot file names lists, not chunks: a few hundred bytes whatever the database size.
    expect(readFileSync(join(repo, "snapshots", first.snapshot)).length).toBeLessThan(4096);

    // Unchanged: the same lists, nothing new at all.
    const same = await backup();
    expect(same.stats).toMatchObject({ new_blobs: 0, added_bytes: 0 });
    expect((await mainOf(same.snapshot)).lists).toEqual(main1.lists);

    // A few rows changed: new chunks and lists, the rest shared.
    await runSql(db, ["UPDATE t SET a = -1 WHERE id % 100000 = 0", "CHECKPOINT"]);
    const changed = await backup();
    expect(changed.stats.new_blobs).toBeGreaterThan(0);
    expect(changed.stats.new_blobs).toBeLessThan(main1.chunk_count / 10);
    const sha = sha256File(db);

    // Cleanup down to the newest: the packs it needs stay (its lists and what they name).
    const c = await run(["cleanup", "--repo", repo, "--keep-last", "1", "--max-unused", "0%", "--json"]);
    expect(c.code).toBe(0);
    const v = await run(["verify", "--repo", repo, "--read-data", "--json"]);
    expect(v.code).toBe(0);
    const out = join(dir, "out");
    expect((await run(["restore", "latest", "--repo", repo, "--restore-dir", out])).code).toBe(0);
    expect(sha256File(join(out, "small-blocks.duckdb"))).toBe(sha);
    const stats = JSON.parse((await run(["stats", "--repo", repo, "--json"])).stdout);
    expect(stats.list_blobs).toBe(2);
    expect(stats.list_bytes).toBe((await mainOf(changed.snapshot)).chunk_count * 32);

    // The second list damaged (one byte of its sealed bytes in its pack).
    const main3 = await mainOf(changed.snapshot);
    const loc = (await BlobIndex.load(await open(), main3.lists)).get(main3.lists[1]!)!;
    const packFile = join(repo, "data", loc.pack.slice(0, 2), loc.pack);
    const bytes = readFileSync(packFile);
    bytes[loc.offset + 20] ^= 1;
    writeFileSync(packFile, bytes);
    const before = packs(repo);
    const bad = await run(["cleanup", "--repo", repo, "--keep-last", "1", "--max-unused", "0%"]);
    expect(bad.code).toBe(4);
    expect(bad.stderr).toContain(`blob ${main3.lists[1]!.slice(0, 12)}…: authentication failed`);
    expect(bad.stderr).toContain("no pack deleted (run verify)");
    expect(packs(repo)).toEqual(before);
    const vb = await run(["verify", "--repo", repo]);
    expect(vb.code).toBe(4);
    expect(vb.stderr).toContain(`small-blocks.duckdb: file small-blocks.duckdb: chunk list 1 (${main3.lists[1]!.slice(0, 12)}…)`);
    const vr = await run(["verify", "latest", "--repo", repo, "--read-data"]);
    expect(vr.code).toBe(4);
    expect(vr.stderr).toContain("chunk list 1");
    const r = await run(["restore", "latest", "--repo", repo, "--restore-dir", join(dir, "out2")]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain("nothing was restored");
    expect(existsSync(join(dir, "out2", "small-blocks.duckdb"))).toBe(false);
  }, 240_000);
});
