import type { CAC } from "cac";
import { existsSync } from "node:fs";
import { cleanupBackups, effectivePolicy, type CleanupResult } from "../../core/cleanup.ts";
import { ExitCode, UsageError } from "../../core/errors.ts";
import type { BackupInfo } from "../../core/list.ts";
import { describePolicy, type RetentionPolicy } from "../../core/retention.ts";
import { withProgress } from "../progress.ts";
import { monitored, type RunReport } from "../monitoring.ts";
import { configuredDatabases, loadContext, parseCount, type CommonFlags, type Context } from "../context.ts";
import { parseDuration } from "../../core/status.ts";
import { LOCK_WAIT_OPTION, lockWaitSeconds, withRepoLock } from "../lock.ts";
import { bakJson, color, formatBytes, formatTable, formatTimestamp, plural, printJson, snakeKeys, displayPath } from "../output.ts";
import { REPO_OPTION, archivesInUse, repoLocation, repoLockNotice, repositoryOnce } from "../repo.ts";
import { cleanupRepository, DEFAULT_MAX_UNUSED, type RepoCleanupResult } from "../../core/repo/gc.ts";
import { maxUnusedFraction } from "../../core/repo/repack.ts";
import type { SnapshotInfo } from "../../core/repo/snapshots.ts";

interface CleanupFlags extends CommonFlags {
  keepDays?: unknown;
  keepMinimum?: unknown;
  keepLast?: unknown;
  keepDaily?: unknown;
  keepWeekly?: unknown;
  keepMonthly?: unknown;
  keepYearly?: unknown;
  dryRun?: boolean;
  lockWait?: string;
  bakOlderThan?: string;
  repo?: string;
  maxUnused?: string;
}

export function registerCleanup(cli: CAC): void {
  cli
    .command("cleanup", "Delete old backups by the retention policy (default: older than 30 days, always keeping the 5 newest)")
    .option("--keep-days <n>", "Keep backups from the last N days (default 30, unless only the rules below are set)")
    .option("--keep-minimum <n>", "Always keep the N newest backups (default 5, unless only the rules below are set)")
    .option("--keep-last <n>", "Keep the N newest backups")
    .option("--keep-daily <n>", "Keep the newest backup of each of the last N days that have one")
    .option("--keep-weekly <n>", "Same for the last N ISO weeks")
    .option("--keep-monthly <n>", "Same for the last N months")
    .option("--keep-yearly [n]", "Same for the last N years; without N, every year forever")
    .option("--dry-run", "Print what would be deleted; change nothing")
    .option("--bak-older-than <duration>", "Also delete the .bak.<timestamp> files restore kept beside the databases, when older than this (like 7d)")
    .option(...REPO_OPTION)
    .option("--max-unused <percent>", `With --repo: repack packs that remaining snapshots use only in part until at most this share of the pack bytes is unused (default: max_unused from the config, else ${DEFAULT_MAX_UNUSED * 100}%; 100% never repacks)`)
    .option("--backup-dir <dir>", "Backup folder (default: backup_dir from the config, else data/backups)")
    .option("--config <file>", "Config file (default: ./duckbak.toml when present); its [retention] is the base policy")
    .option(...LOCK_WAIT_OPTION)
    .option("--json", "Print the result as JSON")
    .example("duckbak cleanup --dry-run                 # 30 days, at least the 5 newest")
    .example("duckbak cleanup --keep-days 60 --keep-minimum 10")
    .example("duckbak cleanup --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --keep-yearly")
    .example("duckbak cleanup --repo /mnt/backup/duckbak --keep-daily 7   # forgets snapshots, then deletes unused packs")
    .action(async (flags: CleanupFlags) => runCleanup(flags));
}


function policyFlags(flags: CleanupFlags): RetentionPolicy {
  const yearly = flags.keepYearly === true || flags.keepYearly === "forever" ? "forever" : parseCount("--keep-yearly", flags.keepYearly);
  return {
    keepDays: parseCount("--keep-days", flags.keepDays),
    keepMinimum: parseCount("--keep-minimum", flags.keepMinimum),
    keepLast: parseCount("--keep-last", flags.keepLast),
    keepDaily: parseCount("--keep-daily", flags.keepDaily),
    keepWeekly: parseCount("--keep-weekly", flags.keepWeekly),
    keepMonthly: parseCount("--keep-monthly", flags.keepMonthly),
    keepYearly: yearly,
  };
}

async function runCleanup(flags: CleanupFlags): Promise<number> {
  const { config, backupDir } = loadContext(flags);
  const policy = effectivePolicy(config.retention, policyFlags(flags));
  const dryRun = flags.dryRun === true;
  const location = repoLocation(flags.repo, config);
  if (location) return runRepoCleanup(location, { config, backupDir }, policy, dryRun, flags);
  if (flags.maxUnused !== undefined) throw new UsageError("--max-unused is for a repository (--repo): archives have no packs to repack");
  const bakOlderThanMs = flags.bakOlderThan === undefined ? undefined : parseDuration(String(flags.bakOlderThan));
  const cleanup = () =>
    withProgress(flags, (progress) => cleanupBackups({ backupDir, policy, dryRun, bakOlderThanMs, databases: configuredDatabases(config), progress }));
  const run = async () => {
    // A dry run changes nothing, so it neither waits for nor blocks a running backup.
    const result = dryRun || !existsSync(backupDir) ? await cleanup() : await withRepoLock(backupDir, "cleanup", lockWaitSeconds(flags.lockWait, config), cleanup);
    const exitCode = result.errors.length > 0 ? ExitCode.ERROR : ExitCode.OK;
    const errors = result.errors.map((e) => e.message);
    if (flags.json) printJson("cleanup", cleanupJson(result), exitCode, errors.join("; "));
    else printCleanup(result);
    const report: RunReport = { status: errors.length ? "failed" : "ok", exitCode, archive: null, archiveBytes: null, snapshot: null, databases: [], deleted: result.deleted.length, errors };
    return { exitCode, report };
  };
  // A dry run is not a run to monitor.
  return dryRun ? (await run()).exitCode : monitored({ command: "cleanup", config, backupDir }, run);
}

const backupJson = (b: BackupInfo) => ({
  name: b.name,
  file: b.file,
  path: b.path,
  created_at: b.createdAt?.toISOString() ?? null,
  size_bytes: b.sizeBytes,
});

/** The JSON body of a cleanup (shared with `daily`). */
export function cleanupJson(r: CleanupResult) {
  return {
    dry_run: r.dryRun,
    backup_dir: r.backupDir,
    // The config's key names: keep_days, keep_minimum, …
    policy: snakeKeys(r.policy),
    policy_text: describePolicy(r.policy),
    kept: r.kept.map((k) => ({ ...backupJson(k.backup), reasons: k.reasons })),
    deleted: r.deleted.map(backupJson),
    freed_bytes: r.bytesFreed,
    unreadable: r.unreadable.map((b) => ({ file: b.file, path: b.path, error: b.error })),
    verified: r.verified,
    removed_temporaries: r.temporaries.map((t) => ({ path: t.path, size_bytes: t.sizeBytes })),
    bak_files_deleted: r.bakFiles?.map(bakJson) ?? null,
    errors: r.errors.map((e) => e.message),
  };
}

/** Summary lines shared with `daily`. */
export function cleanupSummary(r: CleanupResult): string {
  const n = plural(r.deleted.length, "backup");
  const kept = `kept ${r.kept.length}`;
  const unreadable = r.unreadable.length > 0 ? `; ${plural(r.unreadable.length, "unreadable archive")} left alone` : "";
  return r.dryRun
    ? `Dry run: would delete ${n}, freeing ${formatBytes(r.bytesFreed)}; ${kept}${unreadable}. Nothing was changed.`
    : `Deleted ${n}, freed ${formatBytes(r.bytesFreed)}; ${kept}${unreadable}.`;
}

function printCleanup(r: CleanupResult): void {
  for (const t of r.temporaries) console.log(`Removed ${displayPath(t.path)} (${formatBytes(t.sizeBytes)}), a temporary left by an interrupted run`);
  console.log(`Policy: ${describePolicy(r.policy)}`);
  if (r.kept.length + r.deleted.length + r.unreadable.length === 0) console.log(`No backups in ${r.backupDir}`);
  else printRetention(r);
  for (const e of r.errors) console.error(`${color.red("FAILED")}  ${e.message}`);
  if (r.bakFiles) {
    const verb = r.dryRun ? "would delete" : "deleted";
    for (const b of r.bakFiles) console.log(`${verb}  ${b.path}  ${formatBytes(b.sizeBytes)}`);
    const bytes = r.bakFiles.reduce((n, b) => n + b.sizeBytes, 0);
    console.log(`${r.dryRun ? "Dry run: would delete" : "Deleted"} ${plural(r.bakFiles.length, ".bak file")} kept by restore, ${formatBytes(bytes)}.`);
  }
}

function printRetention(r: CleanupResult): void {
  const planned = [
    ...r.kept.map((k) => ({ action: "keep", backup: k.backup, note: k.reasons.join(", ") })),
    ...r.deleted.map((backup) => ({ action: r.dryRun ? "would delete" : "deleted", backup, note: "" })),
  ].sort((a, b) => b.backup.createdAt!.getTime() - a.backup.createdAt!.getTime());
  const rows = [
    ...planned.map(({ action, backup: b, note }) => [action, b.file, formatTimestamp(b.createdAt!), formatBytes(b.sizeBytes), note]),
    ...r.unreadable.map((b) => ["skip", b.file, "-", formatBytes(b.sizeBytes), `unreadable, not deleted: ${b.error}`]),
  ];
  for (const line of formatTable(rows)) console.log(line);
  console.log(cleanupSummary(r));
}

async function runRepoCleanup(location: string, { config, backupDir }: Context, policy: RetentionPolicy, dryRun: boolean, flags: CleanupFlags): Promise<number> {
  const repository = repositoryOnce(location, config);
  const wait = lockWaitSeconds(flags.lockWait, config);
  const maxUnused = parseMaxUnused(flags.maxUnused) ?? config.maxUnused;
  const run = async () => {
    const repo = await repository.open();
    const r = await withProgress(flags, (progress) => cleanupRepository(repo, { policy, dryRun, lockWaitSeconds: wait, onLockWait: repoLockNotice(wait), maxUnused, progress }));
    const exitCode = r.errors.length > 0 ? ExitCode.ERROR : ExitCode.OK;
    const errors = r.errors.map((e) => e.message);
    if (flags.json) printJson("cleanup", { ...repoCleanupJson(r), repository: repo.location }, exitCode, errors.join("; "));
    else printRepoCleanup(r);
    const report: RunReport = { status: errors.length ? "failed" : "ok", exitCode, archive: null, archiveBytes: null, snapshot: null, databases: [], deleted: r.forgotten.length, errors };
    return { exitCode, report };
  };
  // A dry run is not a run to monitor.
  return dryRun ? (await run()).exitCode : monitored({ command: "cleanup", config, backupDir: null, configuredBackupDir: archivesInUse(location, config, flags.backupDir) ? backupDir : null, repository }, run);
}

/** --max-unused as a fraction; undefined when not given. */
export function parseMaxUnused(flag: unknown): number | undefined {
  if (flag === undefined) return undefined;
  const f = maxUnusedFraction(flag);
  if (f === null) throw new UsageError(`--max-unused '${String(flag)}': expected a percentage from 0% to 100%, like 10%`);
  return f;
}

const snapshotJson = (s: SnapshotInfo) => ({
  id: s.id,
  short_id: s.short,
  created_at: s.snapshot.timestamp,
  size_bytes: s.snapshot.stats.logical_bytes,
});

export function repoCleanupJson(r: RepoCleanupResult) {
  return {
    dry_run: r.dryRun,
    policy: snakeKeys(r.policy),
    policy_text: describePolicy(r.policy),
    kept: r.kept.map((k) => ({ ...snapshotJson(k.snapshot), reasons: k.reasons })),
    deleted: r.forgotten.map(snapshotJson),
    packs_deleted: r.packsDeleted,
    packs_repacked: r.packsRepacked,
    packs_written: r.packsWritten,
    blobs_repacked: r.blobsRepacked,
    freed_bytes: r.bytesFreed,
    removed_temporaries: r.temporaries.map((t) => ({ path: t.path, size_bytes: t.sizeBytes })),
    errors: r.errors.map((e) => e.message),
  };
}

export function repoCleanupSummary(r: RepoCleanupResult): string {
  const n = plural(r.forgotten.length, "snapshot");
  if (r.dryRun) {
    // (packsDeleted counts the repacked ones too, as the real run deletes them.)
    const packs = plural(r.packsDeleted - r.packsRepacked, "unused pack");
    const repack = r.packsRepacked ? ` and repack ${plural(r.packsRepacked, "partly used pack")}` : "";
    return `Dry run: would forget ${n}, delete ${packs}${repack}, freeing about ${formatBytes(r.bytesFreed)}; kept ${r.kept.length}. Nothing was changed.`;
  }
  const repack = r.packsRepacked ? ` (${plural(r.packsRepacked, "partly used pack")} repacked into ${r.packsWritten})` : "";
  return `Forgot ${n}, deleted ${plural(r.packsDeleted, "pack")}${repack}, freed ${formatBytes(r.bytesFreed)}; kept ${r.kept.length}.`;
}

function printRepoCleanup(r: RepoCleanupResult): void {
  console.log(`Policy: ${describePolicy(r.policy)}`);
  const rows = [
    ...r.kept.map((k) => ({ action: "keep", s: k.snapshot, note: k.reasons.join(", ") })),
    ...r.forgotten.map((s) => ({ action: r.dryRun ? "would forget" : "forgot", s, note: "" })),
  ]
    .sort((a, b) => b.s.timestamp.getTime() - a.s.timestamp.getTime())
    .map(({ action, s, note }) => [action, s.short, formatTimestamp(s.timestamp), formatBytes(s.snapshot.stats.logical_bytes), note]);
  for (const line of formatTable(rows)) console.log(line);
  for (const e of r.errors) console.error(`${color.red("FAILED")}  ${e.message}`);
  for (const t of r.temporaries) console.log(`Removed ${displayPath(t.path)} (${formatBytes(t.sizeBytes)}), a temporary left by an interrupted run`);
  console.log(repoCleanupSummary(r));
}
