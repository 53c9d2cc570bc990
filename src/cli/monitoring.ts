// Monitoring around daily, backup and cleanup: the metrics file, notify_command and (daily only)
// healthcheck_url. Failures here are warnings: they never change the command's exit code.
import { readFileSync } from "node:fs";
import type { Config } from "../core/config.ts";
import { DuckbakError, ExitCode } from "../core/errors.ts";
import { listBackups } from "../core/list.ts";
import type { BackupLog } from "../core/log.ts";
import { ping, tail } from "../core/monitoring/healthcheck.ts";
import { writeMetricsFile } from "../core/monitoring/metrics.ts";
import { runNotifyCommand } from "../core/monitoring/notify.ts";
import type { MonitoredCommand, RunOutcome } from "../core/monitoring/outcome.ts";
import { printWarning } from "./output.ts";

/** What a command reports about its run; times, command and folder are added here. */
export type RunReport = Omit<RunOutcome, "command" | "startedAt" | "endedAt" | "backupDir">;

export interface MonitorContext {
  command: MonitoredCommand;
  config: Config;
  backupDir: string;
  /** daily's log: warnings go there too, and its tail goes with a /fail ping. */
  log?: BackupLog;
}

function warn(ctx: MonitorContext, message: string): void {
  printWarning(message);
  ctx.log?.write("warn", "monitoring", { error: message });
}

/** Pings of the health check are for the scheduled job: daily. */
const pings = (ctx: MonitorContext) => (ctx.command === "daily" ? ctx.config.healthcheckUrl : undefined);

/**
 * Runs `fn` (the command, printing its own output) between the health check's /start and the
 * monitoring of its result. A thrown error is reported as a failed run, then rethrown.
 */
export async function monitored(ctx: MonitorContext, fn: () => Promise<{ exitCode: number; report: RunReport }>): Promise<number> {
  const { metricsFile, notifyCommand } = ctx.config;
  const url = pings(ctx);
  if (!metricsFile && !notifyCommand && !url) return (await fn()).exitCode;
  const startedAt = new Date();
  if (url) {
    const problem = await ping(url, "start");
    if (problem) warn(ctx, problem);
  }
  let result: { exitCode: number; report: RunReport };
  try {
    result = await fn();
  } catch (err) {
    const exitCode = err instanceof DuckbakError ? err.exitCode : ExitCode.ERROR;
    const report: RunReport = { status: "failed", exitCode, archive: null, archiveBytes: null, databases: [], deleted: 0, errors: [(err as Error).message] };
    await afterRun(ctx, { ...report, command: ctx.command, startedAt, endedAt: new Date(), backupDir: ctx.backupDir });
    throw err;
  }
  await afterRun(ctx, { ...result.report, command: ctx.command, startedAt, endedAt: new Date(), backupDir: ctx.backupDir });
  return result.exitCode;
}

async function afterRun(ctx: MonitorContext, outcome: RunOutcome): Promise<void> {
  const { metricsFile, notifyCommand } = ctx.config;
  if (metricsFile) {
    try {
      await writeMetricsFile(metricsFile, await listBackups(ctx.backupDir), outcome);
    } catch (err) {
      warn(ctx, `metrics file not written: ${(err as Error).message}`);
    }
  }
  if (notifyCommand) {
    const problem = await runNotifyCommand(notifyCommand, outcome);
    if (problem) warn(ctx, problem);
  }
  const url = pings(ctx);
  if (url) {
    const ok = outcome.status === "ok";
    let body: string | undefined;
    if (!ok) {
      let log = "";
      try {
        log = ctx.log ? readFileSync(ctx.log.path, "utf8") : "";
      } catch {
        // no log: the summary alone
      }
      body = tail(`${log}${outcome.errors.join("\n")}\n`);
    }
    const problem = await ping(url, ok ? "success" : "fail", body);
    if (problem) warn(ctx, problem);
  }
}
