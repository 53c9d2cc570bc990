import type { CAC } from "cac";
import { ExitCode } from "../../core/errors.ts";
import { listBackups } from "../../core/list.ts";
import { restoreName } from "../../core/restore.ts";
import { loadContext, type CommonFlags } from "../context.ts";
import { color, formatBytes, formatTable, formatTimestamp, printJson } from "../output.ts";
import { REPO_OPTION, openRepository, readLocation } from "../repo.ts";
import { loadSnapshots, shortId, type UnreadableSnapshot } from "../../core/repo/snapshots.ts";

interface ListFlags extends CommonFlags {
  repo?: string;
}

export function registerList(cli: CAC): void {
  cli
    .command("list", "List backups, newest first")
    .option(...REPO_OPTION)
    .option("--backup-dir <dir>", "Backup folder (default: backup_dir from the config, else data/backups)")
    .option("--config <file>", "Config file (default: ./duckbak.toml when present)")
    .option("--json", "Print the list as JSON")
    .action(async (flags: ListFlags) => runList(flags));
}

async function runList(flags: ListFlags): Promise<number> {
  const { backupDir, config } = loadContext(flags);
  const location = readLocation(flags, config);
  if (location) return runRepoList(location, flags);
  const backups = await listBackups(backupDir);
  if (flags.json) {
    return printJson("list", {
      backup_dir: backupDir,
      backups: backups.map((b) => ({
        name: b.name,
        path: b.path,
        created_at: b.manifest?.timestamp ?? null,
        size_bytes: b.sizeBytes,
        compression: b.compression,
        databases: b.manifest?.databases.map(restoreName) ?? [],
        failed: b.manifest?.failed.map((f) => f.path) ?? [],
        error: b.error,
      })),
    });
  }
  if (backups.length === 0) {
    console.log(`No backups in ${backupDir}`);
    return 0;
  }
  const rows = backups.map((b) => [
    b.name,
    b.createdAt ? formatTimestamp(b.createdAt) : "-",
    formatBytes(b.sizeBytes),
    b.compression,
    b.manifest
      ? b.manifest.databases.map(restoreName).join(", ") + (b.manifest.failed.length ? color.yellow(` (${b.manifest.failed.length} failed)`) : "")
      : color.red(`UNREADABLE: ${b.error}`),
  ]);
  // The last column carries colour codes; formatTable pads every column but the last.
  const [head, ...lines] = formatTable([["NAME", "CREATED (UTC)", "SIZE", "COMPRESSION", "DATABASES"], ...rows]);
  console.log(color.bold(head!));
  for (const l of lines) console.log(l);
  return 0;
}

async function runRepoList(location: string, flags: ListFlags): Promise<number> {
  const repo = await openRepository(location, loadContext(flags).config);
  // A damaged snapshot file is listed as such, as an unreadable archive is (the others still are).
  const unreadable: UnreadableSnapshot[] = [];
  const snaps = await loadSnapshots(repo, unreadable);
  // Damage in the repository is exit 4, as verify gives it.
  const code = unreadable.length ? ExitCode.VERIFY_FAILED : ExitCode.OK;
  if (flags.json) {
    return printJson("list", {
      repository: repo.location,
      snapshots: [
        ...snaps.map((s) => ({
          id: s.id,
          short_id: s.short,
          created_at: s.snapshot.timestamp,
          host: s.snapshot.host,
          databases: s.snapshot.databases.map(restoreName),
          size_bytes: s.snapshot.stats.logical_bytes,
          added_bytes: s.snapshot.stats.added_bytes,
          failed: s.snapshot.failed.map((f) => f.path),
          error: null,
        })),
        ...unreadable.map((u) => ({ id: u.id, short_id: shortId(u.id), created_at: null, host: null, databases: [], size_bytes: null, added_bytes: null, failed: [], error: u.error.message })),
      ],
    }, code, unreadable[0]?.error.message);
  }
  for (const u of unreadable) console.error(`${color.red("UNREADABLE")} snapshot ${shortId(u.id)}: ${u.error.message}`);
  if (snaps.length === 0) {
    console.log(`No ${unreadable.length ? "readable " : ""}snapshots in ${repo.location}`);
    return code;
  }
  const rows = snaps.map((s) => [
    s.short,
    formatTimestamp(s.timestamp),
    formatBytes(s.snapshot.stats.logical_bytes),
    formatBytes(s.snapshot.stats.added_bytes),
    s.snapshot.databases.map(restoreName).join(", ") + (s.snapshot.failed.length ? color.yellow(` (${s.snapshot.failed.length} failed)`) : ""),
  ]);
  const [head, ...lines] = formatTable([["ID", "CREATED (UTC)", "SIZE", "ADDED", "DATABASES"], ...rows]);
  console.log(color.bold(head!));
  for (const l of lines) console.log(l);
  return code;
}
