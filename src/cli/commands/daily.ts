import type { CAC } from "cac";
import { effectivePolicy } from "../../core/cleanup.ts";
import { runDaily, type DailyOffsiteResult } from "../../core/daily.ts";
import { BackupLog } from "../../core/log.ts";
import { ENCRYPTION_KEY_OPTION, keysFor, loadContext, parseSeconds, resolveDatabases, resolveLogFile, settingsFrom, type CommonFlags, type Context } from "../context.ts";
import { databaseSettings, DEFAULT_HOOK_TIMEOUT_SECONDS } from "../../core/config.ts";
import { describePolicy, validatePolicy } from "../../core/retention.ts";
import { DEFAULT_MAX_UNUSED } from "../../core/repo/gc.ts";
import { LOCK_WAIT_OPTION, lockNotices, lockWaitSeconds, releaseLocksOnSignal } from "../lock.ts";
import { formatBytes, plural, printError, printJson, printWarning, snakeKeys } from "../output.ts";
import { backupJson, backupReport, databaseOutcomes, printBackupResult, printRepoBackupResult, repoBackupJson } from "./backup.ts";
import { monitored, type RunReport } from "../monitoring.ts";
import { cleanupJson, cleanupSummary, repoCleanupJson, repoCleanupSummary } from "./cleanup.ts";
import { REPO_OPTION, archivesInUse, repoLocation, repositoryOnce, targetLocation, targetPassword } from "../repo.ts";

interface DailyFlags extends CommonFlags {
  logFile?: string;
  wait?: string;
  lockWait?: string;
  dryRun?: boolean;
  repo?: string;
}

export function registerDaily(cli: CAC): void {
  cli
    .command("daily", "Back up the configured databases, then delete old backups by the retention policy; each step goes to the backup log")
    .option("--config <file>", "Config file (default: ./duckbak.toml when present): databases, backup_dir, compression, wait, [retention]")
    .option("--log-file <file>", "Backup log (default: log_file from the config, else data/backup.log beside it)")
    .option("--backup-dir <dir>", "Backup folder (default: backup_dir from the config, else data/backups)")
    .option("--wait <seconds>", "Wait up to this long for a database that a writer has open (default: wait from the config, else 0)")
    .option(...LOCK_WAIT_OPTION)
    .option(...REPO_OPTION)
    .option("--dry-run", "Show what the run would do (databases, hooks, retention) without doing it")
    .option("--json", "Print the result as JSON (the backup, the cleanup, the run's status)")
    .option(...ENCRYPTION_KEY_OPTION)
    .example("duckbak daily --config /srv/app/duckbak.toml   # what `duckbak schedule install` runs")
    .action(async (flags: DailyFlags) => runDailyCommand(flags));
}

/** Where tonight's run goes: the archive (backup folder), the repository, the off-site repository. */
interface DailyTargets {
  archive: boolean;
  location: string | null;
  offsite: string | null;
}

function dailyTargets(flags: DailyFlags, { config }: Context): DailyTargets {
  const location = repoLocation(flags.repo, config);
  const archive = archivesInUse(location, config, flags.backupDir);
  return { archive, location, offsite: config.offsite ? targetLocation(config.offsite) : null };
}

/**
 * What `daily` would do, hooks, archive, repository, retention and off-site included, without
 * running, opening or deleting anything or writing the log. The policy is checked as the run
 * would check it.
 */
function printDryRun({ config, backupDir }: Context, t: DailyTargets, logFile: string, json: boolean): number {
  const timeout = config.hookTimeoutSeconds ?? DEFAULT_HOOK_TIMEOUT_SECONDS;
  const policy = effectivePolicy(config.retention);
  validatePolicy(policy);
  const compression = config.compression ?? "gzip";
  const maxUnused = config.maxUnused ?? DEFAULT_MAX_UNUSED;
  const databases = resolveDatabases([], config).map((path) => ({ ...databaseSettings(config, path), path }));
  if (json)
    return printJson("daily", {
      dry_run: true,
      config: config.file ?? null,
      log_file: logFile,
      databases: databases.map((d) => ({ path: d.path, hot: Boolean(d.hot), before_backup: d.beforeBackup || null, after_backup: d.afterBackup || null, hook_timeout_seconds: timeout })),
      archive: t.archive ? { backup_dir: backupDir, compression } : null,
      repository: t.location ? { location: t.location, max_unused: maxUnused } : null,
      policy: snakeKeys(policy),
      policy_text: describePolicy(policy),
      offsite: t.offsite ? { location: t.offsite, action: t.location ? "copy" : "snapshot" } : null,
    });
  console.log(`Dry run: nothing is backed up, run or deleted.`);
  console.log(`Config: ${config.file ?? "(none)"}; log: ${logFile}`);
  for (const d of databases) {
    console.log(`would back up ${d.path}${d.hot ? " (hot copy if a writer holds it)" : ""}`);
    if (d.beforeBackup) console.log(`  before_backup (timeout ${timeout}s): ${d.beforeBackup}`);
    if (d.afterBackup) console.log(`  after_backup  (timeout ${timeout}s, runs whatever happens once before_backup ran): ${d.afterBackup}`);
  }
  if (t.archive) console.log(`into a new archive (${compression}) in the backup folder ${backupDir}`);
  if (t.location) console.log(`into a new snapshot in the repository ${t.location}`);
  console.log(`then, for each, if every database made it in, apply the retention policy: ${describePolicy(policy)}`);
  if (t.archive) console.log(`  in ${backupDir}: delete the archives it does not keep`);
  if (t.location) console.log(`  in ${t.location}: forget the snapshots it does not keep, then delete unused packs and repack until at most ${Math.round(maxUnused * 100)}% of the pack bytes are unused`);
  if (t.offsite)
    console.log(
      t.location
        ? `then copy tonight's snapshot to ${t.offsite} and apply the same policy there`
        : `then take tonight's snapshot in ${t.offsite} directly (no local repository) and apply the same policy there`,
    );
  return 0;
}

async function runDailyCommand(flags: DailyFlags): Promise<number> {
  const ctx = loadContext(flags);
  const { archive, location, offsite } = dailyTargets(flags, ctx);
  if (flags.dryRun) return printDryRun(ctx, { archive, location, offsite }, resolveLogFile(flags.logFile, ctx.config), flags.json === true);
  const { config, backupDir } = ctx;
  const lockWait = lockWaitSeconds(flags.lockWait, config);
  const log = new BackupLog(resolveLogFile(flags.logFile, config));
  releaseLocksOnSignal();
  const notices = lockNotices(lockWait);
  // Opened once: the run and then the metrics file use it.
  const repository = location ? repositoryOnce(location, config) : undefined;
  const offsiteRepository = offsite ? repositoryOnce(offsite, config, () => targetPassword(config)) : undefined;
  // Without a local repository, off-site is where tonight's snapshot goes: monitoring reports it.
  return monitored({ command: "daily", config, backupDir: archive ? backupDir : null, repository: repository ?? offsiteRepository, log }, async () => {
    const result = await runDaily({
      databases: resolveDatabases([], config),
      backupDir,
      policy: effectivePolicy(config.retention),
      log,
      configFile: config.file,
      compression: config.compression,
      waitSeconds: parseSeconds("--wait", flags.wait) ?? config.waitSeconds ?? 0,
      settings: settingsFrom(config),
      hookTimeoutSeconds: config.hookTimeoutSeconds,
      lockWaitSeconds: lockWait,
      maxUnused: config.maxUnused,
      keys: keysFor(flags, config),
      onLockWait: notices.onWait,
      onLockBreak: notices.onBreak,
      archive,
      repository,
      offsite: offsiteRepository,
    });
    if (log.error) printWarning(`${log.error.message}; this run is missing from the log`);
    if (flags.json) {
      for (const e of result.errors) printError(e);
      const body = {
        run: result.run,
        status: result.status,
        log_file: log.path,
        backup: result.backup && backupJson(result.backup),
        cleanup: result.cleanup && cleanupJson(result.cleanup),
        cleanup_skipped: result.cleanupSkipped,
        repository: location ?? null,
        snapshot: result.snapshot && location ? repoBackupJson(result.snapshot, location) : null,
        repo_cleanup: result.repoCleanup && repoCleanupJson(result.repoCleanup),
        repo_cleanup_skipped: result.repoCleanupSkipped,
        offsite: result.offsite && offsiteJson(result.offsite),
        errors: result.errors.map((e) => e.message),
      };
      printJson("daily", body, result.exitCode, result.errors.map((e) => e.message).join("; ") || undefined);
    } else {
      if (result.backup) printBackupResult(result.backup, config.compression ?? "gzip");
      if (result.cleanup) console.log(`Cleanup: ${cleanupSummary(result.cleanup)}`);
      if (result.cleanupSkipped) console.log(`Cleanup skipped: ${result.cleanupSkipped}.`);
      if (result.snapshot && location) printRepoBackupResult(result.snapshot, location);
      if (result.repoCleanup) console.log(`Repository cleanup: ${repoCleanupSummary(result.repoCleanup)}`);
      if (result.repoCleanupSkipped) console.log(`Repository cleanup skipped: ${result.repoCleanupSkipped}.`);
      if (result.offsite?.copy) {
        const c = result.offsite.copy;
        const what = c.copied ? `${plural(c.newBlobs, "new chunk")}, ${formatBytes(c.uploadedBytes)} written` : "already there";
        console.log(`Off-site: snapshot ${c.target.slice(0, 8)} in ${result.offsite.location} (${what})`);
      }
      if (result.offsite?.snapshot) printRepoBackupResult(result.offsite.snapshot, result.offsite.location);
      if (result.offsite?.cleanup) console.log(`Off-site cleanup: ${repoCleanupSummary(result.offsite.cleanup)}`);
      for (const e of result.errors) printError(e);
      console.log(`Daily run ${result.run}: ${result.status} (exit ${result.exitCode}), logged to ${log.path}`);
    }
    const base = result.backup ? backupReport(result.backup, result.exitCode) : null;
    const snapshot = result.snapshot ?? result.offsite?.snapshot ?? null;
    const report: RunReport = {
      status: result.status,
      exitCode: result.exitCode,
      archive: base?.archive ?? null,
      archiveBytes: base?.archiveBytes ?? null,
      snapshot: snapshot?.snapshot ?? null,
      databases: databaseOutcomes([result.backup?.databases ?? [], snapshot?.databases ?? []]),
      deleted: result.cleanup?.dryRun === false ? result.cleanup.deleted.length : 0,
      errors: [...(base?.errors ?? []), ...result.errors.map((e) => e.message)],
    };
    return { exitCode: result.exitCode, report };
  });
}

function offsiteJson(o: DailyOffsiteResult) {
  const c = o.copy;
  return {
    location: o.location,
    copy: c && { source: c.source, target: c.target, created_at: c.timestamp, copied: c.copied, new_blobs: c.newBlobs, uploaded_bytes: c.uploadedBytes },
    snapshot: o.snapshot && repoBackupJson(o.snapshot, o.location),
    cleanup: o.cleanup && repoCleanupJson(o.cleanup),
  };
}
