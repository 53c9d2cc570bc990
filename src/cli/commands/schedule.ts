import type { CAC } from "cac";
import { appendFile, mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { CONFIG_FILE_NAME, configSearchPath, loadConfig } from "../../core/config.ts";
import { DuckbakError, UsageError, fsError } from "../../core/errors.ts";
import { readLogRecords, schedulerOutputFile } from "../../core/log.ts";
import { selfExecutable } from "../../core/self.ts";
import { lastDailyRun } from "../../core/status.ts";
import { chooseMethod, describeWhen, install, parseEvery, parseTime, remove, status, type InstallResult, type RemoveResult, type StatusResult } from "../../platform/schedule/index.ts";
import { resolveLogFile } from "../context.ts";
import { displayPath, printJson, printNote, snakeKeys } from "../output.ts";
import { createConfig } from "./init.ts";
import { windowsQuote } from "../../platform/schedule/schtasks.ts";

interface ScheduleFlags {
  at?: string;
  every?: string;
  init?: boolean;
  config?: string;
  method: string;
  system?: boolean;
  dryRun?: boolean;
  logFile?: string;
  json?: boolean;
}

export const DEFAULT_TIME = "02:00";

export function registerSchedule(cli: CAC): void {
  cli
    .command("schedule <install|remove|status>", "Install, remove or show the daily job that runs `duckbak daily` (cron, systemd timer, Windows Task Scheduler)")
    .option("--at <HH:MM>", `install: time of day, in the scheduler's local time (default ${DEFAULT_TIME})`)
    .option("--every <interval>", "install: instead of once a day, every 15m, 30m, 1h, 6h, ... (aligned to the clock)")
    .option("--config <file>", `The config the job runs with (default: the one duckbak finds: DUCKBAK_CONFIG, ./${CONFIG_FILE_NAME}, ~/.config/duckbak, /etc/duckbak)`)
    .option("--init", `install: when no config is found, write ./${CONFIG_FILE_NAME} first (as duckbak init)`)
    .option("--method <method>", "auto (Task Scheduler on Windows, cron elsewhere), cron, systemd or schtasks", { default: "auto" })
    .option("--system", "systemd: system-wide units in /etc/systemd/system (root) instead of the user's")
    .option("--dry-run", "install, remove: print what would be done; change nothing")
    .option("--log-file <file>", "status: the backup log (default: log_file from the config, else data/backup.log)")
    .option("--json", "Print the result as JSON")
    .example("duckbak schedule install --at 02:30 --config /srv/app/duckbak.toml")
    .example("duckbak schedule install --every 1h --method systemd")
    .example("duckbak schedule status")
    .action(async (action: string, flags: ScheduleFlags) => {
      if (action === "install") return runInstall(flags);
      if (action === "remove") return runRemove(flags);
      if (action === "status") return runStatus(flags);
      throw new UsageError(`unknown schedule action '${action}': expected install, remove or status`);
    });
}

/** The config the job runs with: --config, else the one discovery finds; a job without one is refused. */
async function jobConfig(flags: ScheduleFlags) {
  const config = loadConfig(flags.config);
  if (config.file) return config;
  if (flags.init && flags.dryRun) throw new UsageError(`a dry run writes nothing, not even ${CONFIG_FILE_NAME}: run 'duckbak init' first, or drop --dry-run`);
  if (!flags.init)
    throw new UsageError(`no config found for the job (looked for ${configSearchPath().map((c) => c.file).join(", ")}): run 'duckbak init' here first, or add --init to write one, or pass --config FILE`);
  const made = await createConfig([]);
  printNote(`wrote ${made.path} (${made.found.length ? made.found.map(displayPath).join(", ") : "no DuckDB file found yet: data/*.duckdb"}); the job runs with it`);
  return loadConfig(made.path);
}

/**
 * schtasks runs on Windows. Shown from another system (a dry run), this host's absolute paths are
 * shown as Windows paths on drive C: (and the binary as .exe), so that the command is one Windows
 * accepts; the real paths come from running install on the Windows host.
 */
function asWindowsPath(p: string, exe = false): string {
  if (process.platform === "win32") return p;
  const win = `C:${p.replace(/\//g, "\\")}`;
  return exe && !/\.exe$/i.test(win) ? `${win}.exe` : win;
}

async function runInstall(flags: ScheduleFlags): Promise<number> {
  // Every argument is checked before anything is created (the log folder below).
  parseTime(flags.at ?? DEFAULT_TIME);
  if (flags.every !== undefined) {
    if (flags.at !== undefined) throw new UsageError("--at and --every exclude each other: a time of day, or an interval");
    parseEvery(String(flags.every));
  }
  const method = chooseMethod(flags.method);
  if (method === "schtasks" && process.platform !== "win32" && flags.dryRun !== true)
    throw new UsageError("--method schtasks installs into the Windows Task Scheduler: run it on the Windows host (or add --dry-run to see the command)");
  const binary = selfExecutable();
  if (!binary)
    throw new DuckbakError("schedule install must be run from the built duckbak binary (npm run build makes dist/duckbak), not under bun: the job runs this program's path");
  const config = await jobConfig(flags);
  const logFile = resolveLogFile(undefined, config);
  const output = schedulerOutputFile(logFile);
  const dryRun = flags.dryRun === true;
  if (!dryRun) {
    // The scheduler's redirection cannot create folders: without this the job would never start.
    await mkdir(dirname(output), { recursive: true }).catch((err) => {
      throw fsError(err, dirname(output), "create log folder");
    });
    // Created here, private (the umask), so that the scheduler's `>>` appends to it instead of creating it 0644.
    await appendFile(output, "").catch((err) => {
      throw fsError(err, output, "create");
    });
  }
  const win = method === "schtasks" && process.platform !== "win32";
  if (win) printNote("schtasks runs on Windows: this host's paths are shown as Windows paths on drive C:, as a model; install on the Windows host for its real paths");
  const shown = (p: string, exe = false) => (win ? asWindowsPath(p, exe) : p);
  const result = await install({
    binary: shown(binary, true),
    configPath: shown(config.file!),
    workDir: shown(config.baseDir),
    at: flags.at ?? DEFAULT_TIME,
    every: flags.every === undefined ? undefined : String(flags.every),
    logFile: shown(output),
    method,
    dryRun,
    system: flags.system,
  });
  const command = `${shown(binary, true)} daily --config ${shown(config.file!)}`;
  if (flags.json) return printJson("schedule install", { ...(snakeKeys(result) as object), job_command: command, log_file: logFile, output_file: output });
  const when = flags.every !== undefined ? `job (${result.method}, ${describeWhen({ at: "", every: parseEvery(String(flags.every)) })})` : `daily job (${result.method}, ${flags.at ?? DEFAULT_TIME} local time)`;
  printInstall(result, when, command, shown(logFile), shown(output));
  return 0;
}

function printInstall(r: InstallResult, when: string, command: string, logFile: string, output: string): void {
  console.log(`${r.dryRun ? "Would install" : "Installed"} the ${when}: ${command}`);
  if (r.method === "cron") console.log(`  crontab line${r.replaced ? " (replacing the earlier duckbak line)" : ""}:\n    ${r.entry}`);
  if (r.method === "systemd") {
    for (const u of r.units) console.log(`  ${u.path}:\n${u.content.replace(/^/gm, "    ")}`);
    for (const argv of r.commands) console.log(`  then: ${argv.join(" ")}`);
  }
  // As typed at a Windows prompt: arguments with spaces or quotes quoted.
  if (r.method === "schtasks") console.log(`  ${r.argv.map((a) => (/[\s"]/.test(a) ? windowsQuote(a) : a)).join(" ")}`);
  console.log(`  backup log: ${logFile}; what the job prints: ${output}`);
  if (r.dryRun) console.log("Dry run: nothing was changed.");
}

async function runRemove(flags: ScheduleFlags): Promise<number> {
  const r = await remove({ method: chooseMethod(flags.method), dryRun: flags.dryRun === true, system: flags.system });
  if (flags.json) return printJson("schedule remove", snakeKeys(r) as object);
  printRemove(r);
  return 0;
}

function scheduler(r: RemoveResult): string {
  switch (r.method) {
    case "cron":
      return "the crontab";
    case "systemd":
      return `the ${r.scope} systemd units`;
    case "schtasks":
      return "the Task Scheduler";
  }
}

function printRemove(r: RemoveResult): void {
  const where = scheduler(r);
  if (!r.removed) console.log(`No duckbak daily job in ${where}; nothing to remove.`);
  else console.log(`${r.dryRun ? "Would remove" : "Removed"} the duckbak daily job from ${where}.`);
  if (r.removed && r.method === "systemd") for (const u of r.units) console.log(`  ${u}`);
  if (r.dryRun) console.log("Dry run: nothing was changed.");
}

const pad = (n: number) => String(n).padStart(2, "0");
const formatLocal = (t: Date) => `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())} ${pad(t.getHours())}:${pad(t.getMinutes())} local time`;

function nextRunText(s: StatusResult): string | null {
  if (s.method === "schtasks") return s.nextRunText;
  return s.nextRun ? formatLocal(s.nextRun) : null;
}

async function runStatus(flags: ScheduleFlags): Promise<number> {
  const s = await status({ method: chooseMethod(flags.method), system: flags.system });
  // Without a config the log is still found where `daily` writes it by default.
  const config = loadConfig(flags.config);
  const logFile = resolveLogFile(flags.logFile, config);
  const lastDaily = lastDailyRun(readLogRecords(logFile))?.lastLine ?? null;
  if (flags.json) {
    // next_run: ISO 8601 UTC where the scheduler gives a time (cron, systemd); next_run_text: as shown.
    const nextRun = s.method === "schtasks" ? null : (s.nextRun?.toISOString() ?? null);
    return printJson("schedule status", { ...(snakeKeys(s) as object), next_run: nextRun, next_run_text: nextRunText(s), log_file: logFile, last_daily: lastDaily });
  }
  if (!s.installed) console.log(`Schedule: no duckbak daily job (${s.method})`);
  else {
    const entry = s.method === "cron" ? `: ${s.entry}` : s.method === "systemd" ? ` (${s.scope} timer)` : "";
    console.log(`Schedule: installed (${s.method})${entry}`);
    console.log(`Next run: ${nextRunText(s) ?? "unknown"}`);
  }
  console.log(lastDaily ? `Last daily run, from ${logFile}:\n  ${lastDaily}` : `Last daily run: none in ${logFile}`);
  return 0;
}
