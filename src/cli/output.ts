import kleur from "kleur";
import { dirname, isAbsolute, relative, resolve } from "node:path";
import { DuckbakError, ExitCode } from "../core/errors.ts";
import type { BakFile } from "../core/bakfiles.ts";

kleur.enabled = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
export const color = kleur;

export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/**
 * A path as the user can use it from where they are: relative when inside the working folder, else
 * absolute (and absolute from `/`, where `tmp/x` would read as a typo).
 */
export function displayPath(path: string): string {
  const cwd = process.cwd();
  const abs = resolve(path);
  const rel = relative(cwd, abs);
  return rel && !rel.startsWith("..") && !isAbsolute(rel) && dirname(cwd) !== cwd ? rel : abs;
}

/** "1 table", "3 tables". */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

export function formatDuration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** UTC to the second: 2024-01-15 02:00:00Z. */
export function formatTimestamp(t: Date): string {
  return t.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

/** Rows as lines with every column but the last padded to its widest cell (cells without color codes). */
export function formatTable(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i < row.length - 1 ? cell.padEnd(widths[i]!) : cell)).join("  ").trimEnd());
}

/** What a non-zero exit means, for the JSON envelope of a command that reports no message of its own. */
const EXIT_MEANING: Record<number, string> = {
  [ExitCode.ERROR]: "the command failed",
  [ExitCode.PARTIAL]: "some databases failed",
  [ExitCode.VERIFY_FAILED]: "verification failed",
  [ExitCode.DIFFERENT]: "differences found",
  [ExitCode.SOURCE_DAMAGED]: "backed up, but a source database fails DuckDB's block checksums",
  [ExitCode.STALE]: "backups are stale or the last daily run failed",
};

const ENVELOPE_KEYS = ["ok", "command", "exit_code", "error"];

/**
 * The one JSON document a command prints on stdout (docs/JSON.md): `ok` (exit code 0), `command`,
 * `exit_code`, on a non-zero exit `error: {message, exit_code}`, then the command's own keys
 * (snake_case). Returns `exitCode`, so that an action can end with `return printJson(...)`.
 */
export function printJson(command: string, body: object, exitCode: number = ExitCode.OK, message?: string): number {
  const clash = ENVELOPE_KEYS.find((k) => Object.hasOwn(body, k));
  if (clash) throw new Error(`${command}: the JSON body may not use the envelope's key '${clash}'`);
  const error = exitCode === ExitCode.OK ? {} : { error: { message: message || (EXIT_MEANING[exitCode] ?? `exit code ${exitCode}`), exit_code: exitCode } };
  writeJson({ ok: exitCode === ExitCode.OK, command, exit_code: exitCode, ...error, ...body });
  return exitCode;
}

function writeJson(value: object): void {
  process.stdout.write(JSON.stringify(value, null, 2) + "\n");
}

/** camelCase keys of a typed result to snake_case, deeply; Dates as ISO strings. For results without data-named keys. */
export function snakeKeys(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(snakeKeys);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), snakeKeys(v)]));
}

/** One line on stderr; the message already names the file and the cause. With `json`, also the envelope on stdout. */
export function printError(err: unknown, json?: { command: string | null }): ExitCode {
  const known = err instanceof DuckbakError;
  const code = known ? err.exitCode : ExitCode.ERROR;
  const message = known ? err.message : err instanceof Error ? err.message : String(err);
  if (known) process.stderr.write(`${color.red("duckbak: error:")} ${message}\n`);
  else process.stderr.write(`${color.red("duckbak: internal error:")} ${err instanceof Error ? (err.stack ?? message) : message}\n`);
  if (json) writeJson({ ok: false, command: json.command, exit_code: code, error: { message, exit_code: code } });
  return code;
}

/** Something the user should know that is not a problem, on stderr so that --json output stays clean. */
export function printNote(message: string): void {
  process.stderr.write(`duckbak: ${message}\n`);
}

export function printWarning(message: string): void {
  process.stderr.write(`${color.yellow("duckbak: warning:")} ${message}\n`);
}

/** A .bak file restore kept, as status and cleanup print it in JSON. */
export const bakJson = (b: BakFile) => ({ path: b.path, of: b.of, created_at: b.createdAt.toISOString(), size_bytes: b.sizeBytes });
