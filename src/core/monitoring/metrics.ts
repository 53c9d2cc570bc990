// The Prometheus text file (node_exporter's textfile collector) written after daily, backup and
// cleanup: facts from the backup folder and the repository (newest backup of each database, counts,
// sizes) plus the last run of each command. Values they cannot tell (a database's backup duration, the
// other commands' last runs) are carried over from the file's previous version, so a cleanup does
// not erase what the backup before it reported.
import { readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { fsError } from "../errors.ts";
import { writeFileAtomic } from "../fsutil.ts";
import type { RunOutcome } from "./outcome.ts";
import type { BackupTarget } from "./targets.ts";

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

/**
 * The families for the targets' state after `outcome` (the backup folder's archives, the
 * repository's snapshots), with carried-over values from `previous`. A database's series carry
 * the label `repository` for its snapshots, none for its archives.
 */
export function buildMetrics(targets: BackupTarget[], outcome: RunOutcome, previous: string): MetricFamily[] {
  const prev = parseSamples(previous);
  // Per target and database: the newest backup holding it and how many do.
  const perDb = targets.map((t) => {
    const dbs = new Map<string, { at: Date; bytes: number; count: number }>();
    for (const b of t.backups) {
      for (const d of b.databases) {
        const n = dbs.get(d.original_path);
        if (n) n.count++;
        else dbs.set(d.original_path, { at: b.createdAt, bytes: d.size_bytes, count: 1 });
      }
    }
    const where: Record<string, string> = t.kind === "snapshot" ? { repository: t.location } : {};
    return [...dbs.keys()].sort().map((p) => ({ labels: { database: p, ...where }, ...dbs.get(p)! }));
  }).flat();
  const known = new Set(perDb.map((d) => d.labels.database));
  // Durations: this run's, else the last reported one of a database still backed up.
  const durations = new Map<string, number>();
  for (const s of prev.get("duckbak_database_last_backup_duration_seconds") ?? [])
    if (s.labels.database && known.has(s.labels.database)) durations.set(s.labels.database, s.value);
  for (const d of outcome.databases) if (d.ok && d.durationMs !== undefined) durations.set(d.path, d.durationMs / 1000);

  const run = { command: outcome.command };
  const lastRun = (name: string, value: number) => [
    ...(prev.get(name) ?? []).filter((s) => s.labels.command && s.labels.command !== outcome.command),
    { labels: run, value },
  ].sort((a, b) => a.labels.command!.localeCompare(b.labels.command!));
  const of = (kind: BackupTarget["kind"]) => targets.filter((t) => t.kind === kind);
  const dir = (t: BackupTarget) => ({ backup_dir: t.location });
  const repo = (t: BackupTarget) => ({ repository: t.location });
  const g = (name: string, help: string, samples: MetricFamily["samples"]): MetricFamily => ({ name, help, type: "gauge", samples });
  return [
    g("duckbak_database_last_success_timestamp_seconds", "Time of the newest backup (archive, or snapshot with a repository label) holding the database (Unix seconds).",
      perDb.map((d) => ({ labels: d.labels, value: seconds(d.at) }))),
    g("duckbak_database_last_backup_size_bytes", "Size of the database file in its newest backup.", perDb.map((d) => ({ labels: d.labels, value: d.bytes }))),
    g("duckbak_database_last_backup_duration_seconds", "How long the database's last backup by duckbak took.",
      [...durations.keys()].filter((p) => known.has(p)).sort().map((p) => ({ labels: { database: p }, value: durations.get(p)! }))),
    g("duckbak_database_backups", "Readable backups (archives, or snapshots with a repository label) holding the database.", perDb.map((d) => ({ labels: d.labels, value: d.count }))),
    g("duckbak_backups", "Readable backup archives in the backup folder.", of("archive").map((t) => ({ labels: dir(t), value: t.backups.length }))),
    g("duckbak_backups_unreadable", "Archives in the backup folder whose manifest cannot be read.", of("archive").map((t) => ({ labels: dir(t), value: t.unreadable.length }))),
    g("duckbak_backups_size_bytes", "Total size of the backup archives.", of("archive").map((t) => ({ labels: dir(t), value: t.totalBytes ?? 0 }))),
    g("duckbak_newest_backup_timestamp_seconds", "Time of the newest readable backup (Unix seconds).",
      of("archive").filter((t) => t.backups[0]).map((t) => ({ labels: dir(t), value: seconds(t.backups[0]!.createdAt) }))),
    g("duckbak_newest_backup_size_bytes", "Size of the newest readable backup archive.",
      of("archive").filter((t) => t.backups[0]).map((t) => ({ labels: dir(t), value: t.backups[0]!.sizeBytes }))),
    g("duckbak_snapshots", "Readable snapshots in the repository.", of("snapshot").map((t) => ({ labels: repo(t), value: t.backups.length }))),
    g("duckbak_snapshots_unreadable", "Snapshot files in the repository that cannot be read.", of("snapshot").map((t) => ({ labels: repo(t), value: t.unreadable.length }))),
    g("duckbak_newest_snapshot_timestamp_seconds", "Time of the repository's newest readable snapshot (Unix seconds).",
      of("snapshot").filter((t) => t.backups[0]).map((t) => ({ labels: repo(t), value: seconds(t.backups[0]!.createdAt) }))),
    g("duckbak_last_run_timestamp_seconds", "When the command's last run ended (Unix seconds).", lastRun("duckbak_last_run_timestamp_seconds", seconds(outcome.endedAt))),
    g("duckbak_last_run_duration_seconds", "How long the command's last run took.",
      lastRun("duckbak_last_run_duration_seconds", (outcome.endedAt.getTime() - outcome.startedAt.getTime()) / 1000)),
    g("duckbak_last_run_success", "1 when the command's last run succeeded completely, else 0.", lastRun("duckbak_last_run_success", outcome.status === "ok" ? 1 : 0)),
    g("duckbak_last_run_exit_code", "Exit code of the command's last run.", lastRun("duckbak_last_run_exit_code", outcome.exitCode)),
  ];
}

/** Writes the metrics file by temp + rename, so the collector never reads half a file. */
export async function writeMetricsFile(path: string, targets: BackupTarget[], outcome: RunOutcome): Promise<void> {
  let previous = "";
  try {
    previous = readFileSync(path, "utf8");
  } catch {
    // first run
  }
  await mkdir(dirname(path), { recursive: true }).catch((err) => {
    throw fsError(err, dirname(path), "create folder");
  });
  await writeFileAtomic(path, renderMetrics(buildMetrics(targets, outcome, previous)));
}
