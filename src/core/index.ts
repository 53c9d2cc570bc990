// The programmatic API. Nothing here prints; results are typed and failures are DuckbakErrors.
import { dirname, resolve } from "node:path";
import { acquireRepoLock, DEFAULT_LOCK_WAIT_SECONDS } from "./lock.ts";
import { createBackup, type BackupEvent, type BackupResult } from "./backup.ts";
import { listBackups, resolveBackupRef, type BackupInfo } from "./list.ts";
import { verifyBackup, type VerifyResult } from "./verify.ts";
import { restoreBackup, withExtractedBackup, type RestoreOptions, type RestoreResult } from "./restore.ts";
import { DEFAULT_BACKUP_DIR, DEFAULT_LOG_FILE } from "./config.ts";
import { cleanupBackups, effectivePolicy, type CleanupResult } from "./cleanup.ts";
import { runDaily, type DailyResult } from "./daily.ts";
import { BackupLog } from "./log.ts";
import type { RetentionPolicy } from "./retention.ts";
import type { Compression } from "./naming.ts";
import type { KeyLookup } from "./keys.ts";

export interface BackupManagerOptions {
  /** Where archives live; default `data/backups`. */
  backupDir?: string;
  /** Databases that `createBackup` backs up. */
  databases?: string[];
  compression?: Compression;
  /** Seconds to wait for a database locked by a writer. */
  waitSeconds?: number;
  /** Seconds to wait for another duckbak run holding the backup folder (default 60). */
  lockWaitSeconds?: number;
  /** Keys of encrypted databases (see keyLookup). */
  keys?: KeyLookup;
}

export class BackupManager {
  readonly backupDir: string;
  readonly databases: string[];
  readonly compression: Compression;
  readonly waitSeconds: number;
  readonly lockWaitSeconds: number;
  readonly keys?: KeyLookup;

  constructor(opts: BackupManagerOptions = {}) {
    this.backupDir = resolve(opts.backupDir ?? DEFAULT_BACKUP_DIR);
    this.databases = (opts.databases ?? []).map((d) => resolve(d));
    this.compression = opts.compression ?? "gzip";
    this.waitSeconds = opts.waitSeconds ?? 0;
    this.lockWaitSeconds = opts.lockWaitSeconds ?? DEFAULT_LOCK_WAIT_SECONDS;
    this.keys = opts.keys;
  }

  /** Runs `fn` holding the backup folder's lock, as the CLI's commands do (a scheduled daily may run meanwhile). */
  private async locked<T>(command: string, fn: () => Promise<T>): Promise<T> {
    const lock = await acquireRepoLock(this.backupDir, { command, waitSeconds: this.lockWaitSeconds });
    try {
      return await fn();
    } finally {
      lock.release();
    }
  }

  /** The seed's `create_backup(backup_name, compress)`. */
  createBackup(opts: { name?: string; compression?: Compression; databases?: string[]; onEvent?: (e: BackupEvent) => void } = {}): Promise<BackupResult> {
    return this.locked("backup", () =>
      createBackup({
        databases: opts.databases ?? this.databases,
        backupDir: this.backupDir,
        name: opts.name,
        compression: opts.compression ?? this.compression,
        waitSeconds: this.waitSeconds,
        keys: this.keys,
        onEvent: opts.onEvent,
      }),
    );
  }

  listBackups(): Promise<BackupInfo[]> {
    return listBackups(this.backupDir);
  }

  /** `name` as shown by listBackups, or a path to an archive. */
  verifyBackup(name: string, opts: { quick?: boolean } = {}): Promise<VerifyResult> {
    return verifyBackup(resolveBackupRef(name, this.backupDir), { keys: this.keys, ...opts });
  }

  /** The seed's `restore_backup(name, overwrite)`, plus restoreDir, only and verify. */
  restoreBackup(name: string, opts: RestoreOptions = {}): Promise<RestoreResult> {
    const ref = resolveBackupRef(name, this.backupDir);
    opts = { keys: this.keys, ...opts };
    return dirname(ref.path) === this.backupDir ? this.locked("restore", () => restoreBackup(ref, opts)) : restoreBackup(ref, opts);
  }

  /**
   * The seed's `cleanup_old_backups(keep_days=30, keep_minimum=5)`, plus GFS rules. Defaults
   * apply as in `duckbak cleanup` (see effectivePolicy).
   */
  cleanupOldBackups(policy: RetentionPolicy = {}, opts: { dryRun?: boolean } = {}): Promise<CleanupResult> {
    const run = () => cleanupBackups({ backupDir: this.backupDir, policy: effectivePolicy({}, policy), dryRun: opts.dryRun });
    return opts.dryRun ? run() : this.locked("cleanup", run);
  }
}

/** The seed's `create_daily_backup`: backup, then cleanup, logged to `logFile` (default data/backup.log). */
export function createDailyBackup(opts: BackupManagerOptions & { logFile?: string; policy?: RetentionPolicy } = {}): Promise<DailyResult> {
  const manager = new BackupManager(opts);
  return runDaily({
    databases: manager.databases,
    backupDir: manager.backupDir,
    compression: manager.compression,
    waitSeconds: manager.waitSeconds,
    keys: manager.keys,
    policy: effectivePolicy({}, opts.policy),
    log: new BackupLog(resolve(opts.logFile ?? DEFAULT_LOG_FILE)),
  });
}

export { createBackup, listBackups, resolveBackupRef, verifyBackup, restoreBackup, withExtractedBackup };
export { keyLookup, type KeyLookup, type KeySource } from "./keys.ts";
export type { BackupEvent, BackupResult, BackupInfo, Compression, VerifyResult, RestoreOptions, RestoreResult, CleanupResult, DailyResult, RetentionPolicy };
export * from "./errors.ts";
export type { Manifest, ManifestDatabase, ManifestFile } from "./manifest.ts";
