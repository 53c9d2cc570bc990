// The backup log: one line per event, appended, in logfmt after an ISO 8601 UTC timestamp:
//
//   2024-01-15T02:00:00.123Z level=info event=database run=5f3a9c1e status=ok path=/srv/data/results.duckdb bytes=1048576 duration_ms=412
//
// greppable (`grep 'level=error'`, `grep run=5f3a9c1e`) and machine-readable: a value with a space,
// quote, `=` or control character is a JSON string. Past a size the log is rotated by renames
// (backup.log -> backup.log.1 -> .2 -> .3), each atomic, so a crash leaves every line in one file.
import { appendFileSync, mkdirSync, readFileSync, renameSync, statSync } from "node:fs";
import { renameBlockedByOpenFile } from "../platform/fs.ts";
import { dirname } from "node:path";
import { DuckbakError, fsError } from "./errors.ts";

export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;
/** Rotated files kept: backup.log.1 (newest) to backup.log.3. */
export const LOG_KEEP = 3;

export type LogLevel = "info" | "warn" | "error";
export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface LogRecord {
  time: Date;
  level: string;
  event: string;
  /** Every key=value after the timestamp, level and event included. */
  fields: Record<string, string>;
  line: string;
}

function formatValue(value: string | number | boolean): string {
  const s = String(value);
  return s === "" || /[\s"=\\\x00-\x1f\x7f]/.test(s) ? JSON.stringify(s) : s;
}

/** One log line, without its newline; undefined and null fields are left out. */
export function formatLogLine(time: Date, level: LogLevel, event: string, fields: LogFields = {}): string {
  const parts = [time.toISOString(), `level=${level}`, `event=${formatValue(event)}`];
  for (const [key, value] of Object.entries(fields)) {
    if (value !== undefined && value !== null) parts.push(`${key}=${formatValue(value)}`);
  }
  return parts.join(" ");
}

const STAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z/;
const PAIR = /\s+([A-Za-z_][\w.-]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)/y;

/** Parses a line written by formatLogLine; null for anything else (say, a crash message). */
export function parseLogLine(line: string): LogRecord | null {
  const text = line.trimEnd();
  const stamp = STAMP.exec(text);
  if (!stamp) return null;
  const fields: Record<string, string> = {};
  PAIR.lastIndex = stamp[0].length;
  while (PAIR.lastIndex < text.length) {
    const m = PAIR.exec(text);
    if (!m) return null;
    try {
      fields[m[1]!] = m[2]!.startsWith('"') ? JSON.parse(m[2]!) : m[2]!;
    } catch {
      return null;
    }
  }
  if (!fields.level || !fields.event) return null;
  return { time: new Date(stamp[0]), level: fields.level, event: fields.event, fields, line: text };
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** Shifts backup.log.N up by one, dropping the oldest, then moves backup.log to backup.log.1. */
export function rotateLog(path: string, keep = LOG_KEEP, platform: string = process.platform): void {
  for (let i = keep - 1; i >= 0; i--) {
    const from = i === 0 ? path : `${path}.${i}`;
    try {
      renameSync(from, `${path}.${i + 1}`);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // A gap left by a crash mid-rotation, or another run that rotated first.
      if (code === "ENOENT") continue;
      // Windows, a viewer has the log open: rotate later rather than lose this line.
      if (renameBlockedByOpenFile(platform, code)) return;
      throw fsError(err, from, "rotate log");
    }
  }
}

/**
 * Where a scheduler sends what `daily` prints (backup.log -> backup.output.log). Not the log itself:
 * a rotation would leave the scheduler's open file descriptor writing into backup.log.1.
 */
export function schedulerOutputFile(logFile: string): string {
  return logFile.endsWith(".log") ? `${logFile.slice(0, -".log".length)}.output.log` : `${logFile}.output`;
}

export interface BackupLogOptions {
  /** Rotate once the log has reached this size; default 10 MiB. */
  maxBytes?: number;
  /** Clock for the line timestamps (tests). */
  now?: () => Date;
}

/**
 * Appends to the log, never throwing: a run must not fail or lose a backup because its log
 * cannot be written. The first write error is kept in `error` for the caller to report.
 */
export class BackupLog {
  error: DuckbakError | null = null;
  private readonly maxBytes: number;
  private readonly now: () => Date;

  constructor(
    readonly path: string,
    opts: BackupLogOptions = {},
  ) {
    this.maxBytes = opts.maxBytes ?? DEFAULT_LOG_MAX_BYTES;
    this.now = opts.now ?? (() => new Date());
  }

  write(level: LogLevel, event: string, fields: LogFields = {}): void {
    const line = formatLogLine(this.now(), level, event, fields) + "\n";
    try {
      if (sizeOf(this.path) >= this.maxBytes) rotateLog(this.path);
      mkdirSync(dirname(this.path), { recursive: true });
      // One write per line on an O_APPEND file: lines of concurrent runs never interleave.
      appendFileSync(this.path, line);
    } catch (err) {
      this.error ??= fsError(err, this.path, "write log");
    }
  }
}

/** The log's records, oldest first, with the newest rotated file's before the current ones. */
export function readLogRecords(path: string): LogRecord[] {
  const text = [`${path}.1`, path].map((p) => {
    try {
      return readFileSync(p, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return "";
      throw fsError(err, p, "read log");
    }
  });
  return text
    .join("\n")
    .split("\n")
    .map(parseLogLine)
    .filter((r): r is LogRecord => r !== null);
}
