// S3 benchmark: the repository on a local S3 protocol server (moto, behind a byte-counting proxy)
// against the same repository in a local folder, on one generated database.
//
//   bun bench/s3.ts                       ~1 GB database (12M rows)
//   BENCH_S3_ROWS=1500000 bun bench/s3.ts ~120 MB (what the shared development machine can afford)
//   DUCKBAK_BINARY=/path                  binary to measure (default dist/duckbak; build it first)
//
// Figures: bytes over the wire for a first backup and for one after a ~1% change (appended rows
// and a checkpoint), wall times of backup, restore and copy against moto, and of backup and
// restore against a local repository. moto keeps objects in Python memory and is far slower than
// a real store per request, so times against it are an upper bound for the client's own cost.
// Results: a table on stdout and bench/work/s3-results.json.
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { runSql as sql } from "../scripts/sample-databases.ts";
import { startMoto, startProxy } from "../test/s3-server.ts";

const ROOT = resolve(import.meta.dir, "..");
const WORK = join(ROOT, "bench/work/s3");
const BINARY = resolve(process.env.DUCKBAK_BINARY ?? join(ROOT, "dist", "duckbak"));
const ROWS = Number((process.env.BENCH_S3_ROWS ?? "12000000").replaceAll("_", ""));
const PASSWORD = "bench password";

// Rows that neither DuckDB nor zstd shrinks much: ids and hex digests.
const rowsSql = (from: number, to: number) =>
  `SELECT range AS id, md5(range::VARCHAR) AS a, md5((range * 31 + 7)::VARCHAR) AS b, (hash(range) % 100000)::INTEGER AS v FROM range(${from}, ${to})`;

async function main(): Promise<void> {
  if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run 'npm run build' first`);
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  const db = join(WORK, "bench.duckdb");
  console.log(`generating ${ROWS.toLocaleString("en-US")} rows…`);
  await sql(db, [`CREATE TABLE t AS ${rowsSql(0, ROWS)}`, "CHECKPOINT"]);
  const dbBytes = statSync(db).size;

  const moto = await startMoto();
  const proxy = await startProxy(moto.port);
  await moto.createBucket("bench");
  const env = moto.env({ AWS_ENDPOINT_URL: proxy.endpoint, DUCKBAK_PASSWORD: PASSWORD });
  const timed = async (args: string[]): Promise<{ seconds: number; up: number; down: number }> => {
    proxy.reset();
    const t0 = performance.now();
    const p = Bun.spawn([BINARY, ...args], { env, stdout: "pipe", stderr: "pipe" });
    const [, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    if (code !== 0) throw new Error(`duckbak ${args.join(" ")} exited ${code}: ${err}`);
    return { seconds: (performance.now() - t0) / 1000, up: proxy.bytesUp, down: proxy.bytesDown };
  };
  const results: Record<string, unknown> = { rows: ROWS, database_bytes: dbBytes };
  try {
    const s3 = "s3://bench/repo";
    const local = join(WORK, "local-repo");
    await timed(["init", "--repo", s3]);
    await timed(["init", "--repo", local]);
    const first = await timed(["backup", "--repo", s3, db]);
    const firstLocal = await timed(["backup", "--repo", local, db]);
    await sql(db, [`INSERT INTO t ${rowsSql(ROWS, ROWS + Math.ceil(ROWS / 100))}`, "CHECKPOINT"]);
    const second = await timed(["backup", "--repo", s3, db]);
    const secondLocal = await timed(["backup", "--repo", local, db]);
    const restoreS3 = await timed(["restore", "latest", "--repo", s3, "--restore-dir", join(WORK, "r-s3")]);
    const restoreLocal = await timed(["restore", "latest", "--repo", local, "--restore-dir", join(WORK, "r-local")]);
    await timed(["init", "--repo", "s3://bench/copy"]);
    const copy = await timed(["copy", "--repo", local, "--to", "s3://bench/copy"]);
    const t0 = performance.now();
    await Bun.spawn(["sh", "-c", `cp '${db}' '${join(WORK, "cp.duckdb")}' && sync`]).exited;
    const cp = (performance.now() - t0) / 1000;
    Object.assign(results, {
      first_backup: { seconds: first.seconds, bytes_up: first.up },
      incremental_backup: { seconds: second.seconds, bytes_up: second.up, fraction_of_first: second.up / first.up },
      restore_s3: { seconds: restoreS3.seconds, bytes_down: restoreS3.down },
      copy_local_to_s3: { seconds: copy.seconds, bytes_up: copy.up },
      local: { first_backup_seconds: firstLocal.seconds, incremental_backup_seconds: secondLocal.seconds, restore_seconds: restoreLocal.seconds },
      cp_sync_seconds: cp,
    });
    const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
    const s = (n: number) => `${n.toFixed(2)} s`;
    console.log(`database ${mb(dbBytes)} (${ROWS} rows), 1% appended between backups`);
    console.log(`first backup      S3 ${s(first.seconds)}  ${mb(first.up)} up    local ${s(firstLocal.seconds)}`);
    console.log(`incremental       S3 ${s(second.seconds)}  ${mb(second.up)} up (${((100 * second.up) / first.up).toFixed(1)}% of the first)    local ${s(secondLocal.seconds)}`);
    console.log(`restore latest    S3 ${s(restoreS3.seconds)}  ${mb(restoreS3.down)} down    local ${s(restoreLocal.seconds)}`);
    console.log(`copy local -> S3  ${s(copy.seconds)}  ${mb(copy.up)} up`);
    console.log(`cp + sync         ${s(cp)}`);
  } finally {
    await proxy.stop();
    await moto.stop();
  }
  writeFileSync(join(ROOT, "bench/work/s3-results.json"), JSON.stringify(results, null, 2) + "\n");
}

await main();
