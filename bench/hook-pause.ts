// The application's pause between before_backup and after_backup, for the benchmark database
// (~1 GB, made by bench/backup.ts), against `cp` of the same file in the same minutes. The hooks
// write timestamps, so the pause is measured as the application sees it (its before hook done ->
// its after hook started), besides duckbak's own `paused_ms`. Warm page cache, like bench/backup.ts.
//
//   bun bench/hook-pause.ts                 BENCH_RUNS (3) rounds of cp and of duckbak, medians
//   DUCKBAK_BINARY=/path bun bench/...      the binary to measure (default dist/duckbak)
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { BINARY, RUNS, WORK, ensureBinary, ensureDatabase, fmtSec, median, run, table, timed, warm } from "./backup.ts";

const db = await ensureDatabase();
await ensureBinary();
const dir = join(WORK, "hook-pause");
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const stamp = (name: string) => `date +%s%N > ${join(dir, name)}`;
const config = join(dir, "duckbak.toml");
writeFileSync(config, `[[database]]\npath = ${JSON.stringify(db)}\nbefore_backup = "${stamp("before")}"\nafter_backup = "${stamp("after")}"\n`);
await warm(db);

const cp: number[] = [];
const hookToHook: number[] = [];
const paused: number[] = [];
const loads: number[] = [];
for (let i = 0; i < RUNS; i++) {
  cp.push(await timed(["cp", db, join(dir, "cp.duckdb")]));
  rmSync(join(dir, "cp.duckdb"));
  const bk = join(dir, "bk");
  const out = JSON.parse(await run([BINARY, "backup", "--config", config, "--backup-dir", bk, "--no-compress", "--json"]));
  const ns = (name: string) => BigInt(readFileSync(join(dir, name), "utf8").trim());
  hookToHook.push(Number(ns("after") - ns("before")) / 1e9);
  paused.push(out.databases[0].paused_ms / 1000);
  rmSync(bk, { recursive: true, force: true });
  loads.push(loadavg()[0]!);
}

console.log(`${BINARY}, ${db}, ${RUNS} runs, 1-minute load ${loads.map((l) => l.toFixed(1)).join(", ")}`);
console.log(
  table(
    ["", "median", "runs", "× cp"],
    [
      ["cp of the file", fmtSec(median(cp)), cp.map(fmtSec).join(", "), "1.00"],
      ["pause, hook to hook", fmtSec(median(hookToHook)), hookToHook.map(fmtSec).join(", "), (median(hookToHook) / median(cp)).toFixed(2)],
      ["duckbak's paused_ms", fmtSec(median(paused)), paused.map(fmtSec).join(", "), (median(paused) / median(cp)).toFixed(2)],
    ],
  ),
);
rmSync(dir, { recursive: true, force: true });
