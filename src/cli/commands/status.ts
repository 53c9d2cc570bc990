import type { CAC } from "cac";
import { describeHolder } from "../../core/lock.ts";
import { checkStatus, DEFAULT_MAX_AGE, formatAge, parseDuration, type NewestBackup, type StatusReport, type TargetStatus } from "../../core/status.ts";
import { describeBackup } from "../../core/monitoring/targets.ts";
import { archivesInUse, openRepository, repoLocation } from "../repo.ts";
import { configuredDatabases, loadContext, resolveLogFile, type CommonFlags } from "../context.ts";
import { bakJson, color, formatBytes, formatTable, formatTimestamp, printJson } from "../output.ts";

interface StatusFlags extends CommonFlags {
  maxAge?: string;
  logFile?: string;
  repo?: string;
}

export function registerStatus(cli: CAC): void {
  cli
    .command("status", "For monitoring: exit 12 when a database has no recent backup (archive, snapshot) or the last daily run failed, else 0")
    .option("--max-age <duration>", `Oldest acceptable newest backup, like 26h, 90m or 2d (default ${DEFAULT_MAX_AGE})`)
    .option("--backup-dir <dir>", "Backup folder (default: backup_dir from the config, else data/backups; not checked when only a repository is configured)")
    .option("--repo <location>", "Snapshot repository to check (default: DUCKBAK_REPOSITORY, else repository from the config); with backup_dir configured too, both are checked")
    .option("--config <file>", "Config file (default: ./duckbak.toml when present): the databases that must be backed up")
    .option("--log-file <file>", "Backup log with the daily runs (default: log_file from the config, else data/backup.log)")
    .option("--json", "Print the report as JSON")
    .example("duckbak status --max-age 26h || alert 'duckbak backups are stale'")
    .example("DUCKBAK_PASSWORD_FILE=/etc/duckbak.pw duckbak status   # repository = ... in duckbak.toml: its snapshots are checked")
    .action(async (flags: StatusFlags) => runStatus(flags));
}

async function runStatus(flags: StatusFlags): Promise<number> {
  const { config, backupDir } = loadContext(flags);
  const maxAge = String(flags.maxAge ?? DEFAULT_MAX_AGE);
  // The targets daily writes to: the repository alone, or with backup_dir configured, both.
  const location = repoLocation(flags.repo, config);
  const report = await checkStatus({
    backupDir: archivesInUse(location, config, flags.backupDir) ? backupDir : null,
    repository: location ? { location, open: () => openRepository(location, config) } : undefined,
    databases: configuredDatabases(config),
    logFile: resolveLogFile(flags.logFile, config),
    maxAgeMs: parseDuration(maxAge),
  });
  if (flags.json) return printJson("status", statusJson(report), report.exitCode, report.problems.join("; "));
  printStatus(report, maxAge);
  return report.exitCode;
}

const damageOf = (targets: TargetStatus[]) => [...new Set(targets.flatMap((t) => t.newest?.sourceDamage ?? []))];

function statusJson(r: StatusReport) {
  const d = r.lastDaily;
  const ageSeconds = (ms: number | null) => (ms === null ? null : Math.round(ms / 1000));
  return {
    max_age_seconds: r.maxAgeMs / 1000,
    backup_dir: r.backupDir,
    repository: r.repository,
    log_file: r.logFile,
    databases: r.databases.map((db) => ({
      path: db.path,
      newest_backup: db.newest?.name ?? null,
      created_at: db.newest?.createdAt.toISOString() ?? null,
      age_seconds: ageSeconds(db.ageMs),
      stale: db.stale,
      source_damaged: damageOf(db.targets).length > 0,
      source_damage: damageOf(db.targets),
      targets: db.targets.map((t) => ({
        kind: t.kind,
        location: t.location,
        newest_backup: t.newest?.name ?? null,
        created_at: t.newest?.createdAt.toISOString() ?? null,
        age_seconds: ageSeconds(t.ageMs),
        stale: t.stale,
        source_damage: t.newest?.sourceDamage ?? [],
      })),
    })),
    last_daily: d && {
      run: d.run,
      started_at: d.startedAt.toISOString(),
      ended_at: d.endedAt?.toISOString() ?? null,
      status: d.status,
      exit_code: d.exitCode,
      errors: d.errors,
      line: d.lastLine,
    },
    problems: r.problems,
    notes: r.notes,
    unreadable: r.unreadable.map((b) => ({ file: b.file, error: b.error })),
    unreadable_snapshots: r.unreadableSnapshots,
    lock: r.lock && { holder: r.lock.holder, description: describeHolder(r.lock.holder) },
    bak_files: r.bakFiles.map(bakJson),
  };
}

function printStatus(r: StatusReport, maxAge: string): void {
  const where = [r.backupDir && `Backups in ${r.backupDir}`, r.repository && `${r.backupDir ? "snapshots" : "Snapshots"} in the repository ${r.repository}`];
  const each = r.backupDir && r.repository ? "; each database needs a recent one in both" : "";
  console.log(`${where.filter(Boolean).join(" and ")} (maximum age ${maxAge}${each}):`);
  const shown = (n: NewestBackup) => describeBackup(n.kind, n);
  const rows = r.databases.flatMap((d) =>
    d.targets.map((t) => [
      t.newest === null ? "MISSING" : t.newest.sourceDamage.length ? "DAMAGED" : t.stale ? "STALE" : "ok",
      d.path,
      t.newest ? shown(t.newest) : t.kind === "archive" ? "no backup" : "in no snapshot",
      t.newest ? `${formatTimestamp(t.newest.createdAt)}, ${formatAge(t.ageMs!)} ago` : "",
    ]),
  );
  for (const line of formatTable(rows)) console.log(`  ${line}`);
  const d = r.lastDaily;
  if (d) {
    const exit = d.exitCode === null ? "" : ` (exit ${d.exitCode})`;
    console.log(`Last daily run: ${formatTimestamp(d.startedAt)}, ${d.status}${exit}; its last line in ${r.logFile}:`);
    console.log(`  ${d.lastLine}`);
  } else {
    console.log(`Last daily run: none in ${r.logFile}`);
  }
  if (r.lock) console.log(`Backup folder locked by ${describeHolder(r.lock.holder)}`);
  for (const n of r.notes) console.log(`Note: ${n}`);
  if (r.bakFiles.length > 0) {
    const total = r.bakFiles.reduce((n, b) => n + b.sizeBytes, 0);
    console.log(`Previous files kept by restore (${formatBytes(total)}; remove old ones with duckbak cleanup --bak-older-than 7d):`);
    for (const line of formatTable(r.bakFiles.map((b) => [b.path, formatBytes(b.sizeBytes), `${formatAge(Date.now() - b.createdAt.getTime())} old`])))
      console.log(`  ${line}`);
  }
  if (r.problems.length === 0) console.log(color.green("Status: OK"));
  else console.log([color.red("Status: STALE"), ...r.problems.map((p) => `  - ${p}`)].join("\n"));
}
