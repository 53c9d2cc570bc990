// systemd: a oneshot service run by a daily timer, as user units or (root only) system units.
// Unit text generation is pure; I/O is writing/removing the two files and calling systemctl.
import { mkdir, readFile, unlink } from "node:fs/promises";
import path from "node:path";
import { fsError } from "../../core/errors.ts";
import { writeFileAtomic } from "../../core/fsutil.ts";
import { commandFailed, describeWhen, runTool, ScheduleError, spawnRunner, type DailyJob, type Runner, type RunResult, type ScheduleDeps } from "./index.ts";

export const SERVICE_NAME = "duckbak-daily.service";
export const TIMER_NAME = "duckbak-daily.timer";
export const SYSTEM_UNIT_DIR = "/etc/systemd/system";

const MISSING = "this system does not use systemd; use the cron method instead";

/**
 * systemctl, with the common "no systemd here" failures (no bus: a container, su/sudo without a
 * login session, WSL) said as such, suggesting cron.
 */
async function runSystemctl(run: Runner, argv: readonly string[]): Promise<RunResult> {
  const r = await runTool(run, argv, MISSING);
  if (r.exitCode === 0) return r;
  const said = (r.stderr.trim() || r.stdout.trim()).split("\n").join("; ");
  if (/Failed to connect to bus|System has not been booted with systemd|No medium found|Host is down/i.test(said)) {
    const user = argv.includes("--user") ? " for this user (no login session: try `loginctl enable-linger`, or --system as root)" : "";
    throw new ScheduleError(`systemd cannot be reached${user}: ${said}; use --method cron instead`, "command-failed");
  }
  throw commandFailed(argv, r);
}
const HEADER = "# Managed by duckbak (duckbak schedule install/remove); edits here are overwritten.";

export type SystemdScope = "user" | "system";

export interface UnitFile {
  path: string;
  content: string;
}

export interface SystemdInstallResult {
  method: "systemd";
  dryRun: boolean;
  scope: SystemdScope;
  units: UnitFile[];
  /** systemctl argv run after writing the units. */
  commands: string[][];
}

export interface SystemdRemoveResult {
  method: "systemd";
  dryRun: boolean;
  scope: SystemdScope;
  /** Whether any of our units existed (in a dry run: would be removed). */
  removed: boolean;
  /** Paths of the unit files deleted. */
  units: string[];
  commands: string[][];
}

export interface SystemdStatus {
  method: "systemd";
  scope: SystemdScope;
  /** The timer unit exists. */
  installed: boolean;
  units: UnitFile[];
  nextRun: Date | null;
}

/** `%` starts a specifier in every unit file value. */
function unitValue(value: string): string {
  return value.replaceAll("%", "%%");
}

/**
 * One word of an ExecStart= line: C-style escapes apply everywhere, and quotes keep spaces.
 * `$` is expanded in arguments only (`$$` is a literal one); the program path is taken as is.
 */
export function execWord(word: string, isProgram = false): string {
  let escaped = unitValue(word.replaceAll("\\", "\\\\").replaceAll('"', '\\"'));
  if (!isProgram) escaped = escaped.replaceAll("$", () => "$$");
  return /[\s"']/.test(word) ? `"${escaped}"` : escaped;
}

export function serviceUnit(job: DailyJob): string {
  // systemd rejects such a program path outright ("Executable name contains special characters").
  if (/["'\\]/.test(job.binary)) {
    throw new ScheduleError(`systemd cannot run a program whose path contains a quote or backslash: ${job.binary}`, "invalid-path");
  }
  const log = unitValue(job.logFile);
  return [
    HEADER,
    "[Unit]",
    "Description=duckbak daily backup",
    "",
    "[Service]",
    "Type=oneshot",
    `WorkingDirectory=${unitValue(job.workDir)}`,
    `ExecStart=${execWord(job.binary, true)} daily --config ${execWord(job.configPath)}`,
    `StandardOutput=append:${log}`,
    `StandardError=append:${log}`,
    "",
  ].join("\n");
}

export function timerUnit(job: DailyJob): string {
  return [
    HEADER,
    "[Unit]",
    `Description=${job.every ? `duckbak backup, ${describeWhen(job)}` : `duckbak daily backup at ${job.at}`}`,
    "",
    "[Timer]",
    // Calendar-aligned like cron (every 15 minutes: *:00/15), rather than OnUnitActiveSec's drift.
    `OnCalendar=${!job.every ? `*-*-* ${job.at}:00` : job.every.unit === "m" ? `*-*-* *:00/${job.every.n}:00` : `*-*-* 00/${job.every.n}:00:00`}`,
    // Runs a backup missed while the machine was off as soon as it is back.
    "Persistent=true",
    "",
    "[Install]",
    "WantedBy=timers.target",
    "",
  ].join("\n");
}

/** Where systemd looks for units of the given scope; XDG_CONFIG_HOME counts only when absolute. */
export function unitDirectory(system: boolean, env: Record<string, string | undefined>): string {
  if (system) return SYSTEM_UNIT_DIR;
  const xdg = env.XDG_CONFIG_HOME;
  if (xdg && path.posix.isAbsolute(xdg)) return path.posix.join(xdg, "systemd", "user");
  if (!env.HOME) throw new ScheduleError("cannot find the systemd user unit folder: neither XDG_CONFIG_HOME nor HOME is set", "unsupported");
  return path.posix.join(env.HOME, ".config", "systemd", "user");
}

function systemctl(system: boolean, ...args: string[]): string[] {
  return system ? ["systemctl", ...args] : ["systemctl", "--user", ...args];
}

/** Parses `systemctl show -p NextElapseUSecRealtime`, printed in our local zone (or UTC). */
export function parseNextElapse(showOutput: string): Date | null {
  const m = /^NextElapseUSecRealtime=\S* ?(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?: (\S+))?\s*$/m.exec(showOutput);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number);
  return m[7] === "UTC" ? new Date(Date.UTC(y, mo - 1, d, h, mi, s)) : new Date(y, mo - 1, d, h, mi, s);
}

function scopeOf(system: boolean): SystemdScope {
  return system ? "system" : "user";
}

/** Unit folder and runner; changing system units needs root, reading them does not. */
function context(system: boolean, deps: ScheduleDeps, changes: boolean): { dir: string; run: Runner } {
  if (changes && system && !(deps.isRoot ?? process.getuid?.() === 0)) {
    throw new ScheduleError("system-wide systemd units need root: run as root, or install user units instead", "unsupported");
  }
  return { dir: unitDirectory(system, deps.env ?? process.env), run: deps.run ?? spawnRunner };
}

async function readIfExists(file: string): Promise<string | null> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw asScheduleError(err, file, "read");
  }
}

function asScheduleError(err: unknown, file: string, action: string): ScheduleError {
  return new ScheduleError(fsError(err, file, action).message, "io", { cause: err });
}

async function existingUnits(dir: string): Promise<UnitFile[]> {
  const units: UnitFile[] = [];
  for (const name of [SERVICE_NAME, TIMER_NAME]) {
    const file = path.posix.join(dir, name);
    const content = await readIfExists(file);
    if (content !== null) units.push({ path: file, content });
  }
  return units;
}

export async function install(job: DailyJob, opts: { dryRun: boolean; system: boolean }, deps: ScheduleDeps): Promise<SystemdInstallResult> {
  const { dir, run } = context(opts.system, deps, true);
  const units = [
    { path: path.posix.join(dir, SERVICE_NAME), content: serviceUnit(job) },
    { path: path.posix.join(dir, TIMER_NAME), content: timerUnit(job) },
  ];
  const commands = [systemctl(opts.system, "daemon-reload"), systemctl(opts.system, "enable", "--now", TIMER_NAME)];
  if (!opts.dryRun) {
    // Fails before any file is written where systemd is absent or not running (containers, sudo without a user session).
    await runSystemctl(run, systemctl(opts.system, "show", "--property=Version"));
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      throw asScheduleError(err, dir, "create folder");
    }
    for (const unit of units) {
      await writeFileAtomic(unit.path, unit.content).catch((err) => {
        throw asScheduleError(err, unit.path, "write");
      });
    }
    for (const argv of commands) await runSystemctl(run, argv);
  }
  return { method: "systemd", dryRun: opts.dryRun, scope: scopeOf(opts.system), units, commands };
}

export async function remove(opts: { dryRun: boolean; system: boolean }, deps: ScheduleDeps): Promise<SystemdRemoveResult> {
  const { dir, run } = context(opts.system, deps, true);
  const present = (await existingUnits(dir)).map((u) => u.path);
  // Disabling a timer whose file is gone fails, so only an existing one is disabled (before deleting it).
  const disable = present.some((p) => p.endsWith(TIMER_NAME)) ? [systemctl(opts.system, "disable", "--now", TIMER_NAME)] : [];
  const reload = systemctl(opts.system, "daemon-reload");
  const removed = present.length > 0;
  if (!opts.dryRun && removed) {
    for (const argv of disable) await runSystemctl(run, argv);
    for (const file of present) {
      await unlink(file).catch((err) => {
        throw asScheduleError(err, file, "remove");
      });
    }
    await runSystemctl(run, reload);
  }
  const commands = removed ? [...disable, reload] : [];
  return { method: "systemd", dryRun: opts.dryRun, scope: scopeOf(opts.system), removed, units: present, commands };
}

export async function status(opts: { system: boolean }, deps: ScheduleDeps): Promise<SystemdStatus> {
  const { dir, run } = context(opts.system, deps, false);
  const units = await existingUnits(dir);
  const installed = units.some((u) => u.path.endsWith(TIMER_NAME));
  let nextRun: Date | null = null;
  if (installed) {
    const shown = await runSystemctl(run, systemctl(opts.system, "show", TIMER_NAME, "--property=NextElapseUSecRealtime"));
    nextRun = parseNextElapse(shown.stdout);
  }
  return { method: "systemd", scope: scopeOf(opts.system), installed, units, nextRun };
}
