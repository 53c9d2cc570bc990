import type { CAC } from "cac";
import { basename } from "node:path";
import { backupExitCode, createBackup, type BackupResult, type DatabaseBackupResult } from "../../core/backup.ts";
import { ExitCode, UsageError } from "../../core/errors.ts";
import type { Compression } from "../../core/naming.ts";
import { withProgress } from "../progress.ts";
import { monitored, type RunReport } from "../monitoring.ts";
import { ENCRYPTION_KEY_OPTION, keysFor, loadContext, resolveDatabases, parseCompression, parseCount, parseSeconds, settingsFrom, type CommonFlags } from "../context.ts";
import { DEFAULT_HOT_RETRIES } from "../../core/hot/copy.ts";
import type { HookRun } from "../../core/hooks.ts";
import { LOCK_WAIT_OPTION, lockWaitSeconds, withRepoLock } from "../lock.ts";
import { color, formatBytes, formatDuration, plural, printJson, printWarning, displayPath } from "../output.ts";
import { REPO_OPTION, archivesInUse, startOpening, repoLocation, repoLockNotice } from "../repo.ts";
import { createRepoSnapshot, type RepoBackupResult } from "../../core/repo/backup.ts";
import { headOf, shortId } from "../../core/repo/snapshots.ts";

interface BackupFlags extends CommonFlags {
  name?: string;
  compress: boolean;
  compression?: string;
  wait?: string;
  lockWait?: string;
  hot?: boolean;
  hotRetries?: string;
  repo?: string;
  rehash?: boolean;
}

export function registerBackup(cli: CAC): void {
  cli
    .command("backup [...databases]", "Back up DuckDB databases into one compressed tar archive")
    .option("--name <name>", "Archive name stem instead of backup_YYYYMMDD_HHMMSS (UTC); never overwrites")
    .option("--no-compress", "Write a plain .tar")
    .option("--compression <codec>", "gzip (.tar.gz, default), zstd (.tar.zst, faster) or none (.tar, as --no-compress)")
    .option(...REPO_OPTION)
    .option("--backup-dir <dir>", "Where archives go (default: backup_dir from the config, else data/backups)")
    .option("--config <file>", "Config file (default: ./duckbak.toml when present)")
    .option("--wait <seconds>", "Wait up to this long for a database that a writer has open (default 0)")
    .option(...LOCK_WAIT_OPTION)
    .option("--hot", "A database a writer holds open is copied anyway, crash-consistently (verified, or refused); see README")
    .option("--hot-retries <n>", `Attempts after the first before a hot copy is refused (default ${DEFAULT_HOT_RETRIES})`)
    .option(...ENCRYPTION_KEY_OPTION)
    .option("--rehash", "With --repo: hash every block again, not only those changed since your last backup (see README)")
    .option("--json", "Print the result as JSON")
    .example("duckbak backup                      # databases from duckbak.toml, else data/*.duckdb")
    .example("duckbak backup data/a.duckdb --compression zstd --wait 60")
    .example("duckbak backup data/ingest.duckdb --hot      # the ingest process keeps it open")
    .example("duckbak backup --repo /mnt/backup/duckbak      # a deduplicated, encrypted snapshot")
    .action(async (databases: string[], flags: BackupFlags) => runBackup(databases, flags));
}

async function runBackup(args: string[], flags: BackupFlags): Promise<number> {
  const ctx = loadContext(flags);
  const repo = repoLocation(flags.repo, ctx.config);
  if (repo) return runRepoBackup(repo, args, flags);
  if (flags.rehash) throw new UsageError("--rehash applies to a repository (--repo) only");
  const compression = parseCompression(flags.compression, flags.compress === false, ctx.config.compression);
  const databases = resolveDatabases(args, ctx.config);
  const waitSeconds = parseSeconds("--wait", flags.wait) ?? ctx.config.waitSeconds ?? 0;
  const hotRetries = parseCount("--hot-retries", flags.hotRetries);
  return monitored({ command: "backup", config: ctx.config, backupDir: ctx.backupDir }, async () => {
    const result = await withRepoLock(ctx.backupDir, "backup", lockWaitSeconds(flags.lockWait, ctx.config), () => withProgress(flags, (progress) =>
      createBackup({
        progress,
        databases,
        backupDir: ctx.backupDir,
        name: flags.name === undefined ? undefined : String(flags.name),
        compression,
        waitSeconds,
        settings: settingsFrom(ctx.config, flags.hot === true),
        hookTimeoutSeconds: ctx.config.hookTimeoutSeconds,
        hotRetries,
        onEvent: (e) => {
          if (e.type === "hook") printHook(e.run);
        },
        keys: keysFor(flags, ctx.config),
      })),
    );
    const code = backupExitCode(result);

    if (flags.json) printJson("backup", backupJson(result), code, failedMessage(result));
    else printBackupResult(result, compression);
    return { exitCode: code, report: backupReport(result, code) };
  });
}

/** What monitoring is told about a backup (shared with `daily`). */
export function backupReport(result: BackupResult, exitCode: number): RunReport {
  const failed = result.databases.filter((d) => !d.ok);
  return {
    status: failed.length === 0 ? "ok" : result.archive ? "partial" : "failed",
    exitCode,
    archive: result.archive,
    archiveBytes: result.archive ? result.archiveBytes : null,
    snapshot: null,
    databases: databaseOutcomes([result.databases]),
    deleted: 0,
    errors: failed.map((d) => (d as { error: Error }).error.message),
  };
}

/** Each database once, over the backups a run wrote (archive, snapshot): ok only when it made it into all. */
export function databaseOutcomes(lists: DatabaseBackupResult[][]): RunReport["databases"] {
  const out = new Map<string, RunReport["databases"][number]>();
  for (const d of lists.flat()) {
    const seen = out.get(d.path);
    if (seen && !seen.ok) continue;
    if (!d.ok) out.set(d.path, { path: d.path, ok: false, error: d.error.message });
    else if (!seen) out.set(d.path, { path: d.path, ok: true, bytes: d.bytes, durationMs: d.durationMs });
  }
  return [...out.values()];
}

/** A hook's result and output, on stderr (stdout may carry --json). */
function printHook(run: HookRun): void {
  const where = displayPath(run.database);
  for (const line of run.output) console.error(color.dim(`  ${run.hook} | ${line}`));
  const status = run.ok ? color.green("ok") : color.red(run.timedOut ? "TIMED OUT" : `FAILED (exit ${run.exitCode})`);
  console.error(`hook    ${run.hook} ${where}: ${status}, ${formatDuration(run.durationMs)}`);
}

function failedMessage(result: BackupResult): string | undefined {
  const failed = result.databases.flatMap((d) => (d.ok ? [] : [d.error.message]));
  return failed.length === 0 ? undefined : `${plural(failed.length, "database")} failed: ${failed.join("; ")}`;
}

/** The JSON body of a backup (shared with `daily`). */
export function backupJson(result: BackupResult) {
  return {
    archive: result.archive,
    archive_bytes: result.archiveBytes,
    databases: result.databases.map(databaseJson),
    manifest: result.manifest,
  };
}

/** One database of a backup or snapshot, in JSON. */
function databaseJson(d: DatabaseBackupResult) {
  return d.ok
    ? {
        path: d.path,
        ok: true,
        entry: d.entry,
        size_bytes: d.bytes,
        duration_ms: d.durationMs,
        paused_ms: d.pausedMs ?? null,
        source_damaged: d.sourceDamage.length > 0,
        source_damage: d.sourceDamage,
        not_opened: d.rawReason ?? null,
        error: null,
      }
    : { path: d.path, ok: false, entry: null, size_bytes: null, duration_ms: null, paused_ms: null, source_damaged: null, source_damage: [], not_opened: null, error: d.error.message };
}

/** The warning for a database the embedded DuckDB could not open (copied under the raw lock). */
function warnNotOpened(d: DatabaseBackupResult): void {
  if (d.ok && d.rawReason !== undefined)
    printWarning(`${d.path}: the embedded DuckDB cannot open it (${d.rawReason}); copied under DuckDB's file lock taken without DuckDB, so no writer ran during the copy, but its tables were not read`);
}

/** The human report of a backup: one line per database, then the archive (shared with `daily`). */
export function printBackupResult(result: BackupResult, compression: Compression): void {
  const failed = result.databases.filter((d) => !d.ok);
  for (const d of result.databases) {
    if (d.ok) {
      const db = result.manifest?.databases.find((m) => m.original_path === d.path);
      const tables = db?.tables.length ?? 0;
      const paused = d.pausedMs === undefined ? "" : `, paused ${formatDuration(d.pausedMs)} between hooks`;
      const hot = db?.hot ? `, hot copy (crash-consistent, ${plural(db.hot.attempts, "attempt")})` : "";
      const line = `${displayPath(d.path)}  ${formatBytes(d.bytes)}, ${plural(tables, "table")}, ${formatDuration(d.durationMs)}${paused}${hot}`;
      warnNotOpened(d);
      if (d.sourceDamage.length === 0) console.log(`${color.green("ok")}      ${line}`);
      else {
        console.log(`${color.red("DAMAGED")} ${line}; backed up anyway (it may be the best copy left), but the SOURCE fails DuckDB's block checksums:`);
        for (const p of d.sourceDamage) console.error(`${color.red("DAMAGED")} ${p}`);
      }
    } else {
      console.error(`${color.red("FAILED")}  ${d.error.message}`);
    }
  }
  if (result.archive) {
    const n = result.databases.length - failed.length;
    console.log(`Backup created: ${result.archive} (${formatBytes(result.archiveBytes)}, ${compression}, ${plural(n, "database")})`);
  } else {
    console.error(color.red("No backup created: every database failed."));
  }
}

async function runRepoBackup(location: string, args: string[], flags: BackupFlags): Promise<number> {
  const archiveOnly = Object.entries({ "--name": flags.name, "--compression": flags.compression, "--no-compress": flags.compress === false || undefined }).filter(([, v]) => v !== undefined);
  if (archiveOnly.length) throw new UsageError(`${archiveOnly.map(([n]) => n).join(", ")}: for archives; a snapshot is named by its id, its chunks always zstd-compressed`);
  const ctx = loadContext(flags);
  const databases = resolveDatabases(args, ctx.config);
  const waitSeconds = parseSeconds("--wait", flags.wait) ?? ctx.config.waitSeconds ?? 0;
  // Opened (the password's key derived) while the databases' capture starts: see createRepoSnapshot.
  const opening = startOpening(location, ctx.config);
  const lockWait = lockWaitSeconds(flags.lockWait, ctx.config);
  const repository = { location, open: () => opening.repository };
  const configuredBackupDir = archivesInUse(location, ctx.config, flags.backupDir) ? ctx.backupDir : null;
  return monitored({ command: "backup", config: ctx.config, backupDir: null, configuredBackupDir, repository }, async () => {
    // One bar per database: the repository reports each database's total, then bytes done within it.
    let seen = 0;
    const result = await withProgress(flags, (progress) => createRepoSnapshot(opening, {
      databases,
      waitSeconds,
      lockWaitSeconds: lockWait,
      onLockWait: repoLockNotice(lockWait),
      settings: settingsFrom(ctx.config, flags.hot === true),
      hookTimeoutSeconds: ctx.config.hookTimeoutSeconds,
      hotRetries: parseCount("--hot-retries", flags.hotRetries),
      rehash: flags.rehash === true,
      onEvent: (e) => {
        if (e.type === "hook") printHook(e.run);
        else if (e.type === "database-start") {
          progress.start(e.bytes, `backing up ${basename(e.path)}`);
          seen = 0;
        } else if (e.type === "progress") {
          progress.advance(e.bytes - seen);
          seen = e.bytes;
        }
      },
      keys: keysFor(flags, ctx.config),
    }));
    const failed = result.databases.filter((d) => !d.ok);
    // No snapshot because the store failed (S3 after its retries): the store's own exit code.
    const storeFailed = !result.snapshot && failed.some((d) => d.error.exitCode === ExitCode.STORE_ERROR);
    const damaged = result.databases.some((d) => d.ok && d.sourceDamage.length > 0);
    const code =
      failed.length > 0 ? (result.snapshot ? ExitCode.PARTIAL : storeFailed ? ExitCode.STORE_ERROR : ExitCode.ERROR) : damaged ? ExitCode.SOURCE_DAMAGED : ExitCode.OK;
    const failures = result.databases.flatMap((d) => (d.ok ? [] : [d.error.message]));
    if (flags.json) printJson("backup", repoBackupJson(result, location), code, failures.length ? `${plural(failures.length, "database")} failed: ${failures.join("; ")}` : undefined);
    else printRepoBackupResult(result, location);
    const report: RunReport = {
      status: failed.length === 0 ? "ok" : result.snapshot ? "partial" : "failed",
      exitCode: code,
      archive: null,
      archiveBytes: null,
      snapshot: result.snapshot,
      databases: databaseOutcomes([result.databases]),
      deleted: 0,
      errors: failures,
    };
    return { exitCode: code, report };
  });
}

/** The JSON body of a snapshot (shared with `daily`). */
export function repoBackupJson(result: RepoBackupResult, location: string) {
  return {
    repository: location,
    snapshot: result.snapshot,
    databases: result.databases.map(databaseJson),
    stats: result.snapshotData ? { ...result.snapshotData.stats, hashed_bytes: result.hashedBytes } : null,
    manifest: result.snapshotData ? headOf(result.snapshotData) : null,
  };
}

/** The human report of a snapshot (shared with `daily`). */
export function printRepoBackupResult(result: RepoBackupResult, location: string): void {
  for (const d of result.databases) {
    if (d.ok) {
      const tables = result.snapshotData?.databases.find((m) => m.original_path === d.path)?.tables.length ?? 0;
      warnNotOpened(d);
      console.log(`${color.green("ok")}      ${displayPath(d.path)}  ${formatBytes(d.bytes)}, ${plural(tables, "table")}, ${formatDuration(d.durationMs)}`);
      for (const p of d.sourceDamage) console.error(`${color.red("DAMAGED")} ${p} (the SOURCE fails DuckDB's block checksums; backed up anyway)`);
    } else {
      console.error(`${color.red("FAILED")}  ${d.error.message}`);
    }
  }
  if (result.snapshot && result.snapshotData) {
    const s = result.snapshotData.stats;
    const n = result.snapshotData.databases.length;
    console.log(`Snapshot ${shortId(result.snapshot)} saved in ${location} (${plural(n, "database")}, ${formatBytes(s.logical_bytes)}; added ${formatBytes(s.added_bytes)} in ${plural(s.new_blobs, "new chunk")} of ${s.chunks})`);
  } else {
    console.error(color.red("No snapshot created: every database failed."));
  }
}
