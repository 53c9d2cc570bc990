import { existsSync } from "node:fs";
import { mkdir, access, constants } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { hostname } from "node:os";
import { DuckbakError, ExitCode, UsageError, fsError } from "./errors.ts";
import { createStreamingBlockCheck, type CheckedBlocks } from "./duckdb/blocks.ts";
import { isKnownStorageVersion } from "./duckdb/compat.ts";
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
import type { KeyLookup } from "./keys.ts";

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
  /** Keys of encrypted databases. */
  keys?: KeyLookup;
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
  | {
      path: string;
      ok: true;
      entry: string;
      bytes: number;
      durationMs: number;
      pausedMs?: number;
      /** The source's own block checksums failed while it was copied: backed up anyway, flagged. */
      sourceDamage: string[];
      /** The embedded DuckDB could not open it (why): copied under a lock taken without DuckDB. */
      rawReason?: string;
    }
  | { path: string; ok: false; error: DuckbakError };

export interface BackupResult {
  /** The archive written, or null when no database could be backed up. */
  archive: string | null;
  archiveBytes: number;
  manifest: Manifest | null;
  databases: DatabaseBackupResult[];
}

const RESERVED_PER_DATABASE = 800;

/** At most 3 problems of 200 characters each, so that they fit the manifest's reserved room. */
function fitProblems(problems: string[]): string[] {
  const lines = problems.slice(0, 3).map((p) => (p.length > 200 ? p.slice(0, 199) + "…" : p));
  if (problems.length > 3) lines[2] = `${lines[2]!.slice(0, 160)} (and ${problems.length - 3} more)`;
  return lines;
}

/**
 * DuckDB's block checksums of a database's main file, checked on the bytes as they stream into a
 * backup (archive or repository): push each chunk of the main file in order, then finish for the
 * manifest's source_blocks and the result's sourceDamage (one line per problem, naming the source).
 */
export function sourceBlockCheck(snap: DatabaseSnapshot): {
  push(chunk: Uint8Array, checked?: CheckedBlocks): void;
  finish(): { sourceBlocks: NonNullable<ManifestDatabase["source_blocks"]>; sourceDamage: string[] };
} {
  // The file the bytes come from (a private copy for a database captured between hooks).
  const check = createStreamingBlockCheck(snap.files.find((f) => f.role === "main")!.path, isKnownStorageVersion);
  return {
    push: check.push,
    finish() {
      const blocks = check.finish();
      return {
        sourceBlocks: {
          state: blocks.state,
          problems: blocks.state === "damaged" ? fitProblems(blocks.problems) : blocks.state === "skipped" ? [blocks.reason] : [],
        },
        sourceDamage: blocks.state === "damaged" ? blocks.problems.map((p) => `${snap.path}: ${p}`) : [],
      };
    },
  };
}

/**
 * 0 when every database was backed up sound; a database not backed up wins (3, or 1 when no
 * archive was written); else 7 when a source failed its own block checksums.
 */
export function backupExitCode(result: BackupResult): ExitCode {
  if (result.databases.some((d) => !d.ok)) return result.archive ? ExitCode.PARTIAL : ExitCode.ERROR;
  return result.databases.some((d) => d.ok && d.sourceDamage.length > 0) ? ExitCode.SOURCE_DAMAGED : ExitCode.OK;
}

function stemTaken(dir: string, stem: string): boolean {
  return archivesOfStem(dir, stem).length > 0;
}

function* archivePaths(dir: string, stem: string, ext: string, explicit: boolean): Generator<string> {
  for (const s of explicit ? [stem] : stemCandidates(stem)) if (!stemTaken(dir, s)) yield join(dir, s + ext);
}

async function prepareBackupDir(dir: string): Promise<void> {
  // A snapshot repository is encrypted: a plain archive written into it would sit there in the clear.
  if (existsSync(join(dir, "config")) && existsSync(join(dir, "keys")))
    throw new UsageError(`${dir}: is a snapshot repository, not a backup folder; back up into it with --repo ${dir}`);
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
      encrypted: header.encrypted,
      ...(s.rawReason === undefined ? {} : { open_error: s.rawReason }),
    },
    tables: s.tables,
    source_blocks: { state: "skipped", problems: [] },
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
    keys: opts.keys,
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
        // Room for what is only known after the copy (block damage found on the way).
        const reserved = serializeManifest(manifest).length + RESERVED_PER_DATABASE * manifest.databases.length;
        await writer.addManifest(serializeManifest(manifest, reserved), now);
        opts.progress?.start(set.snapshots.reduce((n, s) => n + s.files.reduce((m, f) => m + f.size, 0), 0), "backing up");
        for (const [i, snap] of set.snapshots.entries()) {
          const started = performance.now();
          const db = manifest.databases[i]!;
          const total = snap.files.reduce((n, f) => n + f.size, 0);
          emit({ type: "database-start", path: snap.path, bytes: total });
          const check = sourceBlockCheck(snap);
          for (const [j, file] of snap.files.entries()) {
            const meta = { mode: file.mode, uid: file.uid, gid: file.gid, owner: db.files[j]!.owner, group: db.files[j]!.group };
            const { sha256 } = await writer.addFile(
              db.files[j]!.entry,
              file.path,
              file.size,
              file.mtime,
              meta,
              (n) => {
                opts.progress?.advance(n);
                emit({ type: "progress", path: snap.path, bytes: n });
              },
              file.role === "main" ? check.push : undefined,
            );
            db.files[j]!.sha256 = sha256;
          }
          const { sourceBlocks, sourceDamage } = check.finish();
          db.source_blocks = sourceBlocks;
          const durationMs = Math.round(performance.now() - started);
          results.set(snap.path, { path: snap.path, ok: true, entry: db.entry, bytes: total, durationMs, pausedMs: snap.pausedMs, sourceDamage, rawReason: snap.rawReason });
          emit({ type: "database-done", path: snap.path, bytes: total, durationMs });
        }
        const done = await writer.finish(serializeManifest(manifest, reserved), archivePaths(backupDir, stem, ext, opts.name !== undefined));
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
