import type { CAC } from "cac";
import { stat } from "node:fs/promises";
import { readArchiveManifest } from "../../core/archive/reader.ts";
import { resolveBackupRef } from "../../core/list.ts";
import type { ManifestDatabase } from "../../core/manifest.ts";
import { loadContext, type CommonFlags } from "../context.ts";
import { color, formatBytes, formatTable, formatTimestamp, plural, printJson } from "../output.ts";

export function registerLs(cli: CAC): void {
  cli
    .command("ls <name>", "What a backup holds: databases, tables with row counts, sizes, DuckDB versions (from its manifest; nothing is extracted)")
    .option("--backup-dir <dir>", "Backup folder (default: backup_dir from the config, else data/backups)")
    .option("--config <file>", "Config file (default: ./duckbak.toml when present)")
    .option("--json", "Print the manifest's facts as JSON")
    .example("duckbak ls backup_20240115_120000")
    .action(async (name: string, flags: CommonFlags) => runLs(name, flags));
}

const owner = (db: ManifestDatabase) => {
  const f = db.files.find((x) => x.role === "main");
  if (!f?.mode) return "";
  const who = f.owner || f.group ? `${f.owner || f.uid}:${f.group || f.gid}` : f.uid !== undefined ? `${f.uid}:${f.gid}` : "";
  return `, mode ${f.mode}${who ? ` ${who}` : ""}`;
};

async function runLs(name: string, flags: CommonFlags): Promise<number> {
  const { backupDir } = loadContext(flags);
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
      databases: m.databases.map((d) => ({
        name: d.name,
        original_path: d.original_path,
        size_bytes: d.size_bytes,
        consistency: d.consistency,
        duckdb: d.duckdb,
        files: d.files,
        tables: d.tables,
        rows: d.tables.reduce((n, t) => n + t.rows, 0),
      })),
      failed: m.failed,
    });
  }
  console.log(`${color.bold(ref.name)}  ${ref.path}`);
  console.log(`  created ${formatTimestamp(new Date(m.timestamp))} on ${m.host} by duckbak ${m.duckbak_version}; ${m.compression}, ${formatBytes(size)}`);
  for (const d of m.databases) {
    const rows = d.tables.reduce((n, t) => n + t.rows, 0);
    console.log("");
    console.log(`${color.bold(d.name)}  ${formatBytes(d.size_bytes)}, ${plural(d.tables.length, "table")}, ${plural(rows, "row")}`);
    console.log(`  from ${d.original_path}${owner(d)}`);
    const wal = d.files.filter((f) => f.role === "wal");
    const walText = wal.length ? `; with ${plural(wal.length, "WAL file")} (${formatBytes(wal.reduce((n, f) => n + f.size_bytes, 0))})` : "";
    console.log(`  DuckDB ${d.duckdb.creator_version} (storage ${d.duckdb.storage_version}), read by ${d.duckdb.reader_version}; consistency: ${d.consistency}${walText}`);
    const table = formatTable([["TABLE", "ROWS"], ...d.tables.map((t) => [`${t.schema}.${t.name}`, t.rows.toLocaleString("en-US")])]);
    for (const line of table) console.log(`    ${line}`);
  }
  for (const f of m.failed) console.log(`${color.yellow("not in this backup")}  ${f.path}: ${f.error}`);
  return 0;
}
