import type { CAC } from "cac";
import { verifyBackup } from "../../core/verify.ts";
import { resolveBackupRef } from "../../core/list.ts";
import { ExitCode } from "../../core/errors.ts";
import { withProgress } from "../progress.ts";
import { ENCRYPTION_KEY_OPTION, keysFor, loadContext, type CommonFlags } from "../context.ts";
import { color, formatBytes, plural, printJson, snakeKeys } from "../output.ts";
import { REPO_LOCK_WAIT_OPTION, REPO_OPTION, openRepository, readLocation, repoLockNotice } from "../repo.ts";
import { lockWaitSeconds } from "../lock.ts";
import { verifyRepository } from "../../core/repo/verify.ts";
import { UsageError } from "../../core/errors.ts";
import { shortId } from "../../core/repo/snapshots.ts";

interface VerifyFlags extends CommonFlags {
  quick?: boolean;
  repo?: string;
  readData?: boolean;
  lockWait?: string;
}

export function registerVerify(cli: CAC): void {
  cli
    .command("verify [name]", "Prove that a backup restores: checksums, DuckDB block checksums, then open and read a restored copy")
    .option("--quick", "Only check that the archive reads to its end and every checksum matches")
    .option(...REPO_OPTION)
    .option("--read-data", "Repository: also read and check every byte (default: structure only)")
    .option(...REPO_LOCK_WAIT_OPTION)
    .option("--backup-dir <dir>", "Backup folder (default: backup_dir from the config, else data/backups)")
    .option("--config <file>", "Config file (default: ./duckbak.toml when present)")
    .option(...ENCRYPTION_KEY_OPTION)
    .option("--json", "Print the result as JSON")
    .example("duckbak verify backup_20240115_120000")
    .example("duckbak verify /mnt/offsite/backup_20240115_120000.tar.gz --quick")
    .example("duckbak verify --repo /mnt/backup/duckbak --read-data   # the whole repository")
    .action(async (name: string | undefined, flags: VerifyFlags) => runVerify(name, flags));
}

async function runVerify(name: string | undefined, flags: VerifyFlags): Promise<number> {
  const { backupDir, config } = loadContext(flags);
  const location = readLocation(flags, config);
  if (location) return runRepoVerify(location, name, flags);
  if (name === undefined) throw new UsageError("verify needs the NAME of a backup (or --repo to verify a repository)");
  const ref = resolveBackupRef(name, backupDir);
  const result = await withProgress(flags, (progress) => verifyBackup(ref, { quick: flags.quick, progress, keys: keysFor(flags, config) }));
  const code = result.ok ? ExitCode.OK : ExitCode.VERIFY_FAILED;
  if (flags.json) {
    const { ok: _, ...body } = snakeKeys(result) as Record<string, unknown>;
    return printJson("verify", body, code, [...result.problems, ...result.databases.flatMap((d) => d.problems.map((p) => `${d.name}: ${p}`))].join("; "));
  }
  for (const p of result.problems) console.error(`${color.red("FAILED")}  ${result.archive}: ${p}`);
  for (const d of result.databases) {
    if (d.ok) {
      const rows = d.tables.reduce((n, t) => n + (t.rows ?? t.expectedRows), 0);
      const opened = d.checks.open === "ok" ? `, opened and read ${plural(d.tables.length, "table")} (${plural(rows, "row")})` : "";
      const how = result.quick ? "checksums" : `checksums, blocks${opened}`;
      console.log(`${color.green("OK")}      ${d.name}: ${how}`);
    } else {
      // Problems name their archive entry already (which is the database's name, or its WAL's).
      for (const p of d.problems) console.error(`${color.red("FAILED")}  ${p.startsWith(d.entry) || p.startsWith(d.name) ? p : `${d.name}: ${p}`}`);
    }
    for (const n of d.notes) console.log(`${color.yellow("SKIPPED")} ${d.name}: ${n.replace(/^open check SKIPPED: /, "open check: ")}`);
  }
  if (result.ok) console.log(`Backup ${result.name} is OK${result.quick ? " (quick check)" : ""}.`);
  else console.error(color.red(`Backup ${result.name} FAILED verification.`));
  return code;
}

async function runRepoVerify(location: string, name: string | undefined, flags: VerifyFlags): Promise<number> {
  if (flags.quick) throw new UsageError("--quick is for archives; verify --repo checks the structure, and with --read-data every byte");
  const { config } = loadContext(flags);
  const repo = await openRepository(location, config);
  const wait = lockWaitSeconds(flags.lockWait, config);
  const r = await withProgress(flags, (progress) => verifyRepository(repo, { snapshot: name, readData: flags.readData, lockWaitSeconds: wait, onLockWait: repoLockNotice(wait), progress }));
  const code = r.ok ? ExitCode.OK : ExitCode.VERIFY_FAILED;
  if (flags.json) {
    return printJson("verify", {
      repository: repo.location,
      read_data: Boolean(flags.readData),
      snapshots: r.snapshots,
      packs: r.packs,
      blobs: r.blobs,
      bytes_read: r.bytesRead,
      unindexed_packs: r.unindexedPacks,
      unexpected_files: r.unexpectedFiles,
      problems: r.problems,
    }, code, r.problems.join("; "));
  }
  for (const p of r.problems) console.error(`${color.red("FAILED")}  ${p}`);
  for (const f of r.unexpectedFiles) console.error(`${color.yellow("IGNORED")} ${f}: not named as any of the repository's files (every command passes it over)`);
  const what = name ? `Snapshot ${shortId(r.snapshots[0] ?? name)}` : `Repository ${repo.location} (${plural(r.snapshots.length, "snapshot")})`;
  const how = flags.readData ? `structure and data: ${plural(r.blobs, "chunk")} in ${plural(r.packs, "pack")}, ${formatBytes(r.bytesRead)} read` : "structure (add --read-data to read every byte)";
  if (r.ok) console.log(`${what} is OK: ${how}.`);
  else console.error(color.red(`${what} FAILED verification.`));
  return code;
}
