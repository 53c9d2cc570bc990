// Index memory (issue 9: peak RSS <= 250 MiB whatever the number of blobs). A repository with a
// real snapshot of a small database (BLOCK_SIZE 16384: many chunks) whose index also lists
// --blobs synthetic blobs (random ids in packs that are never read, written as index files with
// the repository's own code), so that the index is as large as that of a big repository without
// storing its data. Measures:
//   - bytes per blob held in memory: the compact index (BlobIndex) against the Map of hex ids to
//     location objects that earlier builds kept (the same entries, heap growth after a GC; the
//     engine's heap figures leave out the strings' character storage, so the Map's figure is low:
//     compare peak RSS with --before for the whole cost)
//   - peak RSS of list, backup (incremental), restore, verify (one snapshot; the whole repository),
//     stats and cleanup through the compiled binary; with --before BINARY, of that binary too
//
//   bun bench/index-memory.ts                   2,000,000 synthetic blobs, a 64 MiB database
//   bun bench/index-memory.ts --blobs 500000 --db-mib 32 --before /tmp/old-duckbak
//
// Results: a table on stdout and bench/work/index-memory-results.json.
import { DuckDBInstance } from "@duckdb/node-api";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY, OUT, WORK, ensureBinary, fmtSec, runTimed, table } from "./backup.ts";
import { Repository } from "../src/core/repo/repository.ts";
import { LocalStore } from "../src/core/store/local.ts";
import { BlobIndex, type BlobLocation, type IndexFile } from "../src/core/repo/index-file.ts";
import { addSyntheticIndex, syntheticIndexTexts } from "../test/synthetic-index.ts";

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const n = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number`);
  return n;
}
const BLOBS = flag("blobs", 2_000_000);
const DB_MIB = flag("db-mib", 64);
const beforeAt = process.argv.indexOf("--before");
const BEFORE = beforeAt >= 0 ? process.argv[beforeAt + 1]! : null;
const PASSWORD = "bench-password";
process.env.DUCKBAK_PASSWORD = PASSWORD;

const BENCH = join(WORK, "index-bench");
const DB = join(BENCH, "small-blocks.duckdb");
const REPO = join(BENCH, "repo");
const RESTORE = join(BENCH, "restore");

async function sql(statements: string[]): Promise<void> {
  const instance = await DuckDBInstance.create(":memory:");
  const con = await instance.connect();
  try {
    for (const s of statements) await con.run(s);
  } finally {
    con.closeSync();
    instance.closeSync();
  }
}

/** A database of ~DB_MIB MiB of random-looking rows in 16 KiB blocks: one chunk per 16 KiB. */
async function makeDatabase(): Promise<void> {
  const rows = Math.round((DB_MIB * 1024 * 1024) / 80);
  await sql([
    `ATTACH '${DB}' AS d (BLOCK_SIZE 16384)`,
    `CREATE TABLE d.t AS SELECT range AS id, md5(range::VARCHAR) || md5((range * 7)::VARCHAR) AS s FROM range(${rows})`,
    "CHECKPOINT d",
  ]);
}

async function appendRows(round: number): Promise<void> {
  await sql([`ATTACH '${DB}' AS d`, `INSERT INTO d.t SELECT range + ${1e9 * round}, md5(random()::VARCHAR) FROM range(20000)`, "CHECKPOINT d"]);
}

/**
 * Heap bytes per blob, each structure loaded the way its build loads index files (parsed one at a
 * time from JSON text, the parsed file then dropped): the compact index, and the
 * Map<string, BlobLocation> of hex ids that earlier builds kept.
 */
function bytesPerBlob(blobs: number): { blobs: number; compact: number; compactHeap: number; map: number } {
  const texts = syntheticIndexTexts(blobs);
  const heap = () => {
    Bun.gc(true);
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  let base = heap();
  const index = new BlobIndex();
  texts.forEach((t) => index.addFile(JSON.parse(t) as IndexFile));
  const compactHeap = (heap() - base) / index.size;
  const compact = index.memoryBytes / index.size;
  base = heap();
  const map = new Map<string, BlobLocation>();
  for (const t of texts)
    for (const p of (JSON.parse(t) as IndexFile).packs)
      for (const [id, offset, length, raw] of p.blobs) if (!map.has(id)) map.set(id, { pack: p.id, offset, length, raw });
  const mapBytes = (heap() - base) / map.size;
  return { blobs: index.size, compact, compactHeap, map: mapBytes };
}

async function main(): Promise<void> {
  await ensureBinary();
  rmSync(BENCH, { recursive: true, force: true });
  mkdirSync(BENCH, { recursive: true });
  mkdirSync(OUT, { recursive: true });
  console.log(`database: ~${DB_MIB} MiB in 16 KiB blocks; ${BLOBS.toLocaleString()} synthetic blobs in the index`);
  await makeDatabase();
  const binaries = BEFORE ? [["before", BEFORE] as const, ["after", BINARY] as const] : [["after", BINARY] as const];
  const rows: string[][] = [];
  const results: Record<string, unknown> = { blobs: BLOBS, db_mib: DB_MIB };
  for (const [label, bin] of binaries) {
    rmSync(REPO, { recursive: true, force: true });
    const duckbak = async (args: string[]) => {
      const t = await runTimed([bin, ...args]);
      // The polled peak can miss the last moments before exit; time's %M (the largest process of
      // the tree: duckbak, or a child such as backup's lock holder) cannot.
      return { seconds: t.seconds, rssMiB: Math.round((t.duckbakKiB ?? 0) / 1024), treeMiB: Math.round((t.treeKiB ?? 0) / 1024) };
    };
    await duckbak(["init", "--repo", REPO]);
    const first = await duckbak(["backup", "--repo", REPO, DB]);
    rows.push([label, "backup (first, before the synthetic index)", `${first.rssMiB} MiB`, `${first.treeMiB} MiB`, fmtSec(first.seconds)]);
    const repo = await Repository.open(new LocalStore(REPO), PASSWORD);
    await addSyntheticIndex(repo, BLOBS);
    await appendRows(1);
    const runs: [string, string[]][] = [
      ["list", ["list", "--repo", REPO]],
      ["backup (incremental)", ["backup", "--repo", REPO, DB]],
      ["restore latest", ["restore", "latest", "--repo", REPO, "--restore-dir", RESTORE]],
      ["verify latest", ["verify", "latest", "--repo", REPO]],
      ["verify latest --read-data", ["verify", "latest", "--repo", REPO, "--read-data"]],
      ["verify (whole repository)", ["verify", "--repo", REPO]],
      ["stats", ["stats", "--repo", REPO]],
      ["cleanup --dry-run", ["cleanup", "--repo", REPO, "--keep-last", "5", "--dry-run"]],
      ["cleanup (drops the synthetic packs)", ["cleanup", "--repo", REPO, "--keep-last", "5"]],
    ];
    const out: Record<string, { seconds: number; rss_mib: number; tree_max_mib: number }> = {};
    for (const [name, args] of runs) {
      rmSync(RESTORE, { recursive: true, force: true });
      const r = await duckbak(args);
      out[name] = { seconds: r.seconds, rss_mib: r.rssMiB, tree_max_mib: r.treeMiB };
      rows.push([label, name, `${r.rssMiB} MiB`, `${r.treeMiB} MiB`, fmtSec(r.seconds)]);
    }
    results[label] = out;
  }
  console.log(table(["binary", "command", "peak RSS (polled)", "largest process (time %M)", "time"], rows));
  if (BLOBS === 0) return void writeFileSync(join(WORK, "index-memory-results.json"), JSON.stringify(results, null, 2));
  const b = (results.bytes_per_blob = bytesPerBlob(Math.min(BLOBS, 1_000_000)));
  const limit = (perBlob: number) => (250 * 1024 * 1024) / perBlob;
  console.log(`bytes per blob in memory (${b.blobs.toLocaleString()} blobs): compact table ${b.compact.toFixed(1)} (heap growth ${b.compactHeap.toFixed(1)}), Map of hex ids ${b.map.toFixed(1)} (heap only: low)`);
  for (const [name, per] of [["compact", b.compact], ["Map", b.map]] as const) {
    const n = limit(per);
    console.log(`  ${name}: 250 MiB = ${Math.round(n / 1e6)}M blobs = ${((n * 16384) / 2 ** 30).toFixed(0)} GiB of distinct data at 16 KiB blocks, ${((n * 262144) / 2 ** 40).toFixed(1)} TiB at 256 KiB`);
  }
  writeFileSync(join(WORK, "index-memory-results.json"), JSON.stringify(results, null, 2));
}

await main();
