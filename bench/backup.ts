// Backup benchmark: `duckbak backup` (gzip, zstd, none) against cp and tar with gzip, pigz and
// zstd, all on one generated trading database, plus duckbak's peak memory and `duckbak list` time.
//
//   npm run bench                         ~1 GB database (30M trades), 3 runs of each command
//   BENCH_ROWS=3000000 npm run bench      ~100 MB; also --rows N
//   BENCH_RUNS=5, DUCKBAK_BINARY=/path    runs per command; binary to measure as it is (default
//                                         dist/duckbak, built first when missing or older than src/)
//
// The page cache cannot be dropped on the machines this runs on, so every figure is for a warm
// cache: the database is read once before timing. The database is cached in bench/work/ and
// reused; archives are deleted after each run. Results: a table on stdout and bench/work/results.json.
import { DuckDBInstance } from "@duckdb/node-api";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { availableParallelism, cpus, totalmem } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { compressMember, GZIP_LEVEL, ZSTD_LEVEL } from "../src/core/archive/codec.ts";

export const ROOT = resolve(import.meta.dir, "..");
export const WORK = join(ROOT, "bench/work");
export const OUT = join(WORK, "out");
// A binary named in DUCKBAK_BINARY is measured as it is; dist/duckbak is rebuilt when stale.
const GIVEN_BINARY = process.env.DUCKBAK_BINARY;
export const BINARY = resolve(GIVEN_BINARY ?? join(ROOT, "dist", "duckbak"));
// Bump when the generated data changes, so that a cached database of the old shape is not reused.
const DATA_VERSION = 1;

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value.replaceAll("_", ""));
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got '${value}'`);
  return n;
}

const rowsFlag = process.argv.indexOf("--rows");
export const ROWS = positiveInt("rows", rowsFlag >= 0 ? process.argv[rowsFlag + 1] : process.env.BENCH_ROWS, 30_000_000);
export const RUNS = positiveInt("BENCH_RUNS", process.env.BENCH_RUNS, 3);

// ---------------------------------------------------------------------------------------------
// Tools, binary, database

export async function run(argv: string[], opts: { env?: Record<string, string | undefined> } = {}): Promise<string> {
  const proc = Bun.spawn(argv, { env: opts.env ?? process.env, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`${argv.join(" ")} exited ${code}\n${err}${out}`);
  return out;
}

const onPath = (cmd: string) => Bun.which(cmd) !== null;

export async function ensureTools(): Promise<void> {
  const missing = [
    ["pigz", onPath("pigz")],
    ["zstd", onPath("zstd")],
    ["time", existsSync("/usr/bin/time")],
  ].flatMap(([pkg, present]) => (present ? [] : [pkg as string]));
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) throw new Error(`missing Debian packages: ${missing.join(" ")} (run: sudo apt-get install -y ${missing.join(" ")})`);
  console.log(`installing ${missing.join(", ")} (apt-get)…`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  try {
    await run(["apt-get", "install", "-y", "--no-install-recommends", ...missing], { env });
  } catch {
    // A fresh machine has no package lists yet.
    await run(["apt-get", "update"], { env });
    await run(["apt-get", "install", "-y", "--no-install-recommends", ...missing], { env });
  }
}

function newestMtime(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...readdirSync(path).map((n) => newestMtime(join(path, n))));
}

export async function ensureBinary(): Promise<void> {
  if (GIVEN_BINARY !== undefined) {
    if (!existsSync(BINARY)) throw new Error(`DUCKBAK_BINARY=${GIVEN_BINARY}: no such file`);
    return;
  }
  const sources = Math.max(newestMtime(join(ROOT, "src")), newestMtime(join(ROOT, "scripts/build.ts")));
  if (existsSync(BINARY) && statSync(BINARY).mtimeMs >= sources) return;
  console.log(`building ${BINARY}…`);
  await run([process.execPath, join(ROOT, "scripts/build.ts")], { env: { ...process.env, DUCKBAK_OUTFILE: BINARY } });
}

/**
 * One table of trades. Columns are derived from hashes of the row number: deterministic, varied
 * like real data (timestamps, 500 symbols, prices around a per-symbol level, round lots, sequential
 * ids, a free-text note), so neither DuckDB's own compression nor gzip finds it trivial.
 */
function tradesSql(rows: number): string {
  return `CREATE TABLE trades AS
    WITH base AS (SELECT i, hash(i) AS h, hash(i * 31 + 7) AS h2 FROM range(${rows}) t(i)),
    t AS (
      SELECT i AS trade_id,
             TIMESTAMP '2024-01-02 09:30:00' + to_microseconds((i * 2500 + h % 2000)::BIGINT) AS ts,
             'SYM' || lpad(((h >> 8) % 500)::VARCHAR, 3, '0') AS symbol,
             CASE WHEN h % 2 = 0 THEN 'BUY' ELSE 'SELL' END AS side,
             round((10 + ((h >> 8) % 500) * 1.7) * (1 + ((h2 % 20001)::DOUBLE - 10000) / 1e6), 4)::DECIMAL(18,4) AS price,
             ((1 + (h2 >> 16) % 50) * 100)::INTEGER AS quantity,
             (1000000000 + i * 3 + h2 % 3)::BIGINT AS order_id,
             round(((h2 >> 12) % 100000) / 1e4 * 0.35, 6) AS fee,
             ['XNYS','XNAS','ARCX','BATS','IEXG','EDGX','MEMX','EPRL'][(1 + (h2 >> 24) % 8)::BIGINT] AS venue,
             ((h2 >> 32) % 2000)::INTEGER AS trader_id,
             ['momentum','mean-reversion','vwap','twap','pairs','market-making','index-rebalance'][(1 + (h >> 20) % 7)::BIGINT]
               || '/' || ['us-eq','intl','etf'][(1 + (h >> 28) % 3)::BIGINT] AS strategy
      FROM base)
    SELECT *, format('{} {} {} @ {} on {} for T{:04d} ({})', side, quantity, symbol, price, venue, trader_id, strategy) AS note
    FROM t`;
}

export async function ensureDatabase(): Promise<string> {
  const path = join(WORK, `trades-${ROWS}r-v${DATA_VERSION}.duckdb`);
  if (existsSync(path)) return path;
  console.log(`generating ${basename(path)} (${ROWS.toLocaleString("en-US")} trades)…`);
  const started = performance.now();
  // Generated under another name, so that an interrupted run never leaves a database to reuse.
  const staging = `${path}.partial`;
  rmSync(staging, { force: true });
  rmSync(`${staging}.wal`, { force: true });
  const instance = await DuckDBInstance.create(staging);
  const con = await instance.connect();
  try {
    await con.run(tradesSql(ROWS));
    await con.run("CHECKPOINT");
  } finally {
    con.closeSync();
    instance.closeSync();
  }
  renameSync(staging, path);
  console.log(`  ${fmtBytes(statSync(path).size)} in ${fmtSec((performance.now() - started) / 1000)}`);
  return path;
}

/** Reads the file once so that every timed command finds it in the page cache. */
export async function warm(path: string): Promise<number> {
  const started = performance.now();
  const handle = await open(path, "r");
  const buf = new Uint8Array(4 * 1024 * 1024);
  try {
    while ((await handle.read(buf, 0, buf.length, null)).bytesRead > 0);
  } finally {
    await handle.close();
  }
  return (performance.now() - started) / 1000;
}

// ---------------------------------------------------------------------------------------------
// Measuring

interface Sample {
  seconds: number;
  /** user + system CPU time of the command and its children: less disturbed by other load than wall time. */
  cpuSeconds: number;
  /** 1-minute load average when the command ended: above the CPU count, the wall time is suspect. */
  load: number;
  outBytes: number;
  /** Time to fsync the output afterwards (baselines only; duckbak fsyncs its archive itself). */
  fsyncSeconds?: number;
  /** Peak RSS in KiB: of the whole process tree (GNU time), of duckbak, of its lock holder. */
  treeKiB?: number;
  duckbakKiB?: number;
  holderKiB?: number;
}

interface Case {
  label: string;
  kind: "duckbak" | "baseline";
  /** duckbak's --compression. */
  codec?: "gzip" | "zstd" | "none";
  argv: (db: string) => string[];
  output: string;
}

function children(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim().split(/\s+/)) if (c) out.push(Number(c));
    } catch {
      // thread or process gone
    }
  }
  return out;
}

function hwmKiB(pid: number): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function isHolder(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("__snapshot-holder");
  } catch {
    return false;
  }
}

const loadAverage = () => Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);

/**
 * Runs a command under GNU time, which reports CPU time and the peak RSS of the whole process
 * tree, while polling /proc for the high-water marks of the command itself and of its lock-holder
 * child (duckbak's `__snapshot-holder`) apart.
 */
export async function runTimed(argv: string[]): Promise<Omit<Sample, "outBytes"> & { stdout: string }> {
  const timeFile = join(OUT, ".time");
  const started = performance.now();
  const proc = Bun.spawn(["/usr/bin/time", "-f", "%U %S %M", "-o", timeFile, ...argv], {
    env: { ...process.env, NO_COLOR: "1" },
    stdout: "pipe",
    stderr: "pipe",
  });
  let duckbakKiB = 0;
  let holderKiB = 0;
  const poll = () => {
    for (const pid of children(proc.pid)) {
      duckbakKiB = Math.max(duckbakKiB, hwmKiB(pid));
      for (const child of children(pid)) if (isHolder(child)) holderKiB = Math.max(holderKiB, hwmKiB(child));
    }
  };
  const timer = setInterval(poll, 20);
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const seconds = (performance.now() - started) / 1000;
  clearInterval(timer);
  if (code !== 0) throw new Error(`${argv.join(" ")} exited ${code}\n${err}${out}`);
  const [user, sys, treeKiB] = readFileSync(timeFile, "utf8").trim().split("\n").pop()!.split(" ").map(Number);
  rmSync(timeFile);
  return { seconds, cpuSeconds: user! + sys!, load: loadAverage(), treeKiB, duckbakKiB, holderKiB, stdout: out };
}

export async function timed(argv: string[]): Promise<number> {
  const started = performance.now();
  await run(argv);
  return (performance.now() - started) / 1000;
}

async function measure(c: Case, db: string): Promise<Sample> {
  rmSync(c.output, { force: true });
  // Earlier runs' dirty pages are written back now rather than during this command.
  await run(["sync"]);
  const { treeKiB, duckbakKiB, holderKiB, ...times } = await runTimed(c.argv(db));
  const sample: Sample = c.kind === "duckbak" ? { ...times, treeKiB, duckbakKiB, holderKiB, outBytes: 0 } : { ...times, outBytes: 0, fsyncSeconds: await timed(["sync", c.output]) };
  sample.outBytes = statSync(c.output).size;
  return sample;
}

/** The member size of src/core/archive/writer.ts. */
const MEMBER_SIZE = 4 * 1024 * 1024;

/**
 * CPU time of duckbak's codec calls and of SHA-256 alone, on one thread, over the same file cut
 * into the writer's members (reads from the page cache included): the floor under the CPU time of
 * a backup. What a backup spends above it is duckbak's own overhead.
 */
function codecFloor(path: string): Record<"sha256" | "gzip" | "zstd", { cpu_seconds: number; out_bytes: number }> {
  const fd = openSync(path, "r");
  const size = statSync(path).size;
  const buf = new Uint8Array(MEMBER_SIZE);
  const cost = (work: (member: Uint8Array) => number) => {
    const before = process.cpuUsage();
    let out = 0;
    for (let pos = 0; pos < size; pos += MEMBER_SIZE) out += work(buf.subarray(0, readSync(fd, buf, 0, MEMBER_SIZE, pos)));
    const used = process.cpuUsage(before);
    return { cpu_seconds: (used.user + used.system) / 1e6, out_bytes: out };
  };
  try {
    const hasher = new Bun.CryptoHasher("sha256");
    return {
      sha256: cost((m) => (hasher.update(m), m.length)),
      gzip: cost((m) => compressMember("gzip", m).length),
      zstd: cost((m) => compressMember("zstd", m).length),
    };
  } finally {
    closeSync(fd);
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

// ---------------------------------------------------------------------------------------------
// Formatting

export function fmtBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e3).toFixed(1)} kB`;
}
export const fmtSec = (s: number) => (s < 10 ? `${s.toFixed(2)} s` : `${s.toFixed(1)} s`);
export const fmtMiB = (kib: number) => `${Math.round(kib / 1024)} MiB`;

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  await ensureTools();
  await ensureBinary();
  const db = await ensureDatabase();
  const dbBytes = statSync(db).size;
  const warmSeconds = await warm(db);
  const version = (await run([BINARY, "--version"])).trim();
  console.log(`database ${db}: ${fmtBytes(dbBytes)}, ${ROWS.toLocaleString("en-US")} trades`);
  console.log(`binary   ${BINARY} (${version})`);
  console.log(`machine  ${availableParallelism()} CPUs (${cpus()[0]?.model ?? "?"}), ${fmtBytes(totalmem())} RAM`);
  console.log(`page cache warm: the database was read once before timing (${fmtSec(warmSeconds)}); median of ${RUNS} runs each\n`);

  const dir = dirname(db);
  const file = basename(db);
  const duckbak = (name: string, ...flags: string[]) => (d: string) => [BINARY, "backup", d, "--backup-dir", OUT, "--name", name, ...flags];
  const tarWith = (out: string, filter: string) => () => ["tar", "-I", filter, "-cf", out, "-C", dir, file];
  const cases: Case[] = [
    { label: "duckbak backup (gzip)", kind: "duckbak", codec: "gzip", argv: duckbak("bench-gzip"), output: join(OUT, "bench-gzip.tar.gz") },
    { label: "duckbak backup --compression zstd", kind: "duckbak", codec: "zstd", argv: duckbak("bench-zstd", "--compression", "zstd"), output: join(OUT, "bench-zstd.tar.zst") },
    { label: "duckbak backup --no-compress", kind: "duckbak", codec: "none", argv: duckbak("bench-none", "--no-compress"), output: join(OUT, "bench-none.tar") },
    { label: "cp", kind: "baseline", argv: (d) => ["cp", d, join(OUT, "copy.duckdb")], output: join(OUT, "copy.duckdb") },
    { label: "tar czf", kind: "baseline", argv: () => ["tar", "czf", join(OUT, "tar.tar.gz"), "-C", dir, file], output: join(OUT, "tar.tar.gz") },
    { label: "tar + pigz -6 -p2", kind: "baseline", argv: tarWith(join(OUT, "pigz.tar.gz"), "pigz -6 -p2"), output: join(OUT, "pigz.tar.gz") },
    { label: "tar + zstd -3 -T0", kind: "baseline", argv: tarWith(join(OUT, "zstd.tar.zst"), "zstd -3 -T0"), output: join(OUT, "zstd.tar.zst") },
  ];

  // Rounds go through every command in turn, so that slow drift (thermal, other load) is shared.
  const samples = new Map<Case, Sample[]>(cases.map((c) => [c, []]));
  for (let round = 1; round <= RUNS; round++) {
    for (const c of cases) {
      const s = await measure(c, db);
      samples.get(c)!.push(s);
      console.log(`  run ${round}/${RUNS}  ${c.label.padEnd(34)} ${fmtSec(s.seconds).padStart(7)}  cpu ${fmtSec(s.cpuSeconds).padStart(7)}  load ${s.load.toFixed(2)}`);
      // Deleted at once in every round: when the last round kept its archives for `list`, cp and
      // --no-compress ran ~1.5 s slower in that round on the 1 GB database, every time.
      rmSync(c.output, { force: true });
    }
  }

  // `list` opens each archive and reads its first entry only; reading a whole archive is the contrast.
  const archives = cases.filter((c) => c.kind === "duckbak");
  for (const c of archives) await run(c.argv(db));
  const gz = archives.find((c) => c.codec === "gzip")!.output;
  const listRuns: number[] = [];
  const fullReadRuns: number[] = [];
  const startupRuns: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    listRuns.push(await timed([BINARY, "list", "--backup-dir", OUT]));
    startupRuns.push(await timed([BINARY, "--version"]));
    fullReadRuns.push(await timed(["tar", "-tzf", gz]));
  }
  const listed = await run([BINARY, "list", "--backup-dir", OUT, "--json"]);
  const listedNames = (JSON.parse(listed) as { backups: { name: string; error: string | null }[] }).backups.map((b) => (b.error ? `${b.name} (${b.error})` : b.name));
  for (const c of cases) rmSync(c.output, { force: true });

  console.log("  measuring the codec floor (one thread)…");
  const floor = codecFloor(db);

  const summary = cases.map((c) => {
    const ss = samples.get(c)!;
    const seconds = median(ss.map((s) => s.seconds));
    const fsyncSeconds = c.kind === "baseline" ? median(ss.map((s) => s.fsyncSeconds!)) : undefined;
    const outBytes = ss[ss.length - 1]!.outBytes;
    return {
      label: c.label,
      kind: c.kind,
      codec: c.codec,
      median_seconds: seconds,
      min_seconds: Math.min(...ss.map((s) => s.seconds)),
      median_cpu_seconds: median(ss.map((s) => s.cpuSeconds)),
      runs_seconds: ss.map((s) => s.seconds),
      runs_load: ss.map((s) => s.load),
      fsync_seconds: fsyncSeconds,
      throughput_mb_s: dbBytes / 1e6 / seconds,
      archive_bytes: outBytes,
      compression_ratio: dbBytes / outBytes,
      peak_rss_kib:
        c.kind === "duckbak"
          ? {
              tree: Math.max(...ss.map((s) => s.treeKiB!)),
              duckbak: Math.max(...ss.map((s) => s.duckbakKiB!)),
              lock_holder: Math.max(...ss.map((s) => s.holderKiB!)),
            }
          : undefined,
    };
  });

  const maxLoad = Math.max(...[...samples.values()].flat().map((s) => s.load));
  console.log(`\nBackup of ${fmtBytes(dbBytes)} (${ROWS.toLocaleString("en-US")} trades), median of ${RUNS}, warm page cache`);
  console.log(`time, MB/s: wall-clock median; CPU: user+system of the process tree; peak RSS from /proc VmHWM, tree from GNU time`);
  if (maxLoad > availableParallelism())
    console.log(`warning: load average reached ${maxLoad.toFixed(1)} on ${availableParallelism()} CPUs: something else ran; wall times are inflated, CPU times less so`);
  console.log(
    table(
      ["command", "time", "min", "MB/s", "CPU", "+fsync", "archive", "ratio", "peak RSS duckbak", "lock holder", "tree"],
      summary.map((s) => [
        s.label,
        fmtSec(s.median_seconds),
        fmtSec(s.min_seconds),
        s.throughput_mb_s.toFixed(0),
        fmtSec(s.median_cpu_seconds),
        s.fsync_seconds === undefined ? "(inside)" : fmtSec(s.fsync_seconds),
        fmtBytes(s.archive_bytes),
        s.compression_ratio.toFixed(2),
        s.peak_rss_kib ? fmtMiB(s.peak_rss_kib.duckbak) : "",
        s.peak_rss_kib ? fmtMiB(s.peak_rss_kib.lock_holder) : "",
        s.peak_rss_kib ? fmtMiB(s.peak_rss_kib.tree) : "",
      ]),
    ),
  );

  const duckbaks = summary.filter((s) => s.kind === "duckbak");
  const baselines = summary.filter((s) => s.kind === "baseline");
  const ratios = duckbaks.map((d) => ({
    label: d.label,
    vs: Object.fromEntries(
      baselines.map((b) => [b.label, { time_ratio: d.median_seconds / b.median_seconds, time_ratio_vs_fsynced: d.median_seconds / (b.median_seconds + b.fsync_seconds!) }]),
    ),
  }));
  console.log(`\nTime ratio duckbak / baseline (<1 = duckbak faster); in brackets: against the baseline plus an fsync of its output, which duckbak does`);
  console.log(
    table(
      ["", ...baselines.map((b) => b.label)],
      ratios.map((r) => [r.label, ...baselines.map((b) => `${r.vs[b.label]!.time_ratio.toFixed(2)} (${r.vs[b.label]!.time_ratio_vs_fsynced.toFixed(2)})`)]),
    ),
  );

  const list = { median_seconds: median(listRuns), startup_seconds: median(startupRuns), full_read_seconds: median(fullReadRuns), archives: listedNames };
  const cores = availableParallelism();
  const budget = duckbaks.map((d) => {
    const codec = d.codec === "gzip" || d.codec === "zstd" ? floor[d.codec].cpu_seconds : 0;
    return {
      label: d.label,
      cpu_seconds: d.median_cpu_seconds,
      codec_floor_cpu_seconds: codec,
      other_cpu_seconds: d.median_cpu_seconds - codec,
      wall_seconds: d.median_seconds,
      min_wall_seconds: d.min_seconds,
      codec_floor_wall_seconds: codec / cores,
    };
  });
  console.log(
    `\nCPU budget: the codecs alone, one thread, in 4 MiB members: gzip (libdeflate ${GZIP_LEVEL}) ${fmtSec(floor.gzip.cpu_seconds)},` +
      ` zstd ${ZSTD_LEVEL} ${fmtSec(floor.zstd.cpu_seconds)}, SHA-256 ${fmtSec(floor.sha256.cpu_seconds)} (reads included)`,
  );
  console.log(
    table(
      ["", "CPU", "codec", "rest", "wall", "min wall", `codec / ${cores} cores`],
      budget.map((b) => [b.label, fmtSec(b.cpu_seconds), fmtSec(b.codec_floor_cpu_seconds), fmtSec(b.other_cpu_seconds), fmtSec(b.wall_seconds), fmtSec(b.min_wall_seconds), fmtSec(b.codec_floor_wall_seconds)]),
    ),
  );

  console.log(
    `\nduckbak list over the 3 archives (${listedNames.join(", ")}): ${fmtSec(list.median_seconds)}` +
      ` (duckbak --version: ${fmtSec(list.startup_seconds)}; tar -tzf of the gzip archive, which reads it all: ${fmtSec(list.full_read_seconds)})`,
  );

  const results = {
    generated_at: new Date().toISOString(),
    database: { path: db, bytes: dbBytes, rows: ROWS, data_version: DATA_VERSION },
    binary: { path: BINARY, version },
    machine: { cpus: availableParallelism(), model: cpus()[0]?.model ?? null, ram_bytes: totalmem() },
    method: { runs: RUNS, statistic: "median", page_cache: "warm (database read once before timing; caches cannot be dropped)", warm_read_seconds: warmSeconds },
    commands: summary,
    ratios,
    codec_floor: floor,
    cpu_budget: budget,
    list,
  };
  writeFileSync(join(WORK, "results.json"), JSON.stringify(results, null, 2) + "\n");
  console.log(`\nwrote ${join(WORK, "results.json")}`);
}

// Imported by bench/repo.ts for its helpers: run only as a script.
if (import.meta.main) await main();
