// Repository commands' memory against the size of the index (issue 9: peak RSS <= 250 MiB whatever
// the number of blobs): 800,000 synthetic blobs added to the index of a small repository. restore
// and one-snapshot verify keep only their snapshot's chunks (their peak RSS barely moves); stats
// (every blob's location) grows by the compact table's cost, far from the ~340 bytes per blob a
// Map of hex ids cost (the build before the compact index fails this test: restore 367 MiB,
// stats 402 MiB with these 800,000 blobs).
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { peakRss, runBinary, runSql, sha256File, tempDir } from "../helpers.ts";
import { addSyntheticIndex } from "../synthetic-index.ts";
import { Repository } from "../../src/core/repo/repository.ts";
import { LocalStore } from "../../src/core/store/local.ts";

const MiB = 1024 * 1024;
const STRESS = process.env.DUCKBAK_STRESS === "1";
/** DUCKBAK_STRESS=1: 2.5 million, where every command must stay under 250 MiB. */
const BLOBS = STRESS ? 2_500_000 : 800_000;
const env = { DUCKBAK_PASSWORD: "pw-memory" };

describe.skipIf(process.platform !== "linux")("repository memory", () => {
  test(`restore and verify of one snapshot do not grow with the index; backup and stats grow < 100 bytes per blob (${BLOBS.toLocaleString()} blobs)`, async () => {
    const dir = tempDir();
    const repo = join(dir, "repo");
    const db = join(dir, "a.duckdb");
    await runSql(db, ["CREATE TABLE t AS SELECT range AS id, md5(range::VARCHAR) AS s FROM range(100000)", "CHECKPOINT"]);
    expect((await runBinary(["init", "--repo", repo], { env })).code).toBe(0);
    expect((await runBinary(["backup", "--repo", repo, db], { env })).code).toBe(0);
    const commands = (round: string): [string, string[]][] => [
      ["restore", ["restore", "latest", "--repo", repo, "--restore-dir", join(dir, round)]],
      ["verify", ["verify", "latest", "--repo", repo]],
      ["stats", ["stats", "--repo", repo]],
      ["backup", ["backup", "--repo", repo, db]],
    ];
    const measure = async (round: string) => {
      const out: Record<string, number> = {};
      for (const [name, args] of commands(round)) {
        const r = await peakRss(args, env);
        expect(r.code).toBe(0);
        out[name] = r.peak;
      }
      return out;
    };
    const small = await measure("small");
    await addSyntheticIndex(await Repository.open(new LocalStore(repo), env.DUCKBAK_PASSWORD), BLOBS);
    const big = await measure("big");
    for (const name of Object.keys(small)) console.log(`${name} peak RSS: ${Math.round(small[name]! / MiB)} MiB, with ${BLOBS.toLocaleString()} more blobs indexed ${Math.round(big[name]! / MiB)} MiB`);
    // One index file being scanned at a time (a few MiB), nothing per blob; backup too: with an
    // index this large it looks its chunks up a window at a time instead of holding every blob.
    expect(big.restore! - small.restore!).toBeLessThan(24 * MiB);
    expect(big.verify! - small.verify!).toBeLessThan(24 * MiB);
    expect(big.backup! - small.backup!).toBeLessThan(24 * MiB);
    // The table (~57 bytes per blob) and one index file; a Map of hex ids: ~340.
    expect(big.stats! - small.stats!).toBeLessThan(BLOBS * 100);
    for (const peak of Object.values(big)) expect(peak).toBeLessThan(250 * MiB);
    // It does hold every blob (the table is 45 MiB; the binary's own slack absorbs some): the measure sees it.
    expect(big.stats! - small.stats!).toBeGreaterThan(BLOBS * 20);
    // Looked up a window at a time, deduplication is what it was: an unchanged database adds
    // nothing, a changed one only its changed blocks, and every snapshot restores byte-identical.
    const again = JSON.parse((await runBinary(["backup", "--repo", repo, db, "--json"], { env })).stdout);
    expect(again.stats.new_blobs).toBe(0);
    await runSql(db, ["INSERT INTO t SELECT range, 'late' FROM range(100000, 100100)", "CHECKPOINT"]);
    const changed = JSON.parse((await runBinary(["backup", "--repo", repo, db, "--json"], { env })).stdout);
    expect(changed.stats.new_blobs).toBeGreaterThan(0);
    expect(changed.stats.new_blobs).toBeLessThan(changed.stats.chunks / 2);
    expect((await runBinary(["restore", "latest", "--repo", repo, "--restore-dir", join(dir, "after")], { env })).code).toBe(0);
    expect(sha256File(join(dir, "after", "a.duckdb"))).toBe(sha256File(db));
    // The whole repository still verifies (the synthetic packs are named by no snapshot).
    expect((await runBinary(["verify", "--repo", repo], { env })).code).toBe(0);
  });
});
