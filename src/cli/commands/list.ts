import type { CAC } from "cac";
import { listBackups } from "../../core/list.ts";
import { loadContext, type CommonFlags } from "../context.ts";
import { color, formatBytes, formatTable, formatTimestamp, printJson } from "../output.ts";

export function registerList(cli: CAC): void {
  cli
    .command("list", "List backups, newest first")
    .option("--backup-dir <dir>", "Backup folder (default: backup_dir from the config, else data/backups)")
    .option("--config <file>", "Config file (default: ./duckbak.toml when present)")
    .option("--json", "Print the list as JSON")
    .action(async (flags: CommonFlags) => runList(flags));
}

async function runList(flags: CommonFlags): Promise<number> {
  const { backupDir } = loadContext(flags);
  const backups = await listBackups(backupDir);
  if (flags.json) {
    printJson(
      backups.map((b) => ({
        name: b.name,
        path: b.path,
        created_at: b.manifest?.timestamp ?? null,
        size_bytes: b.sizeBytes,
        compression: b.compression,
        databases: b.manifest?.databases.map((d) => d.name) ?? [],
        failed: b.manifest?.failed.map((f) => f.path) ?? [],
        error: b.error,
      })),
    );
    return 0;
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
      ? b.manifest.databases.map((d) => d.name).join(", ") + (b.manifest.failed.length ? color.yellow(` (${b.manifest.failed.length} failed)`) : "")
      : color.red(`UNREADABLE: ${b.error}`),
  ]);
  // The last column carries colour codes; formatTable pads every column but the last.
  const [head, ...lines] = formatTable([["NAME", "CREATED (UTC)", "SIZE", "COMPRESSION", "DATABASES"], ...rows]);
  console.log(color.bold(head!));
  for (const l of lines) console.log(l);
  return 0;
}
