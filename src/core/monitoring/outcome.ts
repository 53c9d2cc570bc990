// What a finished daily, backup or cleanup reports to monitoring (metrics file, notify command,
// health check): one shape for the three commands, and its JSON form (snake_case).
import { hostname } from "node:os";
import { DUCKBAK_VERSION } from "../version.ts";

export type MonitoredCommand = "daily" | "backup" | "cleanup";

export interface RunOutcome {
  command: MonitoredCommand;
  status: "ok" | "partial" | "failed";
  exitCode: number;
  startedAt: Date;
  endedAt: Date;
  /** The backup folder, or null when the run did not use one (a repository alone). */
  backupDir: string | null;
  /** The repository the run used, if any. */
  repository: string | null;
  /** The snapshot written by this run, if any. */
  snapshot: string | null;
  /** The archive written by this run, if any. */
  archive: string | null;
  archiveBytes: number | null;
  /** Each database once: ok when it made it into every backup the run wrote (archive, snapshot). */
  databases: { path: string; ok: boolean; bytes?: number; durationMs?: number; error?: string }[];
  /** Archives deleted by retention in this run. */
  deleted: number;
  /** What went wrong, one line each. */
  errors: string[];
}

/** "daily ok: 3 databases backed up into backup_x.tar.gz (12.0 MiB)"-style one line, for the environment and logs. */
export function outcomeLine(o: RunOutcome): string {
  const ok = o.databases.filter((d) => d.ok).length;
  const parts = [`duckbak ${o.command} ${o.status} (exit ${o.exitCode})`];
  if (o.databases.length) parts.push(`${ok}/${o.databases.length} databases backed up`);
  if (o.archive) parts.push(`archive ${o.archive}`);
  if (o.snapshot) parts.push(`snapshot ${o.snapshot.slice(0, 8)}`);
  if (o.deleted) parts.push(`${o.deleted} old backups deleted`);
  if (o.errors.length) parts.push(o.errors[0]!);
  return parts.join("; ");
}

/** The JSON summary given to notify_command on stdin. */
export function outcomeJson(o: RunOutcome) {
  return {
    command: o.command,
    status: o.status,
    ok: o.status === "ok",
    exit_code: o.exitCode,
    summary: outcomeLine(o),
    host: hostname(),
    duckbak_version: DUCKBAK_VERSION,
    started_at: o.startedAt.toISOString(),
    ended_at: o.endedAt.toISOString(),
    duration_seconds: (o.endedAt.getTime() - o.startedAt.getTime()) / 1000,
    backup_dir: o.backupDir,
    repository: o.repository,
    snapshot: o.snapshot,
    archive: o.archive,
    archive_bytes: o.archiveBytes,
    databases: o.databases.map((d) => ({
      path: d.path,
      ok: d.ok,
      size_bytes: d.bytes ?? null,
      duration_seconds: d.durationMs === undefined ? null : d.durationMs / 1000,
      error: d.error ?? null,
    })),
    deleted: o.deleted,
    errors: o.errors,
  };
}
