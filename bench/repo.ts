// Repository benchmark (issue 9's goals): a first snapshot of the ~1 GB trades database, then N
// daily snapshots each after appending ~1% rows and a CHECKPOINT. Measures, in the same run:
//   - total repository size against ONE `backup --compression zstd` archive of the final database
//   - an incremental snapshot's wall time against `cp` + `sync` of the file and a full zstd archive backup
//   - restore of the latest snapshot against `zstd -d` of the full archive
//   - verify --read-data (whole repository) against that restore
//   - peak RSS of every duckbak command
//
//   bun bench/repo.ts                       30 snapshots on the ~1 GB database (30M trades)
//   bun bench/repo.ts --snapshots 5         a short run; --rows N (or BENCH_ROWS) for another size
//   BENCH_RUNS=3                            runs of each baseline and of restore/verify (median)
//
// Warm page cache (see bench/backup.ts). Results: a table on stdout and bench/work/repo-results.json.
import { DuckDBInstance } from "@duckdb/node-api";
import { copyFileSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { availableParallelism, cpus } from "node:os";
import { BINARY, OUT, ROWS, RUNS, WORK, ensureBinary, ensureDatabase, ensureTools, fmtBytes, fmtMiB, fmtSec, median, run, runTimed, table, warm } from "./backup.ts";

const flag = process.argv.indexOf("--snapshots");
const SNAPSHOTS = flag >= 0 ? Number(process.argv[flag + 1]) : 30;
if (!Number.isInteger(SNAPSHOTS) || SNAPSHOTS < 1) throw new Error("--snapshots must be a whole number >= 1");
process.env.DUCKBAK_PASSWORD = "bench-password";

const BENCH = join(WORK, "repo-bench");
const DB = join(BENCH, "trades.duckdb");
const REPO = join(BENCH, "repo");
const ARCHIVES = join(BENCH, "archives");

function du(path: string): number {
  let n = 0;
  for (const e of readdirSync(path, { withFileTypes: true, recursive: true })) if (e.isFile()) n += statSync(join(e.parentPath, e.name)).size;
  return n;
}

/** Appends ~1% rows (copies of every 100th trade under new ids) and checkpoints. */
async function appendOnePercent(day: number): Promise<void> {
  const instance = await DuckDBInstance.create(DB);
  const con = await instance.connect();
  try {
    const offset = ROWS * (day + 1);
    await con.run(`INSERT INTO trades SELECT * REPLACE (trade_id + ${offset} AS trade_id, order_id + ${offset} AS order_id) FROM trades WHERE trade_id % 100 = ${day % 100} AND trade_id < ${ROWS}`);
    await con.run("CHECKPOINT");
  } finally {
    con.closeSync();
    instance.closeSync();
  }
}

interface Timed {
  seconds: number;
  rssKiB: number;
  stdout: string;
}

async function duckbak(args: string[]): Promise<Timed> {
  const t = await runTimed([BINARY, ...args]);
  return { seconds: t.seconds, rssKiB: Math.max(t.duckbakKiB ?? 0, 0), stdout: t.stdout };
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  await ensureTools();
  await ensureBinary();
  const base = await ensureDatabase();
  rmSync(BENCH, { recursive: true, force: true });
  mkdirSync(ARCHIVES, { recursive: true });
  // A cache folder of this run's own: no sum cache from an earlier run (README, "Only changed blocks are hashed").
  process.env.XDG_CACHE_HOME = join(BENCH, "cache");
  mkdirSync(OUT, { recursive: true });
  copyFileSync(base, DB);
  await warm(DB);
  console.log(`database ${fmtBytes(statSync(DB).size)} (${ROWS.toLocaleString("en-US")} trades), ${SNAPSHOTS} daily snapshots, ${RUNS} runs per baseline`);
  console.log(`machine  ${availableParallelism()} CPUs (${cpus()[0]?.model ?? "?"}); warm page cache; figures are noisy on a shared machine\n`);

  await run([BINARY, "init", "--repo", REPO]);
  const first = await duckbak(["backup", "--repo", REPO, DB]);
  console.log(`first snapshot: ${fmtSec(first.seconds)}, repository ${fmtBytes(du(REPO))}`);
  const incremental: Timed[] = [];
  for (let day = 1; day <= SNAPSHOTS; day++) {
    await appendOnePercent(day);
    await warm(DB);
    await run(["sync"]);
    const t = await duckbak(["backup", "--repo", REPO, "--json", DB]);
    incremental.push(t);
    const hashed = JSON.parse(t.stdout).stats.hashed_bytes as number;
    console.log(`day ${String(day).padStart(2)}: database ${fmtBytes(statSync(DB).size)}, snapshot ${fmtSec(t.seconds)} (${fmtBytes(hashed)} hashed), repository ${fmtBytes(du(REPO))}`);
  }
  const repoBytes = du(REPO);
  const dbBytes = statSync(DB).size;

  // Baselines on the final database.
  const cp: number[] = [];
  const zstdBackup: Timed[] = [];
  let archive = "";
  for (let i = 0; i < RUNS; i++) {
    const copy = join(OUT, "copy.duckdb");
    rmSync(copy, { force: true });
    await run(["sync"]);
    const started = performance.now();
    await run(["cp", DB, copy]);
    await run(["sync", copy]);
    cp.push((performance.now() - started) / 1000);
    rmSync(copy, { force: true });
    rmSync(ARCHIVES, { recursive: true, force: true });
    await run(["sync"]);
    zstdBackup.push(await duckbak(["backup", "--compression", "zstd", "--backup-dir", ARCHIVES, "--name", "full", DB]));
    archive = join(ARCHIVES, "full.tar.zst");
  }
  const archiveBytes = statSync(archive).size;

  const restore: Timed[] = [];
  const unzstd: number[] = [];
  const verify: Timed[] = [];
  for (let i = 0; i < RUNS; i++) {
    const dir = join(OUT, "restore");
    rmSync(dir, { recursive: true, force: true });
    await run(["sync"]);
    restore.push(await duckbak(["restore", "latest", "--repo", REPO, "--restore-dir", dir]));
    rmSync(dir, { recursive: true, force: true });
    const tar = join(OUT, "full.tar");
    rmSync(tar, { force: true });
    await run(["sync"]);
    const started = performance.now();
    await run(["zstd", "-q", "-d", "-f", archive, "-o", tar]);
    await run(["sync", tar]);
    unzstd.push((performance.now() - started) / 1000);
    rmSync(tar, { force: true });
    verify.push(await duckbak(["verify", "--repo", REPO, "--read-data"]));
  }
  const list = await duckbak(["list", "--repo", REPO]);
  const stats = await duckbak(["stats", "--repo", REPO]);
  const cleanup = await duckbak(["cleanup", "--repo", REPO, "--keep-last", String(Math.max(1, SNAPSHOTS - 2))]);

  const inc = median(incremental.map((t) => t.seconds));
  const rows = [
    ["repository size / one zstd archive", `${fmtBytes(repoBytes)} / ${fmtBytes(archiveBytes)}`, (repoBytes / archiveBytes).toFixed(2), "<= 1.5"],
    ["incremental snapshot / cp + sync", `${fmtSec(inc)} / ${fmtSec(median(cp))}`, (inc / median(cp)).toFixed(2), "<= 2"],
    ["incremental snapshot / full zstd backup", `${fmtSec(inc)} / ${fmtSec(median(zstdBackup.map((t) => t.seconds)))}`, (inc / median(zstdBackup.map((t) => t.seconds))).toFixed(2), "<= 0.25"],
    ["restore latest / zstd -d (+ sync)", `${fmtSec(median(restore.map((t) => t.seconds)))} / ${fmtSec(median(unzstd))}`, (median(restore.map((t) => t.seconds)) / median(unzstd)).toFixed(2), "<= 1.3"],
    ["verify --read-data / restore", `${fmtSec(median(verify.map((t) => t.seconds)))} / ${fmtSec(median(restore.map((t) => t.seconds)))}`, (median(verify.map((t) => t.seconds)) / median(restore.map((t) => t.seconds))).toFixed(2), "<= 1.5"],
  ];
  console.log("\n" + table(["", "measured", "ratio", "goal"], rows));
  const rss = {
    first_snapshot: first.rssKiB,
    incremental_snapshot: Math.max(...incremental.map((t) => t.rssKiB)),
    zstd_archive_backup: Math.max(...zstdBackup.map((t) => t.rssKiB)),
    restore: Math.max(...restore.map((t) => t.rssKiB)),
    verify_read_data: Math.max(...verify.map((t) => t.rssKiB)),
    list: list.rssKiB,
    stats: stats.rssKiB,
    cleanup: cleanup.rssKiB,
  };
  console.log("\npeak RSS of the duckbak process (goal <= 250 MiB):");
  console.log(table(["command", "peak RSS"], Object.entries(rss).map(([k, v]) => [k, fmtMiB(v)])));
  const results = {
    generated_at: new Date().toISOString(),
    database: { rows: ROWS, final_bytes: dbBytes },
    snapshots: SNAPSHOTS,
    runs: RUNS,
    machine: { cpus: availableParallelism(), model: cpus()[0]?.model ?? null },
    seconds: {
      first_snapshot: first.seconds,
      incremental_snapshots: incremental.map((t) => t.seconds),
      cp_sync: cp,
      zstd_archive_backup: zstdBackup.map((t) => t.seconds),
      restore: restore.map((t) => t.seconds),
      zstd_d_sync: unzstd,
      verify_read_data: verify.map((t) => t.seconds),
    },
    bytes: { repository: repoBytes, zstd_archive: archiveBytes, database: dbBytes },
    ratios: Object.fromEntries(rows.map((r) => [r[0], Number(r[2])])),
    peak_rss_kib: rss,
  };
  writeFileSync(join(WORK, "repo-results.json"), JSON.stringify(results, null, 2) + "\n");
  console.log(`\nwrote ${join(WORK, "repo-results.json")}`);
}

await main();
