// Daily scheduling of `duckbak daily`: one interface over cron, systemd timers and the Windows Task
// Scheduler. The method modules import the shared pieces below from this file, so this is an import
// cycle: they may use these bindings only inside functions, never at module top level.
import path from "node:path";
import { childEnv } from "../../core/child-env.ts";
import { DuckbakError, ExitCode } from "../../core/errors.ts";
import * as cron from "./cron.ts";
import * as schtasks from "./schtasks.ts";
import * as systemd from "./systemd.ts";

export const METHODS = ["cron", "systemd", "schtasks"] as const;
export type ScheduleMethod = (typeof METHODS)[number];
export type MethodChoice = ScheduleMethod | "auto";

export type ScheduleErrorCode =
  | "invalid-time"
  | "invalid-method"
  | "invalid-path"
  | "unsupported"
  | "command-missing"
  | "command-failed"
  | "too-long"
  | "io";

const USAGE_CODES: ReadonlySet<ScheduleErrorCode> = new Set(["invalid-time", "invalid-method", "invalid-path", "unsupported"]);

/** Every failure of this module; the message is always one line, as the CLI prints it as is. */
export class ScheduleError extends DuckbakError {
  constructor(
    message: string,
    readonly code: ScheduleErrorCode,
    options?: { cause?: unknown },
  ) {
    super(oneLine(message), USAGE_CODES.has(code) ? ExitCode.USAGE : ExitCode.ERROR, options);
  }
}

function oneLine(text: string): string {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean)
    .join("; ");
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs argv with optional stdin text; rejects with an ENOENT error when the program is missing. */
export type Runner = (argv: readonly string[], stdin?: string) => Promise<RunResult>;

export const spawnRunner: Runner = async (argv, stdin) => {
  const proc = Bun.spawn([...argv], {
    stdin: stdin === undefined ? "ignore" : new Blob([stdin]),
    stdout: "pipe",
    stderr: "pipe",
    env: childEnv(),
  });
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { exitCode, stdout, stderr };
};

/** Runs a scheduler tool; a missing program becomes a ScheduleError carrying `missingHint`. */
export async function runTool(run: Runner, argv: readonly string[], missingHint: string, stdin?: string): Promise<RunResult> {
  try {
    return await run(argv, stdin);
  } catch (err) {
    if ((err as NodeJS.ErrnoException)?.code === "ENOENT") {
      throw new ScheduleError(`${argv[0]} not found: ${missingHint}`, "command-missing", { cause: err });
    }
    const msg = err instanceof Error ? err.message : String(err);
    throw new ScheduleError(`${argv[0]} could not be run: ${msg}`, "command-failed", { cause: err });
  }
}

/** Like runTool, but a non-zero exit is an error too. */
export async function runChecked(run: Runner, argv: readonly string[], missingHint: string, stdin?: string): Promise<RunResult> {
  const result = await runTool(run, argv, missingHint, stdin);
  if (result.exitCode !== 0) throw commandFailed(argv, result);
  return result;
}

export function commandFailed(argv: readonly string[], result: RunResult): ScheduleError {
  const said = result.stderr.trim() || result.stdout.trim();
  return new ScheduleError(`\`${argv.join(" ")}\` failed (exit ${result.exitCode})${said ? `: ${said}` : ""}`, "command-failed");
}

/** Injection points for tests; production code passes nothing. */
export interface ScheduleDeps {
  run?: Runner;
  /** For the systemd user unit folder (XDG_CONFIG_HOME, HOME). */
  env?: Record<string, string | undefined>;
  isRoot?: boolean;
  /** For cron's next run, which cron cannot tell us. */
  now?: Date;
}

/** A validated job: absolute paths, no control characters, and a valid time of day. */
export interface DailyJob {
  binary: string;
  configPath: string;
  workDir: string;
  logFile: string;
  /** "HH:MM", local time of the scheduler. */
  at: string;
  hour: number;
  minute: number;
  /** Instead of daily at `at`: every N minutes or hours, aligned to the clock (`--every 15m`). */
  every: Interval | null;
}

export interface Interval {
  unit: "m" | "h";
  n: number;
}

/** "15m", "1h": intervals that divide the hour (minutes) or the day (hours), so runs stay clock-aligned. */
export function parseEvery(text: string): Interval {
  const m = /^(\d+)(m|h)$/.exec(text.trim());
  const n = m ? Number(m[1]) : NaN;
  const unit = m?.[2] as "m" | "h" | undefined;
  if (!unit || !(unit === "m" ? 60 % n === 0 && n < 60 : 24 % n === 0 && n < 24))
    throw new ScheduleError(
      `invalid interval "${text}": expected minutes that divide an hour (1m, 5m, 10m, 15m, 20m, 30m, ...) or hours that divide a day (1h, 2h, 3h, 4h, 6h, 8h, 12h); for once a day use --at HH:MM`,
      "invalid-time",
    );
  return { unit, n };
}

/** "every 15 minutes", "daily at 02:00": for unit descriptions and messages. */
export function describeWhen(job: Pick<DailyJob, "at" | "every">): string {
  if (!job.every) return `daily at ${job.at}`;
  const { n, unit } = job.every;
  const word = unit === "m" ? "minute" : "hour";
  return n === 1 ? `every ${word}` : `every ${n} ${word}s`;
}

export interface InstallOptions {
  binary: string;
  configPath: string;
  /** The config's folder; the job runs there. */
  workDir: string;
  at: string;
  /** Instead of once a day: "15m", "1h" (see parseEvery). */
  every?: string;
  logFile: string;
  method: MethodChoice;
  dryRun?: boolean;
  /** systemd only: units in /etc/systemd/system instead of the user's (root only). */
  system?: boolean;
}

export interface RemoveOptions {
  method: MethodChoice;
  dryRun?: boolean;
  system?: boolean;
}

export interface StatusOptions {
  method: MethodChoice;
  system?: boolean;
}

export type { CronInstallResult, CronRemoveResult, CronStatus } from "./cron.ts";
export type { SchtasksInstallResult, SchtasksRemoveResult, SchtasksStatus } from "./schtasks.ts";
export type { SystemdInstallResult, SystemdRemoveResult, SystemdScope, SystemdStatus, UnitFile } from "./systemd.ts";
export type InstallResult = cron.CronInstallResult | systemd.SystemdInstallResult | schtasks.SchtasksInstallResult;
export type RemoveResult = cron.CronRemoveResult | systemd.SystemdRemoveResult | schtasks.SchtasksRemoveResult;
export type StatusResult = cron.CronStatus | systemd.SystemdStatus | schtasks.SchtasksStatus;

/** "auto" is the Task Scheduler on Windows and cron everywhere else. */
export function chooseMethod(choice: string, platform: NodeJS.Platform = process.platform): ScheduleMethod {
  if (choice === "auto") return platform === "win32" ? "schtasks" : "cron";
  if ((METHODS as readonly string[]).includes(choice)) return choice as ScheduleMethod;
  throw new ScheduleError(`unknown schedule method "${choice}": expected auto, cron, systemd or schtasks`, "invalid-method");
}

export function parseTime(at: string): { hour: number; minute: number } {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(at);
  if (!m) throw new ScheduleError(`invalid time "${at}": expected HH:MM from 00:00 to 23:59`, "invalid-time");
  return { hour: Number(m[1]), minute: Number(m[2]) };
}

/** Resolves paths with the rules of the platform the method runs on (Windows paths for schtasks). */
export function dailyJob(options: InstallOptions, method: ScheduleMethod): DailyJob {
  const { hour, minute } = parseTime(options.at);
  const paths = method === "schtasks" ? path.win32 : path.posix;
  const absolute = (what: string, value: string): string => {
    if (value === "") throw new ScheduleError(`${what} path is empty`, "invalid-path");
    // A line break would split the crontab line or unit file, letting a path inject commands.
    if (/[\x00-\x1f\x7f]/.test(value)) {
      throw new ScheduleError(`${what} path ${JSON.stringify(value)} contains a control character`, "invalid-path");
    }
    return paths.resolve(value);
  };
  return {
    binary: absolute("binary", options.binary),
    configPath: absolute("config", options.configPath),
    workDir: absolute("working folder", options.workDir),
    logFile: absolute("log file", options.logFile),
    at: options.at,
    hour,
    minute,
    every: options.every === undefined ? null : parseEvery(options.every),
  };
}

function checkSystemFlag(method: ScheduleMethod, system: boolean | undefined): void {
  if (system && method !== "systemd") {
    throw new ScheduleError(`a system-wide schedule is only available with systemd, not ${method}`, "unsupported");
  }
}

export async function install(options: InstallOptions, deps: ScheduleDeps = {}): Promise<InstallResult> {
  const method = chooseMethod(options.method);
  checkSystemFlag(method, options.system);
  const job = dailyJob(options, method);
  const dryRun = options.dryRun ?? false;
  switch (method) {
    case "cron":
      return cron.install(job, dryRun, deps);
    case "systemd":
      return systemd.install(job, { dryRun, system: options.system ?? false }, deps);
    case "schtasks":
      return schtasks.install(job, dryRun, deps);
  }
}

/** Removes only duckbak's entry, units or task; `removed` is false when there was none. */
export async function remove(options: RemoveOptions, deps: ScheduleDeps = {}): Promise<RemoveResult> {
  const method = chooseMethod(options.method);
  checkSystemFlag(method, options.system);
  const dryRun = options.dryRun ?? false;
  switch (method) {
    case "cron":
      return cron.remove(dryRun, deps);
    case "systemd":
      return systemd.remove({ dryRun, system: options.system ?? false }, deps);
    case "schtasks":
      return schtasks.remove(dryRun, deps);
  }
}

export async function status(options: StatusOptions, deps: ScheduleDeps = {}): Promise<StatusResult> {
  const method = chooseMethod(options.method);
  checkSystemFlag(method, options.system);
  switch (method) {
    case "cron":
      return cron.status(deps);
    case "systemd":
      return systemd.status({ system: options.system ?? false }, deps);
    case "schtasks":
      return schtasks.status(deps);
  }
}
