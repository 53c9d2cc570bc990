// The programmatic API. Nothing here prints; results are typed and failures are DuckbakErrors.
import { resolve } from "node:path";
import { createBackup, type BackupEvent, type BackupResult } from "./backup.ts";
import { listBackups, type BackupInfo } from "./list.ts";
import { DEFAULT_BACKUP_DIR } from "./config.ts";
import type { Compression } from "./naming.ts";

export interface BackupManagerOptions {
  /** Where archives live; default `data/backups`. */
  backupDir?: string;
  /** Databases that `createBackup` backs up. */
  databases?: string[];
  compression?: Compression;
  /** Seconds to wait for a database locked by a writer. */
  waitSeconds?: number;
}

export class BackupManager {
  readonly backupDir: string;
  readonly databases: string[];
  readonly compression: Compression;
  readonly waitSeconds: number;

  constructor(opts: BackupManagerOptions = {}) {
    this.backupDir = resolve(opts.backupDir ?? DEFAULT_BACKUP_DIR);
    this.databases = (opts.databases ?? []).map((d) => resolve(d));
    this.compression = opts.compression ?? "gzip";
    this.waitSeconds = opts.waitSeconds ?? 0;
  }

  /** The seed's `create_backup(backup_name, compress)`. */
  createBackup(opts: { name?: string; compression?: Compression; databases?: string[]; onEvent?: (e: BackupEvent) => void } = {}): Promise<BackupResult> {
    return createBackup({
      databases: opts.databases ?? this.databases,
      backupDir: this.backupDir,
      name: opts.name,
      compression: opts.compression ?? this.compression,
      waitSeconds: this.waitSeconds,
      onEvent: opts.onEvent,
    });
  }

  listBackups(): Promise<BackupInfo[]> {
    return listBackups(this.backupDir);
  }
}

export { createBackup, listBackups };
export type { BackupEvent, BackupResult, BackupInfo, Compression };
export * from "./errors.ts";
export type { Manifest, ManifestDatabase, ManifestFile } from "./manifest.ts";
