import type { CAC } from "cac";
import { effectivePolicy } from "../../core/cleanup.ts";
import { runDaily } from "../../core/daily.ts";
import { BackupLog } from "../../core/log.ts";
import { loadContext, parseSeconds, resolveDatabases, resolveLogFile, type CommonFlags } from "../context.ts";
import { LOCK_WAIT_OPTION, lockNotices, lockWaitSeconds, releaseLocksOnSignal } from "../lock.ts";
import { printError, printWarning } from "../output.ts";
import { printBackupResult } from "./backup.ts";
import { cleanupSummary } from "./cleanup.ts";

interface DailyFlags extends Omit<CommonFlags, "json"> {
  logFile?: string;
  wait?: string;
  lockWait?: string;
}

export function registerDaily(cli: CAC): void {
  cli
    .command("daily", "Back up the configured databases, then delete old backups by the retention policy; each step goes to the backup log")
    .option("--config <file>", "Config file (default: ./duckbak.toml when present): databases, backup_dir, compression, wait, [retention]")
    .option("--log-file <file>", "Backup log (default: log_file from the config, else data/backup.log beside it)")
    .option("--backup-dir <dir>", "Backup folder (default: backup_dir from the config, else data/backups)")
    .option("--wait <seconds>", "Wait up to this long for a database that a writer has open (default: wait from the config, else 0)")
    .option(...LOCK_WAIT_OPTION)
    .example("duckbak daily --config /srv/app/duckbak.toml   # what `duckbak schedule install` runs")
    .action(async (flags: DailyFlags) => runDailyCommand(flags));
}

async function runDailyCommand(flags: DailyFlags): Promise<number> {
  const { config, backupDir } = loadContext(flags);
  const lockWait = lockWaitSeconds(flags.lockWait, config);
  const log = new BackupLog(resolveLogFile(flags.logFile, config));
  releaseLocksOnSignal();
  const notices = lockNotices(lockWait);
  const result = await runDaily({
    databases: resolveDatabases([], config),
    backupDir,
    policy: effectivePolicy(config.retention),
    log,
    configFile: config.file,
    compression: config.compression,
    waitSeconds: parseSeconds("--wait", flags.wait) ?? config.waitSeconds ?? 0,
    lockWaitSeconds: lockWait,
    onLockWait: notices.onWait,
    onLockBreak: notices.onBreak,
  });
  if (result.backup) printBackupResult(result.backup, config.compression ?? "gzip");
  if (result.cleanup) console.log(`Cleanup: ${cleanupSummary(result.cleanup)}`);
  if (result.cleanupSkipped) console.log(`Cleanup skipped: ${result.cleanupSkipped}.`);
  for (const e of result.errors) printError(e);
  if (log.error) printWarning(`${log.error.message}; this run is missing from the log`);
  console.log(`Daily run ${result.run}: ${result.status} (exit ${result.exitCode}), logged to ${log.path}`);
  return result.exitCode;
}
