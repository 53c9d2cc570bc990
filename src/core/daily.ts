// `daily`: the scheduled routine. Under the backup folder's lock it backs up, then, if every database
// was backed up, applies the retention policy, and records each step in the backup log (line format
// in log.ts). Events, all with `run=<id>` so one run's lines can be picked out:
//   start     command pid host version config backup_dir databases
//   lock_wait (warn) holder;  lock_broken (warn) holder;  locked waited_ms
//   hook      hook=before_backup|after_backup path status=ok|failed|timeout exit_code duration_ms
//             ((error) when not ok);  hook_output  hook path line  (one per line the hook printed)
//   database  status=ok path bytes duration_ms [paused_ms] | status=failed (error) path error
//   backup    archive archive_bytes databases_ok databases_failed (error when no archive)
//   delete    file path bytes created_at;  unreadable (warn) path error
//   cleanup   policy kept deleted freed_bytes unreadable | (warn) status=skipped reason
//   error     (error) error
//   snapshot  repository snapshot databases_ok databases_failed added_bytes (error when none)
//   repo_cleanup  repository policy kept forgotten packs_deleted packs_repacked freed_bytes | (warn) status=skipped reason
//   offsite   repository snapshot source copied new_blobs uploaded_bytes (the copy of tonight's
//             snapshot; without a repository, a `snapshot` line for the offsite one instead);
//             then its own repo_cleanup line
//   end       status=ok|partial|failed exit_code duration_ms
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { resolve } from "node:path";
import { createBackup, type BackupEvent, type BackupResult } from "./backup.ts";
import type { KeyLookup } from "./keys.ts";
import { cleanupBackups, type CleanupResult } from "./cleanup.ts";
import { DuckbakError, ExitCode } from "./errors.ts";
import { acquireRepoLock, describeHolder, type AcquireOptions } from "./lock.ts";
import type { BackupLog } from "./log.ts";
import type { HookRun } from "./hooks.ts";
import type { SnapshotOptions } from "./snapshot.ts";
import type { Compression } from "./naming.ts";
import { describePolicy, validatePolicy, type RetentionPolicy } from "./retention.ts";
import { DUCKBAK_VERSION } from "./version.ts";
import { createRepoSnapshot, type RepoBackupResult } from "./repo/backup.ts";
import { cleanupRepository, type RepoCleanupResult } from "./repo/gc.ts";
import type { Repository } from "./repo/repository.ts";
import { copySnapshots, type CopiedSnapshot } from "./repo/copy.ts";

export interface DailyOptions {
  databases: string[];
  backupDir: string;
  policy: RetentionPolicy;
  log: BackupLog;
  /** Recorded in the log's start line. */
  configFile?: string | null;
  compression?: Compression;
  /** Seconds to wait for a database a writer holds. */
  waitSeconds?: number;
  /** Each database's hooks; see SnapshotOptions. */
  settings?: SnapshotOptions["settings"];
  hookTimeoutSeconds?: number;
  /** Keys of encrypted databases. */
  keys?: KeyLookup;
  /** Seconds to wait for another run's lock on the backup folder. */
  lockWaitSeconds?: number;
  onLockWait?: AcquireOptions["onWait"];
  onLockBreak?: AcquireOptions["onBreak"];
  /** cleanup's repacking threshold in the repositories (default DEFAULT_MAX_UNUSED). */
  maxUnused?: number;
  /** false: no archive (only a repository is configured). Default true. */
  archive?: boolean;
  /** A snapshot repository to snapshot into (and apply the policy to), opened inside the run so a failure is logged. */
  repository?: { location: string; open: () => Promise<Repository> };
  /**
   * `offsite`: tonight's repository snapshot is copied there, or, with no repository configured,
   * a snapshot is taken there directly; then the policy is applied there too.
   */
  offsite?: { location: string; open: () => Promise<Repository> };
}

export interface DailyOffsiteResult {
  location: string;
  /** The copy of tonight's snapshot (when a repository is configured). */
  copy: CopiedSnapshot | null;
  /** The snapshot taken there directly (when none is). */
  snapshot: RepoBackupResult | null;
  cleanup: RepoCleanupResult | null;
}

export type DailyStatus = "ok" | "partial" | "failed";

export interface DailyResult {
  run: string;
  status: DailyStatus;
  exitCode: ExitCode;
  /** null when the run stopped before backing up (folder locked, invalid policy). */
  backup: BackupResult | null;
  /** null when no cleanup ran: it is skipped unless every database was backed up. */
  cleanup: CleanupResult | null;
  /** Why cleanup was skipped after a backup, if it was. */
  cleanupSkipped: string | null;
  /** The repository snapshot, when a repository is configured and could be opened. */
  snapshot: RepoBackupResult | null;
  repoCleanup: RepoCleanupResult | null;
  /** Why the repository's cleanup did not run (a database failed, or a source is damaged). */
  repoCleanupSkipped: string | null;
  /** The off-site part, when `offsite` is configured and it got as far as opening it. */
  offsite: DailyOffsiteResult | null;
  /** What failed beyond single databases: the lock, the backup folder, a deletion. */
  errors: DuckbakError[];
}

/** From the result rather than createBackup's events, which miss databases lost with a failed archive. */
function logBackup(log: BackupLog, run: string, backup: BackupResult): void {
  for (const d of backup.databases) {
    if (d.ok && d.sourceDamage.length)
      log.write("error", "database", { run, status: "source_damaged", path: d.path, bytes: d.bytes, duration_ms: d.durationMs, paused_ms: d.pausedMs, error: d.sourceDamage.join("; ") });
    else if (d.ok) log.write("info", "database", { run, status: "ok", path: d.path, bytes: d.bytes, duration_ms: d.durationMs, paused_ms: d.pausedMs });
    else log.write("error", "database", { run, status: "failed", path: d.path, error: d.error.message });
  }
  const failed = backup.databases.filter((d) => !d.ok).length;
  log.write(backup.archive ? "info" : "error", "backup", {
    run,
    archive: backup.archive,
    archive_bytes: backup.archiveBytes,
    databases_ok: backup.databases.length - failed,
    databases_failed: failed,
  });
}

/** A hook's result and everything it printed; sync, so an interrupted run's after hook is logged too. */
export function logHook(log: BackupLog, run: string, h: HookRun): void {
  for (const line of h.output) log.write("info", "hook_output", { run, hook: h.hook, path: h.database, line });
  log.write(h.ok ? "info" : "error", "hook", {
    run,
    hook: h.hook,
    path: h.database,
    status: h.ok ? "ok" : h.timedOut ? "timeout" : "failed",
    exit_code: h.exitCode,
    duration_ms: h.durationMs,
  });
}

function logCleanup(log: BackupLog, run: string, c: CleanupResult): void {
  for (const b of c.deleted) log.write("info", "delete", { run, file: b.file, path: b.path, bytes: b.sizeBytes, created_at: b.createdAt?.toISOString() });
  for (const b of c.unreadable) log.write("warn", "unreadable", { run, path: b.path, error: b.error });
  for (const e of c.errors) log.write("error", "error", { run, error: e.message });
  log.write("info", "cleanup", {
    run,
    policy: describePolicy(c.policy),
    kept: c.kept.length,
    deleted: c.deleted.length,
    freed_bytes: c.bytesFreed,
    unreadable: c.unreadable.length,
  });
}

function exitCodeOf(backup: BackupResult | null, snapshot: RepoBackupResult | null, opts: DailyOptions, errors: DuckbakError[], offsite: DailyOffsiteResult | null): ExitCode {
  if (errors.length > 0) return errors[0]!.exitCode;
  // Off-site without a repository: its snapshot counts like the repository's.
  if (opts.offsite && !opts.repository) {
    const direct = offsite?.snapshot;
    if (!direct?.snapshot) return direct?.databases.some((d) => !d.ok && d.error.exitCode === ExitCode.STORE_ERROR) ? ExitCode.STORE_ERROR : ExitCode.ERROR;
    if (direct.databases.some((d) => !d.ok)) return ExitCode.PARTIAL;
  }
  const made = [...(opts.archive !== false ? [backup?.archive ? backup.databases : null] : []), ...(opts.repository ? [snapshot?.snapshot ? snapshot.databases : null] : [])];
  if (made.some((m) => m === null)) return ExitCode.ERROR;
  if (!made.every((dbs) => dbs!.every((d) => d.ok))) return ExitCode.PARTIAL;
  // Backed up, but a source fails its own block checksums (in the archive, the repository or off-site).
  const results = [backup?.databases, snapshot?.databases, offsite?.snapshot?.databases];
  return results.some((dbs) => dbs?.some((d) => d.ok && d.sourceDamage.length > 0)) ? ExitCode.SOURCE_DAMAGED : ExitCode.OK;
}

/**
 * What the archive backup and the repository snapshot capture the databases with, in one place so
 * that neither can miss a setting (keys, hooks) the other has.
 */
function captureOptions(opts: DailyOptions, run: string) {
  return {
    databases: opts.databases,
    waitSeconds: opts.waitSeconds,
    settings: opts.settings,
    hookTimeoutSeconds: opts.hookTimeoutSeconds,
    keys: opts.keys,
    onEvent: (e: BackupEvent) => {
      if (e.type === "hook") logHook(opts.log, run, e.run);
    },
  };
}

/** The repository part of the run: a snapshot, then (if every database made it) the policy applied there. */
async function dailySnapshot(
  opts: DailyOptions,
  run: string,
  target: { location: string; open: () => Promise<Repository> },
): Promise<{ repo: Repository; snapshot: RepoBackupResult; cleanup: RepoCleanupResult | null; skipped?: string; errors: DuckbakError[] }> {
  const { log } = opts;
  const location = target.location;
  const repo = await target.open();
  const snapshot = await createRepoSnapshot(repo, { ...captureOptions(opts, run), lockWaitSeconds: opts.lockWaitSeconds });
  const failed = snapshot.databases.filter((d) => !d.ok);
  for (const d of failed) if (!d.ok) log.write("error", "database", { run, status: "failed", repository: location, path: d.path, error: d.error.message });
  log.write(snapshot.snapshot ? "info" : "error", "snapshot", {
    run,
    repository: location,
    snapshot: snapshot.snapshot,
    databases_ok: snapshot.databases.length - failed.length,
    databases_failed: failed.length,
    added_bytes: snapshot.snapshotData?.stats.added_bytes ?? 0,
  });
  // As for archives: older snapshots may hold a failed database's last copy, or a damaged one's last sound copy.
  const damaged = snapshot.databases.filter((d) => d.ok && d.sourceDamage.length > 0).length;
  const skipped =
    failed.length > 0
      ? `${failed.length} of ${snapshot.databases.length} databases failed; no snapshot is forgotten until all are backed up`
      : damaged > 0
        ? `${damaged} source database(s) are damaged; older snapshots may hold their last sound copy, so none is forgotten`
        : null;
  if (skipped) {
    log.write("warn", "repo_cleanup", { run, repository: location, status: "skipped", reason: skipped });
    return { repo, snapshot, cleanup: null, skipped, errors: [] };
  }
  return { repo, snapshot, ...(await applyPolicy(opts, run, repo, location)) };
}

/** Retention in a repository, logged. */
async function applyPolicy(opts: DailyOptions, run: string, repo: Repository, location: string): Promise<{ cleanup: RepoCleanupResult; errors: DuckbakError[] }> {
  const { log } = opts;
  const cleanup = await cleanupRepository(repo, { policy: opts.policy, lockWaitSeconds: opts.lockWaitSeconds, maxUnused: opts.maxUnused });
  for (const e of cleanup.errors) log.write("error", "error", { run, error: e.message });
  log.write("info", "repo_cleanup", {
    run,
    repository: location,
    policy: describePolicy(cleanup.policy),
    kept: cleanup.kept.length,
    forgotten: cleanup.forgotten.length,
    packs_deleted: cleanup.packsDeleted,
    packs_repacked: cleanup.packsRepacked,
    freed_bytes: cleanup.bytesFreed,
  });
  return { cleanup, errors: cleanup.errors };
}

/**
 * The off-site part: tonight's snapshot copied from the repository (only chunks the off-site one
 * lacks go over the wire), or taken there directly when no repository is configured; then the
 * policy applied there. Nothing is copied when tonight's snapshot was not made in full.
 */
async function dailyOffsite(opts: DailyOptions, run: string, local: { repo: Repository; snapshot: RepoBackupResult } | null): Promise<{ result: DailyOffsiteResult; errors: DuckbakError[] }> {
  const { log } = opts;
  const target = opts.offsite!;
  if (!local) {
    const r = await dailySnapshot(opts, run, target);
    return { result: { location: target.location, copy: null, snapshot: r.snapshot, cleanup: r.cleanup }, errors: r.errors };
  }
  const result: DailyOffsiteResult = { location: target.location, copy: null, snapshot: null, cleanup: null };
  const id = local.snapshot.snapshot;
  if (!id || local.snapshot.databases.some((d) => !d.ok)) {
    log.write("warn", "offsite", { run, repository: target.location, status: "skipped", reason: "tonight's snapshot is missing databases" });
    return { result, errors: [] };
  }
  const dest = await target.open();
  const [copy] = await copySnapshots(local.repo, dest, { snapshots: [id], lockWaitSeconds: opts.lockWaitSeconds });
  result.copy = copy!;
  log.write("info", "offsite", {
    run,
    repository: target.location,
    snapshot: copy!.target,
    source: id,
    copied: copy!.copied,
    new_blobs: copy!.newBlobs,
    uploaded_bytes: copy!.uploadedBytes,
  });
  const policy = await applyPolicy(opts, run, dest, target.location);
  result.cleanup = policy.cleanup;
  return { result, errors: policy.errors };
}

function dailyStatus(exitCode: ExitCode): DailyStatus {
  return exitCode === ExitCode.OK ? "ok" : exitCode === ExitCode.PARTIAL ? "partial" : "failed";
}

/**
 * Runs the daily routine. Failures are results, not exceptions (the log records them); only a log
 * that cannot be written at the start throws, since nobody could see that run.
 */
export async function runDaily(opts: DailyOptions): Promise<DailyResult> {
  const { log } = opts;
  const run = randomBytes(4).toString("hex");
  const started = performance.now();
  const backupDir = resolve(opts.backupDir);
  log.write("info", "start", {
    run,
    command: "daily",
    pid: process.pid,
    host: hostname(),
    version: DUCKBAK_VERSION,
    config: opts.configFile,
    backup_dir: backupDir,
    databases: opts.databases.length,
  });
  if (log.error) throw log.error;

  let backup: BackupResult | null = null;
  let cleanup: CleanupResult | null = null;
  let cleanupSkipped: string | null = null;
  const errors: DuckbakError[] = [];
  let unexpected: unknown = null;
  let snapshot: RepoBackupResult | null = null;
  let repoCleanup: RepoCleanupResult | null = null;
  let repoCleanupSkipped: string | null = null;
  let offsite: DailyOffsiteResult | null = null;
  let local: { repo: Repository; snapshot: RepoBackupResult } | null = null;
  let lock = null;
  try {
    validatePolicy(opts.policy);
    if (opts.archive !== false) {
      const waitStart = performance.now();
      lock = await acquireRepoLock(backupDir, {
        command: "daily",
        waitSeconds: opts.lockWaitSeconds,
        onWait: (holder) => {
          log.write("warn", "lock_wait", { run, holder: describeHolder(holder) });
          opts.onLockWait?.(holder);
        },
        onBreak: (holder) => {
          log.write("warn", "lock_broken", { run, holder: describeHolder(holder) });
          opts.onLockBreak?.(holder);
        },
      });
      log.write("info", "locked", { run, waited_ms: Math.round(performance.now() - waitStart) });
      backup = await createBackup({ ...captureOptions(opts, run), backupDir, compression: opts.compression });
      logBackup(log, run, backup);
      // While a database fails, old backups may hold its only copies: cleanup waits for a full backup.
      const failed = backup.databases.filter((d) => !d.ok).length;
      const damaged = backup.databases.filter((d) => d.ok && d.sourceDamage.length > 0).length;
      if (failed === 0 && damaged === 0) {
        cleanup = await cleanupBackups({ backupDir, policy: opts.policy });
        errors.push(...cleanup.errors);
        logCleanup(log, run, cleanup);
      } else if (failed > 0) {
        cleanupSkipped = `${failed} of ${backup.databases.length} databases failed; no backup is deleted until all are backed up`;
        log.write("warn", "cleanup", { run, status: "skipped", reason: cleanupSkipped });
      } else {
        cleanupSkipped = `${damaged} source database(s) are damaged; older backups may hold their last sound copy, so none is deleted`;
        log.write("warn", "cleanup", { run, status: "skipped", reason: cleanupSkipped });
      }
    }
  } catch (err) {
    if (err instanceof DuckbakError) errors.push(err);
    else unexpected = err;
    log.write("error", "error", { run, error: err instanceof Error ? err.message : String(err) });
  } finally {
    lock?.release();
  }
  // The repository whatever happened to the archive: either one is a backup of tonight.
  if (opts.repository && !unexpected) {
    try {
      const r = await dailySnapshot(opts, run, opts.repository);
      local = { repo: r.repo, snapshot: r.snapshot };
      snapshot = r.snapshot;
      repoCleanup = r.cleanup;
      repoCleanupSkipped = r.skipped ?? null;
      errors.push(...r.errors);
    } catch (err) {
      if (err instanceof DuckbakError) errors.push(err);
      else unexpected = err;
      log.write("error", "error", { run, repository: opts.repository.location, error: err instanceof Error ? err.message : String(err) });
    }
  }
  // Off-site after the local copies: a slow or failing network never delays or spoils them.
  if (opts.offsite && !unexpected && (!opts.repository || local)) {
    try {
      const r = await dailyOffsite(opts, run, local);
      offsite = r.result;
      errors.push(...r.errors);
    } catch (err) {
      if (err instanceof DuckbakError) errors.push(err);
      else unexpected = err;
      log.write("error", "error", { run, repository: opts.offsite.location, error: err instanceof Error ? err.message : String(err) });
    }
  }
  const exitCode = unexpected ? ExitCode.ERROR : exitCodeOf(backup, snapshot, opts, errors, offsite);
  const status = dailyStatus(exitCode);
  log.write(exitCode === ExitCode.OK ? "info" : "error", "end", { run, status, exit_code: exitCode, duration_ms: Math.round(performance.now() - started) });
  // A bug: logged as a failed run, then reported with its stack trace.
  if (unexpected) throw unexpected;
  return { run, status, exitCode, backup, cleanup, cleanupSkipped, snapshot, repoCleanup, repoCleanupSkipped, offsite, errors };
}
