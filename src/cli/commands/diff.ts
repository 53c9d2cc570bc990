import type { CAC } from "cac";
import { diffBackup, type TableDiff } from "../../core/diff.ts";
import { resolveBackupRef } from "../../core/list.ts";
import { ExitCode } from "../../core/errors.ts";
import { ENCRYPTION_KEY_OPTION, keysFor, loadContext, parseSeconds, type CommonFlags } from "../context.ts";
import { color, plural, printJson } from "../output.ts";

interface DiffFlags extends CommonFlags {
  wait?: string;
}

export function registerDiff(cli: CAC): void {
  cli
    .command("diff <name> [...databases]", "Compare a backup with the current databases: tables, columns, row counts, contents")
    .option("--backup-dir <dir>", "Backup folder (default: backup_dir from the config, else data/backups)")
    .option("--config <file>", "Config file (default: ./duckbak.toml when present)")
    .option("--wait <seconds>", "Wait up to this long for a database that a writer has open (default 0)")
    .option(...ENCRYPTION_KEY_OPTION)
    .option("--json", "Print the result as JSON")
    .example("duckbak diff backup_20240115_120000              # each database against its original path")
    .example("duckbak diff backup_20240115_120000 restored/results.duckdb")
    .action(async (name: string, databases: string[], flags: DiffFlags) => runDiff(name, databases, flags));
}

const n = (v: number) => v.toLocaleString("en-US");

async function runDiff(name: string, databases: string[], flags: DiffFlags): Promise<number> {
  const { backupDir, config } = loadContext(flags);
  const result = await diffBackup(resolveBackupRef(name, backupDir), { databases, waitSeconds: parseSeconds("--wait", flags.wait), keys: keysFor(flags, config) });
  // 0: identical; 5: compared, and found differences; otherwise a database could not be compared.
  const failed = result.databases.find((d) => !d.ok);
  const code = failed && !failed.ok ? failed.error.exitCode : result.identical ? ExitCode.OK : ExitCode.DIFFERENT;
  if (flags.json) {
    const body = {
      archive: result.archive,
      name: result.name,
      identical: result.identical,
      databases: result.databases.map((d) => ({
        name: d.name,
        original_path: d.originalPath,
        current_path: d.currentPath,
        ...(d.ok ? { ok: true, identical: d.identical, tables: d.tables, error: null } : { ok: false, identical: null, tables: null, error: d.error.message }),
      })),
    };
    return printJson("diff", body, code, failed && !failed.ok ? failed.error.message : undefined);
  }
  for (const d of result.databases) {
    console.log(color.bold(`${d.name}: ${d.currentPath} vs backup ${result.name}`));
    if (!d.ok) {
      console.error(`  ${color.red("FAILED")} ${d.error.message}`);
      continue;
    }
    for (const t of d.tables) console.log(`  ${describe(t)}`);
    console.log(d.identical ? `  ${color.green("identical")}` : `  ${color.yellow("differs")}`);
  }
  const differing = result.databases.filter((d) => d.ok && !d.identical).length;
  if (!failed) console.log(result.identical ? "No differences." : `Differences found in ${differing} of ${plural(result.databases.length, "database")}.`);
  return code;
}

function describe(t: TableDiff): string {
  const name = `${t.schema}.${t.name}`;
  if (t.status === "added") return `${color.green("+")} ${name}: added (${n(t.rows.current!)} records)`;
  if (t.status === "dropped") return `${color.red("-")} ${name}: dropped (had ${n(t.rows.backup!)} records)`;
  if (t.status === "same") return `  ${name}: same (${n(t.rows.current!)} records)`;
  const notes: string[] = [];
  const c = t.columns!;
  for (const a of c.added) notes.push(`column ${a.name} ${a.type} added`);
  for (const d of c.dropped) notes.push(`column ${d.name} ${d.type} dropped`);
  for (const r of c.retyped) notes.push(`column ${r.name} ${r.backup} -> ${r.current}`);
  if (c.reordered) notes.push("columns reordered");
  if (t.rows.difference !== 0) notes.push(`Current DB: ${n(t.rows.current!)} records / Backup DB: ${n(t.rows.backup!)} records / Difference: ${n(t.rows.difference!)} records`);
  else if (t.contents === "different") notes.push(`same row count (${n(t.rows.current!)} records), different contents`);
  return `${color.yellow("~")} ${name}: ${notes.join("; ")}`;
}
