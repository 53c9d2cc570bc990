import type { CAC } from "cac";
import { runningHere } from "../../core/fsutil.ts";
import { describeHolder, lockPath, removeRepoLock } from "../../core/lock.ts";
import { loadContext, type CommonFlags } from "../context.ts";
import { printWarning } from "../output.ts";

export function registerUnlock(cli: CAC): void {
  cli
    .command("unlock", "Remove the backup folder's lock left by a duckbak run that is gone")
    .option("--backup-dir <dir>", "Backup folder (default: backup_dir from the config, else data/backups)")
    .option("--config <file>", "Config file (default: ./duckbak.toml when present)")
    .action(async (flags: Omit<CommonFlags, "json">) => runUnlock(flags));
}

async function runUnlock(flags: Omit<CommonFlags, "json">): Promise<number> {
  const { backupDir } = loadContext(flags);
  const removed = await removeRepoLock(backupDir);
  if (!removed) {
    console.log(`No lock in ${backupDir}`);
    return 0;
  }
  const { holder } = removed;
  console.log(`Removed ${lockPath(backupDir)}, the lock of ${describeHolder(holder)}`);
  if (holder && runningHere(holder.host, holder.pid))
    printWarning(`PID ${holder.pid} is still running: it and the next duckbak run may now change the folder at the same time`);
  return 0;
}
