#!/usr/bin/env bun
import { cac, type CAC } from "cac";
import { versionLine } from "../core/version.ts";
import { ExitCode, UsageError } from "../core/errors.ts";
import { COPY_CHECK_COMMAND, HOLDER_COMMAND, LOCK_HOLDER_COMMAND, runCopyCheck, runSnapshotHolder } from "../core/duckdb/holder.ts";
import { normalizeArgv, optionSpellings } from "./argv.ts";
import { printError } from "./output.ts";
import { releaseLocksOnSignal } from "./lock.ts";
import { DEFAULT_FILE_MODE, umaskFor } from "../core/fsutil.ts";
import { didYouMean } from "../core/suggest.ts";
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
import { registerKey } from "./commands/key.ts";
import { registerCopy } from "./commands/copy.ts";

async function main(argv: string[]): Promise<number> {
  // Private until a config's file_mode says otherwise (loadContext): covers temporaries made before it is read.
  process.umask(umaskFor(DEFAULT_FILE_MODE));
  // Internal: the child process that holds databases' read locks during a backup.
  if (argv[0] === HOLDER_COMMAND || argv[0] === LOCK_HOLDER_COMMAND) return runSnapshotHolder(argv.slice(2), Number(argv[1]), argv[0] === LOCK_HOLDER_COMMAND);
  // Internal: opens a private copy (a hot copy: reads all of it) before the backup may use it.
  if (argv[0] === COPY_CHECK_COMMAND) return runCopyCheck(argv[1]!, argv[2]!);

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
  registerKey(cli);
  registerCopy(cli);
  // cac labels every --no-X flag "(default: true)", which reads as if the flag were on by default.
  // The first section is the title line: the version line there too.
  cli.help((sections) => sections.map((s, i) => ({ ...s, body: i === 0 && !s.title ? versionLine() : s.body.replace(/ \(default: true\)/g, "") })));
  // Not cac's version(), which prints the JS runtime's version: ours names the embedded DuckDB and the target.
  cli.option("-v, --version", "Show duckbak's version, the embedded DuckDB's version, and the OS and architecture");

  // Only options before `--` count: after it everything is an argument.
  const dashDash = argv.indexOf("--");
  const json = (dashDash < 0 ? argv : argv.slice(0, dashDash)).includes("--json");
  try {
    cli.parse(["duckbak", "duckbak", ...normalizeArgv(argv, optionSpellings(cli))], { run: false });
    if (cli.options.help) return ExitCode.OK;
    if (cli.options.version) {
      process.stdout.write(`${versionLine()}\n`);
      return ExitCode.OK;
    }
    if (!cli.matchedCommand) {
      if (cli.args[0]) throw new UsageError(`unknown command '${cli.args[0]}'${didYouMean(cli.args[0], cli.commands.map((c) => c.name))} (see duckbak --help)`);
      cli.outputHelp();
      return argv.length === 0 ? ExitCode.USAGE : ExitCode.OK;
    }
    releaseLocksOnSignal();
    return ((await cli.runMatchedCommand()) as number | undefined) ?? ExitCode.OK;
  } catch (err) {
    return printError(usageInTypedTerms(err, cli, argv), json ? { command: commandLabel(cli) } : undefined);
  }
}

/** The command as JSON names it: `backup`, or `schedule install` for a command whose first argument is an action. */
function commandLabel(cli: CAC): string | null {
  const c = cli.matchedCommand;
  if (!c) return null;
  const actions = /^\S+ <([\w-]+(?:\|[\w-]+)+)>/.exec(c.rawName)?.[1]?.split("|");
  const action = cli.args[0];
  return action && actions?.includes(action) ? `${c.name} ${action}` : c.name;
}

/**
 * cac reports unknown options and missing values as plain Errors named CACError, with option names
 * camelCased (`--keepDays`). Say them as typed, suggest the nearest valid option, point to --help.
 */
function usageInTypedTerms(err: unknown, cli: CAC, argv: string[]): unknown {
  if (!(err instanceof Error) || err.name !== "CACError") return err;
  const command = cli.matchedCommand;
  const help = command ? `duckbak ${command.name} --help` : "duckbak --help";
  const unknown = /^Unknown option `-{1,2}(.+)`$/.exec(err.message);
  if (unknown && command) {
    const typed = argv.find((a) => a.startsWith("-") && camelcase(a.replace(/^-+/, "").split("=")[0]!) === unknown[1]) ?? `--${unknown[1]}`;
    const valid = [...command.options, ...cli.globalCommand.options].flatMap((o) => o.rawName.split(/[ ,]+/).filter((n) => n.startsWith("--")));
    return new UsageError(`unknown option '${typed.split("=")[0]}' for ${command.name}${didYouMean(typed, valid)} (see ${help})`);
  }
  const missingArgs = /^missing required args for command `(.+)`$/.exec(err.message);
  if (missingArgs && command) {
    const names = command.args.filter((a) => a.required).map((a) => a.value.toUpperCase());
    return new UsageError(`${command.name}: missing ${names.join(" ")} (usage: duckbak ${missingArgs[1]}; see ${help})`);
  }
  return new UsageError(`${err.message} (see ${help})`);
}

/** cac's camelCasing of option names. */
const camelcase = (name: string) => name.replace(/([a-z])-([a-z])/g, (_, a: string, b: string) => a + b.toUpperCase());

process.exitCode = await main(process.argv.slice(2));
