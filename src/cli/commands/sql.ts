import type { CAC } from "cac";
import { archiveSource, queryBackup, type BackupSource } from "../../core/browse.ts";
import { resolveBackupRef } from "../../core/list.ts";
import { snapshotSource } from "../../core/repo/extract.ts";
import { ENCRYPTION_KEY_OPTION, asList, keysFor, loadContext, type CommonFlags } from "../context.ts";
import { lockWaitSeconds } from "../lock.ts";
import { REPO_LOCK_WAIT_OPTION, REPO_OPTION, openRepository, readLocation } from "../repo.ts";
import { color, formatTable, plural, printJson } from "../output.ts";
import { withProgress } from "../progress.ts";

interface SqlFlags extends CommonFlags {
  only?: string | string[];
  repo?: string;
  lockWait?: string;
}

export function registerSql(cli: CAC): void {
  cli
    .command("sql <name> <query>", "Run a read-only query on a backup (extracted to a private temporary copy, removed afterwards)")
    .option("--only <database>", "Extract and attach only this database of the backup; repeatable")
    .option(...REPO_OPTION)
    .option("--backup-dir <dir>", "Backup folder (default: backup_dir from the config, else data/backups)")
    .option("--config <file>", "Config file (default: ./duckbak.toml when present)")
    .option(...REPO_LOCK_WAIT_OPTION)
    .option(...ENCRYPTION_KEY_OPTION)
    .option("--json", "Print the rows as JSON")
    .example(`duckbak sql backup_20240115_120000 "SELECT count(*) FROM portfolio_trades"   # one database: its tables directly`)
    .example(`duckbak sql backup_20240115_120000 "SELECT * FROM results.portfolio_trades LIMIT 5"   # several: <file name without .duckdb>.<table>`)
    .example(`duckbak sql latest --repo /mnt/backup/duckbak "SELECT count(*) FROM trades"   # a snapshot: its id, a unique prefix, or latest`)
    .action(async (name: string, query: string, flags: SqlFlags) => runSql(name, query, flags));
}

/** A cell as text: NULL, strings as they are, the rest as JSON. */
const cell = (v: unknown): string => (v === null || v === undefined ? "NULL" : typeof v === "string" ? v : JSON.stringify(v));

async function runSql(name: string, query: string, flags: SqlFlags): Promise<number> {
  const { backupDir, config } = loadContext(flags);
  const location = readLocation(flags, config);
  let source: BackupSource;
  let from: Record<string, string>;
  if (location) {
    const repo = await openRepository(location, config);
    const s = await snapshotSource(repo, name, { lockWaitSeconds: lockWaitSeconds(flags.lockWait, config) });
    source = s;
    from = { repository: repo.location, snapshot: s.snapshot.id };
  } else {
    const ref = resolveBackupRef(name, backupDir);
    source = archiveSource(ref);
    from = { backup: ref.name };
  }
  const r = await withProgress(flags, (progress) =>
    queryBackup(source, String(query), { only: asList(flags.only), progress, keys: keysFor(flags, config) }),
  );
  if (flags.json) {
    return printJson("sql", { ...from, databases: r.databases, columns: r.columns, rows: r.rows, row_count: r.rows.length });
  }
  const [head, ...lines] = formatTable([r.columns, ...r.rows.map((row) => r.columns.map((c) => cell(row[c])))]);
  if (head !== undefined) console.log(color.bold(head));
  for (const l of lines) console.log(l);
  console.log(`(${plural(r.rows.length, "row")})`);
  return 0;
}
