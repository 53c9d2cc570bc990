import type { CAC } from "cac";
import { verifyBackup } from "../../core/verify.ts";
import { resolveBackupRef } from "../../core/list.ts";
import { ExitCode } from "../../core/errors.ts";
import { withProgress } from "../progress.ts";
import { loadContext, type CommonFlags } from "../context.ts";
import { color, plural, printJson } from "../output.ts";

interface VerifyFlags extends CommonFlags {
  quick?: boolean;
}

export function registerVerify(cli: CAC): void {
  cli
    .command("verify <name>", "Prove that a backup restores: checksums, DuckDB block checksums, then open and read a restored copy")
    .option("--quick", "Only check that the archive reads to its end and every checksum matches")
    .option("--backup-dir <dir>", "Backup folder (default: backup_dir from the config, else data/backups)")
    .option("--config <file>", "Config file (default: ./duckbak.toml when present)")
    .option("--json", "Print the result as JSON")
    .example("duckbak verify backup_20240115_120000")
    .example("duckbak verify /mnt/offsite/backup_20240115_120000.tar.gz --quick")
    .action(async (name: string, flags: VerifyFlags) => runVerify(name, flags));
}

async function runVerify(name: string, flags: VerifyFlags): Promise<number> {
  const { backupDir } = loadContext(flags);
  const ref = resolveBackupRef(name, backupDir);
  const result = await withProgress(flags, (progress) => verifyBackup(ref, { quick: flags.quick, progress }));
  const code = result.ok ? ExitCode.OK : ExitCode.VERIFY_FAILED;
  if (flags.json) {
    printJson(result);
    return code;
  }
  for (const p of result.problems) console.error(`${color.red("FAILED")}  ${result.archive}: ${p}`);
  for (const d of result.databases) {
    if (d.ok) {
      const rows = d.tables.reduce((n, t) => n + (t.rows ?? t.expectedRows), 0);
      const how = result.quick ? "checksums" : `checksums, blocks, opened and read ${plural(d.tables.length, "table")} (${plural(rows, "row")})`;
      console.log(`${color.green("OK")}      ${d.name}: ${how}`);
    } else {
      for (const p of d.problems) console.error(`${color.red("FAILED")}  ${d.name}: ${p}`);
    }
  }
  if (result.ok) console.log(`Backup ${result.name} is OK${result.quick ? " (quick check)" : ""}.`);
  else console.error(color.red(`Backup ${result.name} FAILED verification.`));
  return code;
}
