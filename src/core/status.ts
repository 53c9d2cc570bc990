// `status`, for monitoring: does every database have a recent backup, and did the last `daily`
// succeed? The facts come from the archives' manifests, the repository's snapshots and the backup
// log; the verdict is pure.
import { ExitCode, UsageError } from "./errors.ts";
import { runningHere } from "./fsutil.ts";
import { listBackups, type BackupInfo } from "./list.ts";
import { readLock, type LockHolder } from "./lock.ts";
import { readLogRecords, type LogRecord } from "./log.ts";
import { bakSearchDatabases, findBakFiles, type BakFile } from "./bakfiles.ts";
import { archiveTarget, describeBackup, snapshotTarget, type BackupTarget, type TargetKind } from "./monitoring/targets.ts";
import type { Repository } from "./repo/repository.ts";

export const DEFAULT_MAX_AGE = "26h";

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** "26h", "90m", "2d", "1d12h" in milliseconds. */
export function parseDuration(text: string): number {
  const parts = [...text.trim().matchAll(/(\d+(?:\.\d+)?)([smhdw])/g)];
  const ms = parts.reduce((sum, m) => sum + Number(m[1]) * UNIT_MS[m[2]!]!, 0);
  if (parts.length === 0 || parts.map((m) => m[0]).join("") !== text.trim() || !(ms > 0))
    throw new UsageError(`invalid duration '${text}': expected a number and a unit (s, m, h, d, w), like 26h, 90m or 2d`);
  return ms;
}

/** The largest two units: "3d 4h", "5h 12m", "42m", "9s". */
export function formatAge(ms: number): string {
  let rest = Math.max(0, Math.floor(ms / 1000));
  const parts: string[] = [];
  for (const [unit, size] of [["d", 86_400], ["h", 3600], ["m", 60], ["s", 1]] as const) {
    if (parts.length > 0 || rest >= size || unit === "s") parts.push(`${Math.floor(rest / size)}${unit}`);
    rest %= size;
  }
  return parts.slice(0, 2).join(" ");
}

/** A database's newest backup in one target. */
export interface NewestBackup {
  kind: TargetKind;
  /** The archive's name or the snapshot's id. */
  name: string;
  /** The archive's file name or the snapshot's short id. */
  file: string;
  createdAt: Date;
  sourceDamage: string[];
}

export interface TargetStatus {
  kind: TargetKind;
  /** The backup folder or the repository. */
  location: string;
  newest: NewestBackup | null;
  ageMs: number | null;
  stale: boolean;
}

export interface DatabaseStatus {
  path: string;
  /** The newest backup holding this database in any target, or null when none does. */
  newest: NewestBackup | null;
  ageMs: number | null;
  /** Some configured target has no backup of it within the maximum age. */
  stale: boolean;
  /** One per configured target (backup folder, repository), in that order. */
  targets: TargetStatus[];
}

export interface DailyRun {
  run: string;
  startedAt: Date;
  endedAt: Date | null;
  /** From the run's end line; "unfinished": no end line and its process is gone; "running": it is not. */
  status: "ok" | "partial" | "failed" | "running" | "unfinished";
  exitCode: number | null;
  /** The run's error lines: failed databases, a locked folder, a failed deletion. */
  errors: string[];
  /** The run's last line in the log, as written. */
  lastLine: string;
  /** The process that ran it, from the start line. */
  pid: number;
  host: string;
}

export interface StatusReport {
  exitCode: typeof ExitCode.OK | typeof ExitCode.STALE;
  /** The backup folder, or null when only a repository is configured. */
  backupDir: string | null;
  /** The repository, when one is configured. */
  repository: string | null;
  logFile: string;
  maxAgeMs: number;
  databases: DatabaseStatus[];
  lastDaily: DailyRun | null;
  /** One line per reason for a non-zero exit. */
  problems: string[];
  /** Things worth knowing that do not fail the status (a failed daily since made up for). */
  notes: string[];
  unreadable: BackupInfo[];
  /** Snapshot files of the repository that cannot be read. */
  unreadableSnapshots: { id: string; error: string }[];
  /** Who holds the backup folder's lock now. */
  lock: { holder: LockHolder | null } | null;
  /** Copies restore set aside beside the databases (.bak.<timestamp>), oldest first. */
  bakFiles: BakFile[];
}

/** The newest `daily` run in the log; a run without an end line is "unfinished". */
export function lastDailyRun(records: LogRecord[]): DailyRun | null {
  const start = records.findLast((r) => r.event === "start" && r.fields.command === "daily");
  if (!start) return null;
  const lines = records.filter((r) => r.fields.run === start.fields.run);
  const end = lines.findLast((r) => r.event === "end");
  const ended = end?.fields.status;
  return {
    run: start.fields.run ?? "",
    startedAt: start.time,
    endedAt: end?.time ?? null,
    status: !end ? "unfinished" : ended === "ok" || ended === "partial" ? ended : "failed",
    exitCode: end ? Number(end.fields.exit_code) : null,
    errors: lines.filter((r) => r.level === "error" && r.fields.error).map((r) => r.fields.error!),
    lastLine: lines.at(-1)!.line,
    pid: Number(start.fields.pid),
    host: start.fields.host ?? "",
  };
}

/**
 * Newest backup of each database in each target, by manifest or snapshot timestamp; `expected`
 * empty means every database seen. A database is stale when any target lacks a recent backup of
 * it: each configured target is expected to be kept up (see README, "status").
 */
export function databaseStatuses(targets: BackupTarget[], expected: string[], maxAgeMs: number, now: Date): DatabaseStatus[] {
  const newest = targets.map((t) => {
    const byPath = new Map<string, NewestBackup>();
    for (const b of t.backups) {
      for (const d of b.databases) {
        if (byPath.has(d.original_path)) continue;
        const sourceDamage = d.source_blocks?.state === "damaged" ? d.source_blocks.problems : [];
        byPath.set(d.original_path, { kind: t.kind, name: b.name, file: b.file, createdAt: b.createdAt, sourceDamage });
      }
    }
    return byPath;
  });
  const paths = expected.length > 0 ? expected : [...new Set(newest.flatMap((m) => [...m.keys()]))].sort();
  const age = (n: NewestBackup | null) => (n ? now.getTime() - n.createdAt.getTime() : null);
  return paths.map((path) => {
    const perTarget = targets.map((t, i): TargetStatus => {
      const n = newest[i]!.get(path) ?? null;
      const ageMs = age(n);
      return { kind: t.kind, location: t.location, newest: n, ageMs, stale: ageMs === null || ageMs > maxAgeMs };
    });
    const n = perTarget.reduce<NewestBackup | null>((m, t) => (t.newest && (!m || t.newest.createdAt > m.createdAt) ? t.newest : m), null);
    return { path, newest: n, ageMs: age(n), stale: perTarget.length === 0 || perTarget.some((t) => t.stale), targets: perTarget };
  });
}

/** Whether every database has a backup newer than the start of the (failed) daily run. */
export function dailySuperseded(databases: DatabaseStatus[], run: DailyRun): boolean {
  return databases.length > 0 && databases.every((d) => d.targets.every((t) => t.newest !== null && t.newest.createdAt > run.startedAt));
}

export interface StatusOptions {
  /** The backup folder, or null when only a repository is configured. */
  backupDir: string | null;
  /** Opens the repository, when one is configured; its errors (a wrong password) are the status's. */
  repository?: { location: string; open: () => Promise<Repository> };
  /** Databases that must have a recent backup; empty: every database found in the backups. */
  databases: string[];
  logFile: string;
  maxAgeMs: number;
  now?: Date;
}

function targetProblem(d: DatabaseStatus, t: TargetStatus, maxAgeMs: number): string | null {
  const where = t.kind === "archive" ? t.location : `the repository ${t.location}`;
  if (t.newest === null) return `${d.path}: no ${t.kind === "archive" ? "backup" : "snapshot"} in ${where}`;
  if (!t.stale) return null;
  const what = t.kind === "archive" ? `backup ${t.newest.name}` : `snapshot ${t.newest.file} in ${where}`;
  return `${d.path}: newest ${what} is ${formatAge(t.ageMs!)} old, over the maximum of ${formatAge(maxAgeMs)}`;
}

export async function checkStatus(opts: StatusOptions): Promise<StatusReport> {
  const now = opts.now ?? new Date();
  const backups = opts.backupDir === null ? [] : await listBackups(opts.backupDir);
  const targets = opts.backupDir === null ? [] : [archiveTarget(opts.backupDir, backups)];
  // Opened before anything is judged: a repository that cannot be opened fails the status with its own error.
  const snapshots = opts.repository ? await snapshotTarget(await opts.repository.open()) : null;
  if (snapshots) targets.push(snapshots);
  const databases = databaseStatuses(targets, opts.databases, opts.maxAgeMs, now);
  const lastDaily = lastDailyRun(readLogRecords(opts.logFile));
  if (lastDaily?.status === "unfinished" && runningHere(lastDaily.host, lastDaily.pid)) lastDaily.status = "running";

  const problems: string[] = [];
  if (databases.length === 0) problems.push(`no backups in ${targets.map((t) => t.location).join(" or ")}`);
  for (const d of databases) {
    for (const t of d.targets) {
      const p = targetProblem(d, t, opts.maxAgeMs);
      if (p) problems.push(p);
      if (t.newest?.sourceDamage.length)
        problems.push(`${d.path}: SOURCE DAMAGED when backed up in ${describeBackup(t.kind, t.newest)}: ${t.newest.sourceDamage.join("; ")}`);
    }
  }
  const notes: string[] = [];
  if (lastDaily && lastDaily.status !== "ok" && lastDaily.status !== "running") {
    const why = lastDaily.status === "unfinished" ? "did not finish" : `failed (exit ${lastDaily.exitCode})`;
    const text = `last daily run (${lastDaily.startedAt.toISOString()}) ${why}${lastDaily.errors.length ? `: ${lastDaily.errors.join("; ")}` : ""}`;
    // Ages are judged by the newest backups: good backups made since the failed run make up for it.
    if (dailySuperseded(databases, lastDaily)) notes.push(`${text}; every database has a newer backup since`);
    else problems.push(text);
  }
  const unreadable = backups.filter((b) => b.createdAt === null);
  for (const b of unreadable) problems.push(`unreadable archive ${b.path}: ${b.error}`);
  const unreadableSnapshots = (snapshots?.unreadable ?? []).map((u) => ({ id: u.name, error: u.error }));
  for (const u of unreadableSnapshots) problems.push(`unreadable snapshot ${u.id}: ${u.error}`);
  const paths = [...opts.databases, ...databases.map((d) => d.path)];
  return {
    exitCode: problems.length > 0 ? ExitCode.STALE : ExitCode.OK,
    backupDir: opts.backupDir,
    repository: snapshots?.location ?? null,
    logFile: opts.logFile,
    maxAgeMs: opts.maxAgeMs,
    databases,
    lastDaily,
    problems,
    notes,
    unreadable,
    unreadableSnapshots,
    lock: opts.backupDir === null ? null : await readLock(opts.backupDir),
    bakFiles: await findBakFiles(bakSearchDatabases(backups, paths)),
  };
}
