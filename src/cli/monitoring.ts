// Monitoring around daily, backup and cleanup: the metrics file, notify_command and (daily only)
// healthcheck_url. Failures here are warnings: they never change the command's exit code.
import { readFileSync } from "node:fs";
import type { Config } from "../core/config.ts";
import { DuckbakError, ExitCode } from "../core/errors.ts";
import { listBackups } from "../core/list.ts";
import { archiveTarget, snapshotTarget, type BackupTarget } from "../core/monitoring/targets.ts";
import type { Repository } from "../core/repo/repository.ts";
import type { BackupLog } from "../core/log.ts";
import { ping, tail } from "../core/monitoring/healthcheck.ts";
import { writeMetricsFile } from "../core/monitoring/metrics.ts";
import { runNotifyCommand } from "../core/monitoring/notify.ts";
import type { MonitoredCommand, RunOutcome } from "../core/monitoring/outcome.ts";
import { printWarning } from "./output.ts";

/** What a command reports about its run; times, command, folder and repository are added here. */
export type RunReport = Omit<RunOutcome, "command" | "startedAt" | "endedAt" | "backupDir" | "repository">;

export interface MonitorContext {
  command: MonitoredCommand;
  config: Config;
  /** The backup folder, or null when the command does not use one (a repository alone). */
  backupDir: string | null;
  /**
   * The backup folder the metrics file reports when the run itself did not use it (a repository
   * backup or cleanup with backup_dir configured too): its series stay in the file.
   */
  configuredBackupDir?: string | null;
  /** The repository the command uses: the metrics file reports its snapshots. */
  repository?: { location: string; open: () => Promise<Repository> };
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
    const report: RunReport = { status: "failed", exitCode, archive: null, archiveBytes: null, snapshot: null, databases: [], deleted: 0, errors: [(err as Error).message] };
    await afterRun(ctx, { ...report, ...where(ctx), startedAt, endedAt: new Date() });
    throw err;
  }
  await afterRun(ctx, { ...result.report, ...where(ctx), startedAt, endedAt: new Date() });
  return result.exitCode;
}

const where = (ctx: MonitorContext) => ({ command: ctx.command, backupDir: ctx.backupDir, repository: ctx.repository?.location ?? null });

/** The targets' backups for the metrics file; a repository that cannot be read is left out, with a warning. */
async function metricsTargets(ctx: MonitorContext): Promise<BackupTarget[]> {
  const dir = ctx.backupDir ?? ctx.configuredBackupDir ?? null;
  const targets = dir === null ? [] : [archiveTarget(dir, await listBackups(dir))];
  if (ctx.repository) {
    try {
      targets.push(await snapshotTarget(await ctx.repository.open()));
    } catch (err) {
      warn(ctx, `metrics file: the repository's snapshots are left out: ${(err as Error).message}`);
    }
  }
  return targets;
}

async function afterRun(ctx: MonitorContext, outcome: RunOutcome): Promise<void> {
  const { metricsFile, notifyCommand } = ctx.config;
  if (metricsFile) {
    try {
      await writeMetricsFile(metricsFile, await metricsTargets(ctx), outcome);
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
