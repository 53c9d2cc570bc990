import type { CAC } from "cac";
import { runningHere } from "../../core/fsutil.ts";
import { describeHolder, lockPath, removeRepoLock } from "../../core/lock.ts";
import { loadContext, type CommonFlags } from "../context.ts";
import { printJson, printWarning } from "../output.ts";

export function registerUnlock(cli: CAC): void {
  cli
    .command("unlock", "Remove the backup folder's lock left by a duckbak run that is gone")
    .option("--backup-dir <dir>", "Backup folder (default: backup_dir from the config, else data/backups)")
    .option("--config <file>", "Config file (default: ./duckbak.toml when present)")
    .option("--json", "Print the result as JSON")
    .action(async (flags: CommonFlags) => runUnlock(flags));
}

async function runUnlock(flags: CommonFlags): Promise<number> {
  const { backupDir } = loadContext(flags);
  const removed = await removeRepoLock(backupDir);
  const stillRunning = removed?.holder ? runningHere(removed.holder.host, removed.holder.pid) : false;
  if (flags.json) {
    if (stillRunning) printStillRunning(removed!.holder!.pid);
    return printJson("unlock", {
      backup_dir: backupDir,
      lock_file: lockPath(backupDir),
      removed: removed !== null,
      holder: removed?.holder ?? null,
      holder_running: stillRunning,
    });
  }
  if (!removed) {
    console.log(`No lock in ${backupDir}`);
    return 0;
  }
  const { holder } = removed;
  console.log(`Removed ${lockPath(backupDir)}, the lock of ${describeHolder(holder)}`);
  if (stillRunning) printStillRunning(holder!.pid);
  return 0;
}

const printStillRunning = (pid: number) =>
  printWarning(`PID ${pid} is still running: it and the next duckbak run may now change the folder at the same time`);
