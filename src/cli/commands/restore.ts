import type { CAC } from "cac";
import { resolve } from "node:path";
import { restoreBackup } from "../../core/restore.ts";
import { resolveBackupRef } from "../../core/list.ts";
import { dirname } from "node:path";
import { withProgress } from "../progress.ts";
import { ENCRYPTION_KEY_OPTION, keysFor, loadContext, asList, type CommonFlags } from "../context.ts";
import { LOCK_WAIT_OPTION, lockWaitSeconds, withRepoLock } from "../lock.ts";
import { color, plural, printJson, printWarning, snakeKeys, displayPath } from "../output.ts";
import { archiveSource, restoreTable, type BackupSource } from "../../core/browse.ts";
import { snapshotSource } from "../../core/repo/extract.ts";
import { UsageError } from "../../core/errors.ts";
import { parseSeconds } from "../context.ts";
import { REPO_OPTION, openRepository, readLocation, startOpening } from "../repo.ts";
import { restoreRepoSnapshot } from "../../core/repo/restore.ts";
import { preloadDuckDB } from "../../core/duckdb/open.ts";
import { shortId } from "../../core/repo/snapshots.ts";
import type { RestoredDatabase } from "../../core/restore.ts";
import type { KeyLookup } from "../../core/keys.ts";

interface RestoreFlags extends CommonFlags {
  overwrite?: boolean;
  restoreDir?: string;
  only?: string | string[];
  verify: boolean;
  lockWait?: string;
  table?: string;
  into?: string;
  replace?: boolean;
  wait?: string;
  repo?: string;
}

export function registerRestore(cli: CAC): void {
  cli
    .command("restore <name>", "Restore databases from a backup; the current files are kept as .bak.<timestamp>")
    .option("--overwrite", "Replace the current files instead of keeping them as .bak files")
    .option("--restore-dir <dir>", "Restore into this folder (created if needed) instead of each database's original path")
    .option("--only <database>", "Restore only this database: its name as ls shows it (2-a.duckdb for a second a.duckdb), file name or original path; repeatable")
    .option("--no-verify", "Skip the checksum and block checks before writing (the restored files are still checked)")
    .option("--table <[schema.]table>", "Restore only this table, into the live database --into (one transaction)")
    .option("--into <database>", "With --table: the live database to put the table into (not an encrypted one: duckbak does not write encryption)")
    .option("--replace", "With --table: drop the live table of that name first (refused otherwise)")
    .option("--wait <seconds>", "With --table: wait up to this long for a writer to close the live database (default 0)")
    .option(...REPO_OPTION)
    .option("--backup-dir <dir>", "Backup folder (default: backup_dir from the config, else data/backups)")
    .option("--config <file>", "Config file (default: ./duckbak.toml when present)")
    .option(...LOCK_WAIT_OPTION)
    .option(...ENCRYPTION_KEY_OPTION)
    .option("--json", "Print the result as JSON")
    .example("duckbak restore backup_20240115_120000")
    .example("duckbak restore backup_20240115_120000 --only results.duckdb --restore-dir /tmp/check")
    .example("duckbak restore backup_20240115_120000 --table main.portfolio_trades --into data/results.duckdb")
    .example("duckbak restore latest --repo /mnt/backup/duckbak --restore-dir /tmp/check   # a snapshot id or unique prefix")
    .action(async (name: string, flags: RestoreFlags) => runRestore(name, flags));
}

async function runRestore(name: string, flags: RestoreFlags): Promise<number> {
  const { backupDir, config } = loadContext(flags);
  const location = readLocation(flags, config);
  if (location) {
    if (flags.table !== undefined || flags.into !== undefined || flags.replace) {
      checkTableFlags(flags);
      const repo = await openRepository(location, config);
      const source = await snapshotSource(repo, name, { lockWaitSeconds: lockWaitSeconds(flags.lockWait, config) });
      return runTableRestore(source, (run) => run(), flags, keysFor(flags, config), { repository: repo.location, snapshot: source.snapshot.id });
    }
    // While the password's key is derived: restore starts its workers, and DuckDB's library (for
    // the open check at the end) loads.
    const opening = startOpening(location, config, preloadDuckDB).repository;
    const r = await withProgress(flags, (progress) =>
      restoreRepoSnapshot(opening, name, {
        overwrite: flags.overwrite,
        restoreDir: flags.restoreDir,
        only: asList(flags.only),
        lockWaitSeconds: lockWaitSeconds(flags.lockWait, config),
        keys: keysFor(flags, config),
        progress,
      }),
    );
    if (flags.json) return printJson("restore", { repository: (await opening).location, snapshot: r.snapshot, databases: snakeKeys(r.databases), warnings: r.warnings });
    printRestored(r.databases, `snapshot ${shortId(r.snapshot)}`, r.warnings);
    return 0;
  }
  const ref = resolveBackupRef(name, backupDir);
  if (flags.table !== undefined || flags.into !== undefined || flags.replace) {
    checkTableFlags(flags);
    // The lock keeps a cleanup from deleting the archive while it is read (not one elsewhere: see below).
    const locked = <T>(run: () => Promise<T>) => (dirname(ref.path) === backupDir ? withRepoLock(backupDir, "restore", lockWaitSeconds(flags.lockWait, config), run) : run());
    return runTableRestore(archiveSource(ref), locked, flags, keysFor(flags, config), { archive: ref.path });
  }
  const restore = () =>
    withProgress(flags, (progress) =>
      restoreBackup(ref, { progress, overwrite: flags.overwrite, restoreDir: flags.restoreDir, only: asList(flags.only), verify: flags.verify !== false, keys: keysFor(flags, config) }),
    );
  // The lock keeps a cleanup from deleting the archive while it is read. An archive elsewhere (a
  // mounted off-site copy, maybe read-only) is no backup folder of ours to lock.
  const result =
    dirname(ref.path) === backupDir ? await withRepoLock(backupDir, "restore", lockWaitSeconds(flags.lockWait, config), restore) : await restore();
  if (flags.json) return printJson("restore", snakeKeys(result) as object);
  printRestored(result.databases, result.name, result.warnings);
  return 0;
}

function printRestored(databases: RestoredDatabase[], from: string, warnings: string[]): void {
  for (const d of databases) {
    console.log(`${color.green("restored")}  ${displayPath(d.target)}${d.folded_from_backup.length ? " (the backup's WAL folded in: same content, other bytes)" : ""}`);
    for (const f of d.folded_at_target) console.log(`          ${displayPath(f)}: its transactions were folded into the current database first`);
    for (const b of d.backups) console.log(`          previous file kept as ${displayPath(b)}`);
    for (const r of d.replaced) console.log(`          replaced ${displayPath(r)} (--overwrite)`);
  }
  console.log(`Restored ${plural(databases.length, "database")} from ${from}.`);
  for (const w of warnings) printWarning(w);
}

function checkTableFlags(flags: RestoreFlags): void {
  if (flags.table === undefined || flags.into === undefined) throw new UsageError("--table and --into go together (see duckbak restore --help)");
  if (flags.overwrite || flags.restoreDir !== undefined) throw new UsageError("--table restores into --into; --overwrite and --restore-dir are for whole databases");
}

/**
 * restore NAME --table T --into DB [--replace]: one table back into a live database, from an
 * archive or a repository snapshot; `from` heads the JSON (archive, or repository and snapshot).
 */
async function runTableRestore(
  source: BackupSource,
  locked: <T>(run: () => Promise<T>) => Promise<T>,
  flags: RestoreFlags,
  keys: KeyLookup,
  from: Record<string, string>,
): Promise<number> {
  const run = () =>
    withProgress(flags, (progress) =>
      restoreTable(source, {
        table: String(flags.table),
        into: resolve(String(flags.into)),
        replace: flags.replace === true,
        only: asList(flags.only),
        waitSeconds: parseSeconds("--wait", flags.wait),
        keys,
        progress,
      }),
    );
  const r = await locked(run);
  if (flags.json) return printJson("restore", { ...from, database: r.database, into: r.into, schema: r.schema, table: r.table, rows: r.rows, replaced: r.replaced });
  console.log(`${color.green("restored")}  table ${r.schema}.${r.table} (${plural(r.rows, "row")}) from ${r.database} of ${source.name} into ${r.into}${r.replaced ? " (the previous table was dropped: --replace)" : ""}`);
  return 0;
}
