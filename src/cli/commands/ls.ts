import type { CAC } from "cac";
import { stat } from "node:fs/promises";
import { readArchiveManifest } from "../../core/archive/reader.ts";
import { resolveBackupRef } from "../../core/list.ts";
import type { DatabaseFacts } from "../../core/manifest.ts";
import { restoreName } from "../../core/restore.ts";
import { loadContext, type CommonFlags } from "../context.ts";
import { REPO_OPTION, openRepository, readLocation } from "../repo.ts";
import { snapshotSource } from "../../core/repo/extract.ts";
import { color, formatBytes, formatTable, formatTimestamp, plural, printJson } from "../output.ts";

interface LsFlags extends CommonFlags {
  repo?: string;
}

export function registerLs(cli: CAC): void {
  cli
    .command("ls <name>", "What a backup holds: databases, tables with row counts, sizes, DuckDB versions (from its manifest; nothing is extracted)")
    .option(...REPO_OPTION)
    .option("--backup-dir <dir>", "Backup folder (default: backup_dir from the config, else data/backups)")
    .option("--config <file>", "Config file (default: ./duckbak.toml when present)")
    .option("--json", "Print the manifest's facts as JSON")
    .example("duckbak ls backup_20240115_120000")
    .example("duckbak ls latest --repo /mnt/backup/duckbak   # a snapshot: its id, a unique prefix, or latest")
    .action(async (name: string, flags: LsFlags) => runLs(name, flags));
}

const owner = (db: DatabaseFacts) => {
  const f = db.files.find((x) => x.role === "main");
  if (!f?.mode) return "";
  const who = f.owner || f.group ? `${f.owner || f.uid}:${f.group || f.gid}` : f.uid !== undefined ? `${f.uid}:${f.gid}` : "";
  return `, mode ${f.mode}${who ? ` ${who}` : ""}`;
};

const dbJson = (d: DatabaseFacts) => ({
  name: d.name,
  restore_name: restoreName(d),
  original_path: d.original_path,
  size_bytes: d.size_bytes,
  consistency: d.consistency,
  source_blocks: d.source_blocks ?? null,
  duckdb: d.duckdb,
  files: d.files,
  tables: d.tables,
  rows: d.tables.reduce((n, t) => n + t.rows, 0),
});

async function runLs(name: string, flags: LsFlags): Promise<number> {
  const { backupDir, config } = loadContext(flags);
  const location = readLocation(flags, config);
  if (location) return runRepoLs(name, location, flags);
  const ref = resolveBackupRef(name, backupDir);
  const m = await readArchiveManifest(ref.path, ref.compression);
  const size = (await stat(ref.path)).size;
  if (flags.json) {
    return printJson("ls", {
      name: ref.name,
      path: ref.path,
      size_bytes: size,
      created_at: m.timestamp,
      compression: m.compression,
      host: m.host,
      duckbak_version: m.duckbak_version,
      databases: m.databases.map(dbJson),
      failed: m.failed,
    });
  }
  console.log(`${color.bold(ref.name)}  ${ref.path}`);
  console.log(`  created ${formatTimestamp(new Date(m.timestamp))} on ${m.host} by duckbak ${m.duckbak_version}; ${m.compression}, ${formatBytes(size)}`);
  printDatabases(m.databases, m.failed);
  return 0;
}

/** ls NAME --repo: the same facts from a snapshot file (no pack is read). */
async function runRepoLs(name: string, location: string, flags: LsFlags): Promise<number> {
  const { config } = loadContext(flags);
  const repo = await openRepository(location, config);
  const { snapshot: snap } = await snapshotSource(repo, name);
  const m = snap.snapshot;
  if (flags.json) {
    return printJson("ls", {
      repository: repo.location,
      snapshot: snap.id,
      created_at: m.timestamp,
      host: m.host,
      duckbak_version: m.duckbak_version,
      logical_bytes: m.stats.logical_bytes,
      added_bytes: m.stats.added_bytes,
      databases: m.databases.map(dbJson),
      failed: m.failed,
    });
  }
  console.log(`${color.bold(`snapshot ${snap.short}`)}  ${repo.location}`);
  console.log(`  created ${formatTimestamp(snap.timestamp)} on ${m.host} by duckbak ${m.duckbak_version}; ${formatBytes(m.stats.logical_bytes)}, ${formatBytes(m.stats.added_bytes)} added to the repository`);
  printDatabases(m.databases, m.failed);
  return 0;
}

function printDatabases(databases: DatabaseFacts[], failed: { path: string; error: string }[]): void {
  for (const d of databases) {
    const rows = d.tables.reduce((n, t) => n + t.rows, 0);
    console.log("");
    // Its restore name (what --only and a --restore-dir use): `2-a.duckdb` beside another a.duckdb.
    console.log(`${color.bold(restoreName(d))}  ${formatBytes(d.size_bytes)}, ${plural(d.tables.length, "table")}, ${plural(rows, "row")}`);
    console.log(`  from ${d.original_path}${owner(d)}`);
    // As verify says: the backup holds the source as it was, damage included.
    if (d.source_blocks?.state === "damaged") console.log(`  ${color.red("DAMAGED")} when backed up (the source failed DuckDB's block checksums): ${d.source_blocks.problems.join("; ")}`);
    const wal = d.files.filter((f) => f.role === "wal");
    const walText = wal.length ? `; with ${plural(wal.length, "WAL file")} (${formatBytes(wal.reduce((n, f) => n + f.size_bytes, 0))})` : "";
    // Its key is needed only to open it (sql, restore --table), not here: the facts are the manifest's.
    const encrypted = d.duckdb.encrypted ? ", encrypted" : "";
    console.log(`  DuckDB ${d.duckdb.creator_version} (storage ${d.duckdb.storage_version}${encrypted}), read by ${d.duckdb.reader_version}; consistency: ${d.consistency}${walText}`);
    const table = formatTable([["TABLE", "ROWS"], ...d.tables.map((t) => [`${t.schema}.${t.name}`, t.rows.toLocaleString("en-US")])]);
    for (const line of table) console.log(`    ${line}`);
  }
  for (const f of failed) console.log(`${color.yellow("not in this backup")}  ${f.path}: ${f.error}`);
}
