// cron: one line in the current user's crontab, found again by the marker comment at its end.
// The text editing is pure; the only I/O is `crontab -l` and `crontab -`.
import { commandFailed, runChecked, runTool, spawnRunner, type DailyJob, type Runner, type ScheduleDeps } from "./index.ts";

export const CRON_MARKER = "# duckbak daily backup (managed by duckbak; do not edit this line)";

const MISSING = "install cron (Debian/Ubuntu: apt-get install cron)";

export interface CronInstallResult {
  method: "cron";
  dryRun: boolean;
  /** The crontab line, without its newline. */
  entry: string;
  /** The whole new crontab. */
  crontab: string;
  /** Whether an earlier duckbak entry was replaced. */
  replaced: boolean;
}

export interface CronRemoveResult {
  method: "cron";
  dryRun: boolean;
  /** Whether our entry was there (in a dry run: would be removed). */
  removed: boolean;
  crontab: string;
}

export interface CronStatus {
  method: "cron";
  installed: boolean;
  entry: string | null;
  /** Next run in local time, the time zone cron uses; null if the entry was edited into another form. */
  nextRun: Date | null;
}

/** Quotes a word for /bin/sh. */
export function shQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * A sh word inside a crontab line. cron cuts the line at a bare `%` and turns `\%` into `%`;
 * Debian's cron also turns `\\` into `\`, cronie does not. So each `%` is written `\%` between
 * quoted pieces, and adjacent backslashes go into separate pieces: never `\\` in the line.
 */
export function cronWord(word: string): string {
  return word
    .split("%")
    .map((piece) => piece.split(/(?<=\\)(?=\\)/).map(shQuote).join(""))
    .join("\\%");
}

/**
 * The crontab line. Cron runs it with /bin/sh, a minimal environment and often no HOME or PATH of
 * ours, hence absolute paths only; the braces send a failed `cd` to the log as well.
 */
export function cronEntry(job: DailyJob): string {
  const w = cronWord;
  const command = `{ cd ${w(job.workDir)} && ${w(job.binary)} daily --config ${w(job.configPath)}; } >> ${w(job.logFile)} 2>&1`;
  const e = job.every;
  const when = !e ? `${job.minute} ${job.hour} * * *` : e.unit === "m" ? `${e.n === 1 ? "*" : `*/${e.n}`} * * * *` : `0 ${e.n === 1 ? "*" : `*/${e.n}`} * * *`;
  return `${when} ${command} ${CRON_MARKER}`;
}

// Lines keep their own "\n" so that untouched ones, and a missing final newline, come back byte for byte.
function lines(crontab: string): string[] {
  return crontab.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

function isOurs(line: string): boolean {
  return line.trimEnd().endsWith(CRON_MARKER);
}

export function findCronEntry(crontab: string): string | null {
  const line = lines(crontab).find(isOurs);
  return line === undefined ? null : line.replace(/\n$/, "");
}

/** Puts `entry` in place of our first line (dropping any duplicates), or appends it. */
export function installCronEntry(crontab: string, entry: string): string {
  const out: string[] = [];
  let placed = false;
  for (const line of lines(crontab)) {
    if (!isOurs(line)) out.push(line);
    else if (!placed) {
      out.push(`${entry}\n`);
      placed = true;
    }
  }
  if (!placed) {
    // cron ignores or rejects a last line without a newline, so ours always ends with one.
    if (out.length > 0 && !out[out.length - 1].endsWith("\n")) out.push("\n");
    out.push(`${entry}\n`);
  }
  return out.join("");
}

export function removeCronEntry(crontab: string): string {
  return lines(crontab)
    .filter((line) => !isOurs(line))
    .join("");
}

/** The first local HH:MM strictly after `now` (cron starts jobs at second 0). */
export function nextDailyRun(hour: number, minute: number, now: Date): Date {
  const today = new Date(now.getFullYear(), now.getMonth(), now.getDate(), hour, minute);
  return today > now ? today : new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1, hour, minute);
}

/** Next run of an entry in our "M H * * *" form. */
export function nextCronRun(entry: string, now: Date): Date | null {
  // Our interval forms: "*/N * * * *" (or "* * * * *") and "0 */N * * *" (or "0 * * * *").
  const every = /^(\*(?:\/(\d+))?)\s+\*\s+\*\s+\*\s+\*\s/.exec(entry) ?? /^0\s+(\*(?:\/(\d+))?)\s+\*\s+\*\s+\*\s/.exec(entry);
  if (every) {
    const n = Number(every[2] ?? 1);
    const step = (entry.startsWith("0 ") ? 60 : 1) * n * 60_000;
    const dayStart = new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime();
    return new Date(dayStart + (Math.floor((now.getTime() - dayStart) / step) + 1) * step);
  }
  const m = /^(\d{1,2})\s+(\d{1,2})\s+\*\s+\*\s+\*\s/.exec(entry);
  if (!m) return null;
  const minute = Number(m[1]);
  const hour = Number(m[2]);
  return minute < 60 && hour < 24 ? nextDailyRun(hour, minute, now) : null;
}

async function readCrontab(run: Runner): Promise<string> {
  const argv = ["crontab", "-l"];
  const result = await runTool(run, argv, MISSING);
  if (result.exitCode === 0) return result.stdout;
  // Not an error: the user simply has no crontab yet.
  if (/no crontab for/i.test(result.stderr)) return "";
  throw commandFailed(argv, result);
}

async function writeCrontab(run: Runner, crontab: string): Promise<void> {
  await runChecked(run, ["crontab", "-"], MISSING, crontab);
}

export async function install(job: DailyJob, dryRun: boolean, deps: ScheduleDeps): Promise<CronInstallResult> {
  const run = deps.run ?? spawnRunner;
  const current = await readCrontab(run);
  const entry = cronEntry(job);
  const crontab = installCronEntry(current, entry);
  if (!dryRun && crontab !== current) await writeCrontab(run, crontab);
  return { method: "cron", dryRun, entry, crontab, replaced: findCronEntry(current) !== null };
}

export async function remove(dryRun: boolean, deps: ScheduleDeps): Promise<CronRemoveResult> {
  const run = deps.run ?? spawnRunner;
  const current = await readCrontab(run);
  const crontab = removeCronEntry(current);
  const removed = crontab !== current;
  if (!dryRun && removed) await writeCrontab(run, crontab);
  return { method: "cron", dryRun, removed, crontab };
}

export async function status(deps: ScheduleDeps): Promise<CronStatus> {
  const entry = findCronEntry(await readCrontab(deps.run ?? spawnRunner));
  return {
    method: "cron",
    installed: entry !== null,
    entry,
    nextRun: entry === null ? null : nextCronRun(entry, deps.now ?? new Date()),
  };
}
