// The Prometheus text file (node_exporter's textfile collector) written after daily, backup and
// cleanup: facts from the backup folder (newest backup of each database, counts, sizes) plus the
// last run of each command. Values the folder cannot tell (a database's backup duration, the
// other commands' last runs) are carried over from the file's previous version, so a cleanup does
// not erase what the backup before it reported.
import { readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { fsError } from "../errors.ts";
import { writeFileAtomic } from "../fsutil.ts";
import type { BackupInfo } from "../list.ts";
import type { RunOutcome } from "./outcome.ts";

export interface MetricFamily {
  name: string;
  help: string;
  type: "gauge";
  samples: { labels: Record<string, string>; value: number }[];
}

/** Label values escaped as the text format wants: backslash, double quote, newline. */
export function escapeLabel(v: string): string {
  return v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "+Inf" : "-Inf";
  return String(v);
}

export function renderMetrics(families: MetricFamily[]): string {
  const out: string[] = [];
  for (const f of families) {
    if (f.samples.length === 0) continue;
    out.push(`# HELP ${f.name} ${f.help.replaceAll("\\", "\\\\").replaceAll("\n", "\\n")}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
      out.push(`${f.name}${labels.length ? `{${labels.join(",")}}` : ""} ${formatValue(s.value)}`);
    }
  }
  return out.join("\n") + "\n";
}

/** Samples of our own earlier file, by metric name (a strict reader of what renderMetrics writes). */
export function parseSamples(text: string): Map<string, { labels: Record<string, string>; value: number }[]> {
  const out = new Map<string, { labels: Record<string, string>; value: number }[]>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    const value = Number(m[3]);
    if (!Number.isNaN(value) || m[3] === "NaN") out.set(m[1]!, [...(out.get(m[1]!) ?? []), { labels, value }]);
  }
  return out;
}

const seconds = (d: Date) => d.getTime() / 1000;

/** The families for the backup folder's state after `outcome`, with carried-over values from `previous`. */
export function buildMetrics(backups: BackupInfo[], outcome: RunOutcome, previous: string): MetricFamily[] {
  const prev = parseSamples(previous);
  const dir = { backup_dir: outcome.backupDir };
  const newest = new Map<string, { at: Date; bytes: number }>();
  const counts = new Map<string, number>();
  for (const b of backups) {
    for (const d of b.manifest?.databases ?? []) {
      counts.set(d.original_path, (counts.get(d.original_path) ?? 0) + 1);
      const n = newest.get(d.original_path);
      if (!n || b.createdAt! > n.at) newest.set(d.original_path, { at: b.createdAt!, bytes: d.size_bytes });
    }
  }
  const dbs = [...newest.keys()].sort();
  // Durations: this run's, else the last reported one of a database still in the folder.
  const durations = new Map<string, number>();
  for (const s of prev.get("duckbak_database_last_backup_duration_seconds") ?? [])
    if (s.labels.database && newest.has(s.labels.database)) durations.set(s.labels.database, s.value);
  for (const d of outcome.databases) if (d.ok && d.durationMs !== undefined) durations.set(d.path, d.durationMs / 1000);

  const run = { command: outcome.command };
  const lastRun = (name: string, value: number) => [
    ...(prev.get(name) ?? []).filter((s) => s.labels.command && s.labels.command !== outcome.command),
    { labels: run, value },
  ].sort((a, b) => a.labels.command!.localeCompare(b.labels.command!));
  const readable = backups.filter((b) => b.createdAt !== null);
  const newestArchive = readable.reduce<BackupInfo | null>((n, b) => (!n || b.createdAt! > n.createdAt! ? b : n), null);
  const g = (name: string, help: string, samples: MetricFamily["samples"]): MetricFamily => ({ name, help, type: "gauge", samples });
  return [
    g("duckbak_database_last_success_timestamp_seconds", "Time of the newest backup holding the database (Unix seconds).",
      dbs.map((p) => ({ labels: { database: p }, value: seconds(newest.get(p)!.at) }))),
    g("duckbak_database_last_backup_size_bytes", "Size of the database file in its newest backup.",
      dbs.map((p) => ({ labels: { database: p }, value: newest.get(p)!.bytes }))),
    g("duckbak_database_last_backup_duration_seconds", "How long the database's last backup by duckbak took.",
      dbs.filter((p) => durations.has(p)).map((p) => ({ labels: { database: p }, value: durations.get(p)! }))),
    g("duckbak_database_backups", "Readable backups holding the database.", dbs.map((p) => ({ labels: { database: p }, value: counts.get(p)! }))),
    g("duckbak_backups", "Readable backup archives in the backup folder.", [{ labels: dir, value: readable.length }]),
    g("duckbak_backups_unreadable", "Archives in the backup folder whose manifest cannot be read.", [{ labels: dir, value: backups.length - readable.length }]),
    g("duckbak_backups_size_bytes", "Total size of the backup archives.", [{ labels: dir, value: backups.reduce((n, b) => n + b.sizeBytes, 0) }]),
    g("duckbak_newest_backup_timestamp_seconds", "Time of the newest readable backup (Unix seconds).",
      newestArchive ? [{ labels: dir, value: seconds(newestArchive.createdAt!) }] : []),
    g("duckbak_newest_backup_size_bytes", "Size of the newest readable backup archive.", newestArchive ? [{ labels: dir, value: newestArchive.sizeBytes }] : []),
    g("duckbak_last_run_timestamp_seconds", "When the command's last run ended (Unix seconds).", lastRun("duckbak_last_run_timestamp_seconds", seconds(outcome.endedAt))),
    g("duckbak_last_run_duration_seconds", "How long the command's last run took.",
      lastRun("duckbak_last_run_duration_seconds", (outcome.endedAt.getTime() - outcome.startedAt.getTime()) / 1000)),
    g("duckbak_last_run_success", "1 when the command's last run succeeded completely, else 0.", lastRun("duckbak_last_run_success", outcome.status === "ok" ? 1 : 0)),
    g("duckbak_last_run_exit_code", "Exit code of the command's last run.", lastRun("duckbak_last_run_exit_code", outcome.exitCode)),
  ];
}

/** Writes the metrics file by temp + rename, so the collector never reads half a file. */
export async function writeMetricsFile(path: string, backups: BackupInfo[], outcome: RunOutcome): Promise<void> {
  let previous = "";
  try {
    previous = readFileSync(path, "utf8");
  } catch {
    // first run
  }
  await mkdir(dirname(path), { recursive: true }).catch((err) => {
    throw fsError(err, dirname(path), "create folder");
  });
  await writeFileAtomic(path, renderMetrics(buildMetrics(backups, outcome, previous)));
}
