// Windows Task Scheduler through schtasks.exe. Its /Create flags cannot set the task's start-in
// folder or redirect output, so the task runs duckbak with absolute paths only and duckbak's
// own log file is the record of the run.
import { runChecked, runTool, ScheduleError, spawnRunner, type DailyJob, type ScheduleDeps } from "./index.ts";

export const TASK_NAME = "duckbak daily backup";
/** schtasks refuses a longer /TR value. */
export const TR_MAX_LENGTH = 261;

const MISSING = "schtasks is part of Windows; use the cron or systemd method elsewhere";

export interface SchtasksInstallResult {
  method: "schtasks";
  dryRun: boolean;
  argv: string[];
}

export interface SchtasksRemoveResult {
  method: "schtasks";
  dryRun: boolean;
  /** Whether the task existed (in a dry run: would be removed). */
  removed: boolean;
  argv: string[];
}

export interface SchtasksStatus {
  method: "schtasks";
  installed: boolean;
  /** `schtasks /Query /FO LIST /V` output for the task. */
  details: string | null;
  /** As schtasks prints it (locale-dependent, so not parsed into a date); null if not found. */
  nextRunText: string | null;
}

/**
 * Quotes one argument so that the program's C runtime splits it back unchanged: backslashes are
 * literal except in front of a quote, where they (and the quote) need escaping.
 */
export function windowsQuote(arg: string): string {
  if (arg !== "" && !/[\s"]/.test(arg)) return arg;
  return `"${arg.replace(/(\\*)"/g, '$1$1\\"').replace(/(\\+)$/, "$1$1")}"`;
}

/** The /TR value: the command line the task runs. */
export function taskCommand(job: DailyJob): string {
  return `${windowsQuote(job.binary)} daily --config ${windowsQuote(job.configPath)}`;
}

/** The /TR value is one argv element; the spawner quotes it for schtasks' own command line. */
export function createArgv(job: DailyJob): string[] {
  const command = taskCommand(job);
  if (command.length > TR_MAX_LENGTH) {
    throw new ScheduleError(
      `the task command is ${command.length} characters, over schtasks' /TR limit of ${TR_MAX_LENGTH}: move duckbak or the config to a shorter path`,
      "too-long",
    );
  }
  const e = job.every;
  const when = !e ? ["/SC", "DAILY", "/ST", job.at] : ["/SC", e.unit === "m" ? "MINUTE" : "HOURLY", "/MO", String(e.n), "/ST", "00:00"];
  return ["schtasks", "/Create", ...when, "/TN", TASK_NAME, "/TR", command, "/F"];
}

const DELETE_ARGV: readonly string[] = ["schtasks", "/Delete", "/TN", TASK_NAME, "/F"];
const QUERY_ARGV: readonly string[] = ["schtasks", "/Query", "/TN", TASK_NAME, "/FO", "LIST", "/V"];

export function parseNextRun(listOutput: string): string | null {
  return /^Next Run Time:[ \t]*(\S.*?)\s*$/m.exec(listOutput)?.[1] ?? null;
}

/** The task's LIST output, or null when schtasks does not find it (its messages are localized; the exit code is not). */
async function query(deps: ScheduleDeps): Promise<string | null> {
  const result = await runTool(deps.run ?? spawnRunner, QUERY_ARGV, MISSING);
  return result.exitCode === 0 ? result.stdout : null;
}

export async function install(job: DailyJob, dryRun: boolean, deps: ScheduleDeps): Promise<SchtasksInstallResult> {
  const argv = createArgv(job);
  if (!dryRun) await runChecked(deps.run ?? spawnRunner, argv, MISSING);
  return { method: "schtasks", dryRun, argv };
}

export async function remove(dryRun: boolean, deps: ScheduleDeps): Promise<SchtasksRemoveResult> {
  const removed = (await query(deps)) !== null;
  if (!dryRun && removed) await runChecked(deps.run ?? spawnRunner, DELETE_ARGV, MISSING);
  return { method: "schtasks", dryRun, removed, argv: [...DELETE_ARGV] };
}

export async function status(deps: ScheduleDeps): Promise<SchtasksStatus> {
  const details = await query(deps);
  return { method: "schtasks", installed: details !== null, details, nextRunText: details === null ? null : parseNextRun(details) };
}
