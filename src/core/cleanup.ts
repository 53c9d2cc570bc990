// `cleanup`: applies a retention policy to the backups of one folder. The decision is retention.ts's
// pure planRetention; this module gathers its input (manifest timestamps, the quick verification of
// the newest backups until one passes) and deletes exactly the archives the plan names, nothing else.
import { pausePoint } from "./pause.ts";
import { unlink } from "node:fs/promises";
import { resolve } from "node:path";
import type { RetentionSettings } from "./config.ts";
import { fsError, type DuckbakError } from "./errors.ts";
import { fsyncDir, removeStaleTemporaries, type RemovedTemporary } from "./fsutil.ts";
import { listBackups, type BackupInfo } from "./list.ts";
import { DEFAULT_POLICY, planRetention, validatePolicy, type RetentionDecision, type RetentionPolicy } from "./retention.ts";
import { verifyBackup } from "./verify.ts";
import type { ManifestDatabase } from "./manifest.ts";
import type { ProgressSink } from "./progress.ts";
import { bakSearchDatabases, findBakFiles, removeOldBakFiles, type BakFile } from "./bakfiles.ts";

/**
 * The policy in force: the config's [retention] with the command line's flags over it, key by key.
 * With no setting at all it is the seed rule (the last 30 days, and at least the 5 newest); keep-days
 * and keep-minimum each keep their default when only the other is set (`--keep-days 60` still keeps
 * the 5 newest). When only GFS rules (keep-last/daily/weekly/monthly/yearly) are set, the policy is
 * exactly those rules: the seed rule would otherwise keep every backup of the last 30 days.
 */
export function effectivePolicy(config: RetentionSettings, flags: RetentionPolicy = {}): RetentionPolicy {
  const merged: RetentionPolicy = { ...config };
  for (const [key, value] of Object.entries(flags)) if (value !== undefined) Object.assign(merged, { [key]: value });
  const onlyGfs = Object.keys(merged).length > 0 && merged.keepDays === undefined && merged.keepMinimum === undefined;
  return onlyGfs ? merged : { ...DEFAULT_POLICY, ...merged };
}

export interface CleanupOptions {
  backupDir: string;
  /** The whole policy (see effectivePolicy); one that keeps nothing is refused. */
  policy: RetentionPolicy;
  dryRun?: boolean;
  now?: Date;
  /** IANA zone of the calendar days, weeks, months and years of GFS rules; default the local zone. */
  timeZone?: string;
  /** Shown the quick verification of the newest backups, the one slow step. */
  progress?: ProgressSink;
  /** Also remove restore's .bak files set aside longer ago than this. */
  bakOlderThanMs?: number;
  /** Databases whose folders are searched for .bak files, besides those in the backups. */
  databases?: string[];
}

/** The quick verification: the archive reads to its end and every entry's sha256 matches the manifest. */
async function verifies(b: BackupInfo, progress: ProgressSink | undefined): Promise<boolean> {
  const result = await verifyBackup({ name: b.name, path: b.path, compression: b.compression }, { quick: true, progress }).catch(() => null);
  return result?.ok === true;
}

export interface CleanupResult {
  backupDir: string;
  policy: RetentionPolicy;
  dryRun: boolean;
  /** Newest first, each with every rule that keeps it. */
  kept: { backup: BackupInfo; reasons: string[] }[];
  /** Deleted (in a dry run: to be deleted), newest first. */
  deleted: BackupInfo[];
  bytesFreed: number;
  /** Archives whose manifest cannot be read: never deleted, only reported. */
  unreadable: BackupInfo[];
  /** Verifications run, newest first, up to the first that passed. */
  verified: { file: string; ok: boolean }[];
  /** Temporaries of crashed duckbak runs that were removed. */
  temporaries: RemovedTemporary[];
  /** Deletions that failed; the others went ahead. */
  errors: DuckbakError[];
  /** .bak files removed (dry run: to be removed); null without bakOlderThanMs. */
  bakFiles: BakFile[] | null;
}

/**
 * Retention counts backups: a backup of some databases only must never push out the last backup
 * of the others, so each database's newest backup is kept whatever the policy says; and when
 * that one recorded its source as damaged, so is the newest backup whose source was sound.
 * `backups` are newest first, named as in the plan.
 */
export function protectLastOfEachDatabase(
  plan: RetentionDecision,
  backups: { name: string; databases: { name: string; original_path: string; source_blocks?: ManifestDatabase["source_blocks"] }[] }[],
): void {
  const seen = new Set<string>();
  const sound = new Set<string>(); // databases whose newest sound backup was met
  const reasons = new Map<string, string[]>(); // backup -> why it is kept
  const keep = (backup: string, why: string) => reasons.set(backup, [...(reasons.get(backup) ?? []), why]);
  for (const b of backups) {
    for (const db of b.databases) {
      const damaged = db.source_blocks?.state === "damaged";
      if (!seen.has(db.original_path)) {
        seen.add(db.original_path);
        keep(b.name, `last backup of ${db.name}`);
      } else if (!damaged && !sound.has(db.original_path)) keep(b.name, `last sound backup of ${db.name} (newer ones recorded its source as damaged)`);
      if (!damaged) sound.add(db.original_path);
    }
  }
  for (const r of [...plan.remove]) {
    const why = reasons.get(r.name);
    if (!why) continue;
    plan.remove.splice(plan.remove.indexOf(r), 1);
    plan.keep.push({ backup: r, reasons: why });
  }
  plan.keep.sort((a, b) => b.backup.timestamp.getTime() - a.backup.timestamp.getTime());
}

export async function cleanupBackups(opts: CleanupOptions): Promise<CleanupResult> {
  validatePolicy(opts.policy);
  const backupDir = resolve(opts.backupDir);
  const dryRun = opts.dryRun ?? false;
  const all = await listBackups(backupDir);
  const readable = all.filter((b) => b.createdAt !== null);

  // The newest backup that verifies is never deleted, whatever the policy.
  const verified: CleanupResult["verified"] = [];
  for (const b of readable) {
    const ok = await verifies(b, opts.progress);
    verified.push({ file: b.file, ok });
    if (ok) break;
  }
  const verdicts = new Map(verified.map((v) => [v.file, v.ok]));
  // File names, not stems: x.tar.gz and x.tar.zst are two backups.
  const byFile = new Map(readable.map((b) => [b.file, b]));
  const plan = planRetention(
    readable.map((b) => ({ name: b.file, timestamp: b.createdAt!, verified: verdicts.get(b.file) })),
    opts.policy,
    opts.now ?? new Date(),
    { timeZone: opts.timeZone },
  );

  protectLastOfEachDatabase(plan, readable.map((b) => ({ name: b.file, databases: b.manifest!.databases })));
  const planned = plan.remove.map((r) => byFile.get(r.name)!);
  const deleted: BackupInfo[] = dryRun ? planned : [];
  const errors: DuckbakError[] = [];
  const temporaries = dryRun ? [] : await removeStaleTemporaries(backupDir);
  if (!dryRun) {
    for (const b of planned) {
      try {
        await unlink(b.path);
        deleted.push(b);
        await pausePoint("cleanup:deleted");
      } catch (err) {
        errors.push(fsError(err, b.path, "delete"));
      }
    }
    if (deleted.length > 0) fsyncDir(backupDir);
  }
  let bakFiles: BakFile[] | null = null;
  if (opts.bakOlderThanMs !== undefined) {
    const found = await findBakFiles(bakSearchDatabases(all, opts.databases ?? []));
    const baks = await removeOldBakFiles(found, opts.bakOlderThanMs, opts.now ?? new Date(), dryRun);
    bakFiles = baks.removed;
    errors.push(...baks.errors);
  }
  return {
    backupDir,
    policy: opts.policy,
    dryRun,
    kept: plan.keep.map((k) => ({ backup: byFile.get(k.backup.name)!, reasons: k.reasons })),
    deleted,
    bytesFreed: deleted.reduce((n, b) => n + b.sizeBytes, 0),
    unreadable: all.filter((b) => b.createdAt === null),
    verified,
    temporaries,
    errors,
    bakFiles,
  };
}
