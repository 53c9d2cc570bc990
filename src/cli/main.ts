#!/usr/bin/env bun
import { cac } from "cac";
import { versionLine } from "../core/version.ts";
import { ExitCode, UsageError } from "../core/errors.ts";
import { COPY_CHECK_COMMAND, HOLDER_COMMAND, runCopyCheck, runSnapshotHolder } from "../core/duckdb/holder.ts";
import { normalizeArgv, optionSpellings } from "./argv.ts";
import { printError } from "./output.ts";
import { DEFAULT_FILE_MODE, umaskFor } from "../core/fsutil.ts";
import { registerBackup } from "./commands/backup.ts";
import { registerList } from "./commands/list.ts";
import { registerVerify } from "./commands/verify.ts";
import { registerRestore } from "./commands/restore.ts";
import { registerCleanup } from "./commands/cleanup.ts";
import { registerDaily } from "./commands/daily.ts";
import { registerStatus } from "./commands/status.ts";
import { registerUnlock } from "./commands/unlock.ts";
import { registerSchedule } from "./commands/schedule.ts";
import { registerExport } from "./commands/export.ts";
import { registerImport } from "./commands/import.ts";
import { registerDiff } from "./commands/diff.ts";
import { registerInspect } from "./commands/inspect.ts";
import { registerLs } from "./commands/ls.ts";
import { registerSql } from "./commands/sql.ts";
import { registerInit } from "./commands/init.ts";
import { registerStats } from "./commands/stats.ts";
import { registerCopy } from "./commands/copy.ts";

async function main(argv: string[]): Promise<number> {
  // Private until a config's file_mode says otherwise (loadContext): covers temporaries made before it is read.
  process.umask(umaskFor(DEFAULT_FILE_MODE));
  // Internal: the child process that holds databases' read locks during a backup.
  if (argv[0] === HOLDER_COMMAND) return runSnapshotHolder(argv.slice(2), Number(argv[1]));
  // Internal: opens a hot copy and reads all of it before the backup may use it.
  if (argv[0] === COPY_CHECK_COMMAND) return runCopyCheck(argv[1]!);

  const cli = cac("duckbak");
  registerBackup(cli);
  registerList(cli);
  registerVerify(cli);
  registerRestore(cli);
  registerCleanup(cli);
  registerDaily(cli);
  registerStatus(cli);
  registerUnlock(cli);
  registerSchedule(cli);
  registerExport(cli);
  registerImport(cli);
  registerDiff(cli);
  registerInspect(cli);
  registerLs(cli);
  registerSql(cli);
  registerInit(cli);
  registerStats(cli);
  registerCopy(cli);
  // cac labels every --no-X flag "(default: true)", which reads as if the flag were on by default.
  // The first section is the title line: the version line there too.
  cli.help((sections) => sections.map((s, i) => ({ ...s, body: i === 0 && !s.title ? versionLine() : s.body.replace(/ \(default: true\)/g, "") })));
  // Not cac's version(), which prints the JS runtime's version: ours names the embedded DuckDB and the target.
  cli.option("-v, --version", "Show duckbak's version, the embedded DuckDB's version, and the OS and architecture");

  try {
    cli.parse(["duckbak", "duckbak", ...normalizeArgv(argv, optionSpellings(cli))], { run: false });
    if (cli.options.help) return ExitCode.OK;
    if (cli.options.version) {
      process.stdout.write(`${versionLine()}\n`);
      return ExitCode.OK;
    }
    if (!cli.matchedCommand) {
      if (cli.args[0]) throw new UsageError(`unknown command '${cli.args[0]}' (see duckbak --help)`);
      cli.outputHelp();
      return argv.length === 0 ? ExitCode.USAGE : ExitCode.OK;
    }
    return ((await cli.runMatchedCommand()) as number | undefined) ?? ExitCode.OK;
  } catch (err) {
    // cac reports unknown options and missing values as plain Errors named CACError.
    if (err instanceof Error && err.name === "CACError") return printError(new UsageError(`${err.message} (see duckbak --help)`));
    return printError(err);
  }
}

process.exitCode = await main(process.argv.slice(2));
