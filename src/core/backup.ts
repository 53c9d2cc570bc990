import { mkdir, access, constants } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { hostname } from "node:os";
import { DuckbakError, UsageError, fsError } from "./errors.ts";
import { removeStaleTemporaries } from "./fsutil.ts";
import { archiveExtension, assignEntryNames, defaultStem, stemCandidates, validateStem, type Compression } from "./naming.ts";
import { archivesOfStem } from "./list.ts";
import { ownershipOf } from "./owners.ts";
import { SHA256_PLACEHOLDER, formatMode, serializeManifest, MANIFEST_FORMAT, MANIFEST_FORMAT_VERSION, type Manifest, type ManifestDatabase } from "./manifest.ts";
import { acquireSnapshots, type DatabaseSnapshot, type SnapshotOptions } from "./snapshot.ts";
import type { HookRun } from "./hooks.ts";
import { ArchiveWriter } from "./archive/writer.ts";
import { CodecPool } from "./archive/codec-pool.ts";
import type { ProgressSink } from "./progress.ts";
import { DUCKBAK_VERSION } from "./version.ts";

export interface BackupOptions {
  databases: string[];
  backupDir: string;
  /** Replaces the `backup_YYYYMMDD_HHMMSS` stem; an existing name is an error, never overwritten. */
  name?: string;
  compression?: Compression;
  /** Seconds to wait for a database whose lock a writer holds. */
  waitSeconds?: number;
  /** Each database's hooks; see SnapshotOptions. */
  settings?: SnapshotOptions["settings"];
  hookTimeoutSeconds?: number;
  /** Retries of a hot copy; see SnapshotOptions. */
  hotRetries?: number;
  now?: Date;
  onEvent?: (e: BackupEvent) => void;
  /** Told the bytes of every file to copy, then each chunk copied. */
  progress?: ProgressSink;
}

export type BackupEvent =
  | { type: "database-start"; path: string; bytes: number }
  | { type: "progress"; path: string; bytes: number }
  | { type: "database-done"; path: string; bytes: number; durationMs: number }
  | { type: "database-failed"; path: string; error: DuckbakError }
  | { type: "hook"; run: HookRun };

export type DatabaseBackupResult =
  | { path: string; ok: true; entry: string; bytes: number; durationMs: number; pausedMs?: number }
  | { path: string; ok: false; error: DuckbakError };

export interface BackupResult {
  /** The archive written, or null when no database could be backed up. */
  archive: string | null;
  archiveBytes: number;
  manifest: Manifest | null;
  databases: DatabaseBackupResult[];
}

function stemTaken(dir: string, stem: string): boolean {
  return archivesOfStem(dir, stem).length > 0;
}

function* archivePaths(dir: string, stem: string, ext: string, explicit: boolean): Generator<string> {
  for (const s of explicit ? [stem] : stemCandidates(stem)) if (!stemTaken(dir, s)) yield join(dir, s + ext);
}

async function prepareBackupDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
  } catch (err) {
    throw fsError(err, dir, "prepare backup folder");
  }
  await removeStaleTemporaries(dir);
}

/** The manifest's fields for one captured database (shared with repository snapshots). */
export function describeSnapshot(s: DatabaseSnapshot, entry: string): ManifestDatabase {
  const header = s.header;
  return {
    name: basename(s.path),
    original_path: s.path,
    resolved_path: s.realPath ?? s.path,
    size_bytes: s.files[0]!.size,
    entry,
    files: s.files.map((f) => ({
      entry: f.role === "main" ? entry : entry + f.name.slice(basename(s.path).length),
      role: f.role,
      name: f.name,
      size_bytes: f.size,
      sha256: SHA256_PLACEHOLDER,
      mode: formatMode(f.mode),
      ...ownershipOf(f.uid, f.gid),
    })),
    duckdb: {
      creator_version: header.creatorVersion,
      storage_version: header.storageVersion,
      block_alloc_size: header.active?.blockAllocSize ?? null,
      reader_version: s.readerVersion,
    },
    tables: s.tables,
    consistency: s.consistency,
    ...(s.hot && {
      hot: { attempts: s.hot.attempts, rejected: s.hot.rejected, wal_bytes_kept: s.hot.walBytesKept, wal_bytes_dropped: s.hot.walBytesDropped },
    }),
  };
}

/**
 * Backs up databases into one archive in `backupDir`. A database that is missing, not DuckDB, or
 * locked by a writer is reported as failed; the others are still backed up.
 */
export async function createBackup(opts: BackupOptions): Promise<BackupResult> {
  const now = opts.now ?? new Date();
  const compression = opts.compression ?? "gzip";
  const backupDir = resolve(opts.backupDir);
  if (opts.name !== undefined) {
    const problem = validateStem(opts.name);
    if (problem) throw new UsageError(`--name '${opts.name}' ${problem}`);
  }
  const databases = [...new Set(opts.databases.map((d) => resolve(d)))];
  if (databases.length === 0) throw new UsageError("no databases to back up");
  await prepareBackupDir(backupDir);
  const stem = opts.name ?? defaultStem(now);
  const ext = archiveExtension(compression);
  if (opts.name !== undefined && stemTaken(backupDir, stem))
    throw new DuckbakError(`${join(backupDir, stem + ext)}: a backup named '${stem}' already exists; not overwritten`);

  const emit = opts.onEvent ?? (() => {});
  const set = await acquireSnapshots(databases, {
    waitSeconds: opts.waitSeconds,
    settings: opts.settings,
    hookTimeoutSeconds: opts.hookTimeoutSeconds,
    hotRetries: opts.hotRetries,
    backup: join(backupDir, stem + ext),
    tempDir: backupDir,
    onHook: (run) => emit({ type: "hook", run }),
  });
  const failed = new Map(set.failures.map((f) => [f.path, f.error]));
  for (const f of set.failures) emit({ type: "database-failed", path: f.path, error: f.error });

  const results = new Map<string, DatabaseBackupResult>();
  let archive: string | null = null;
  let archiveBytes = 0;
  let manifest: Manifest | null = null;
  const pool = compression === "none" || set.snapshots.length === 0 ? null : new CodecPool();
  try {
    if (set.snapshots.length > 0) {
      const entries = assignEntryNames(set.snapshots.map((s) => basename(s.path)));
      manifest = {
        format: MANIFEST_FORMAT,
        format_version: MANIFEST_FORMAT_VERSION,
        timestamp: now.toISOString(),
        duckbak_version: DUCKBAK_VERSION,
        host: hostname(),
        compression,
        databases: set.snapshots.map((s, i) => describeSnapshot(s, entries[i]!)),
        failed: set.failures.map((f) => ({ path: f.path, error: f.error.message })),
      };
      const writer = await ArchiveWriter.create(join(backupDir, stem + ext), compression, pool);
      try {
        await writer.addManifest(serializeManifest(manifest), now);
        opts.progress?.start(set.snapshots.reduce((n, s) => n + s.files.reduce((m, f) => m + f.size, 0), 0), "backing up");
        for (const [i, snap] of set.snapshots.entries()) {
          const started = performance.now();
          const db = manifest.databases[i]!;
          const total = snap.files.reduce((n, f) => n + f.size, 0);
          emit({ type: "database-start", path: snap.path, bytes: total });
          for (const [j, file] of snap.files.entries()) {
            const meta = { mode: file.mode, uid: file.uid, gid: file.gid, owner: db.files[j]!.owner, group: db.files[j]!.group };
            const { sha256 } = await writer.addFile(db.files[j]!.entry, file.path, file.size, file.mtime, meta, (n) => {
              opts.progress?.advance(n);
              emit({ type: "progress", path: snap.path, bytes: n });
            });
            db.files[j]!.sha256 = sha256;
          }
          const durationMs = Math.round(performance.now() - started);
          results.set(snap.path, { path: snap.path, ok: true, entry: db.entry, bytes: total, durationMs, pausedMs: snap.pausedMs });
          emit({ type: "database-done", path: snap.path, bytes: total, durationMs });
        }
        const done = await writer.finish(serializeManifest(manifest), archivePaths(backupDir, stem, ext, opts.name !== undefined));
        archive = done.path;
        archiveBytes = done.size;
      } catch (err) {
        await writer.abort();
        throw err;
      }
    }
  } catch (err) {
    // The archive as a whole failed (disk full, unreadable file): every database in it failed.
    if (!(err instanceof DuckbakError) && !(err as NodeJS.ErrnoException)?.code) throw err; // a bug, not a failure to report
    const error = err instanceof DuckbakError ? err : fsError(err, backupDir, "backup");
    for (const s of set.snapshots) {
      failed.set(s.path, error);
      results.delete(s.path);
    }
    manifest = null;
  } finally {
    pool?.close();
    await set.release();
  }
  return {
    archive,
    archiveBytes,
    manifest,
    databases: databases.map((p) => results.get(p) ?? { path: p, ok: false, error: failed.get(p)! }),
  };
}
