import kleur from "kleur";
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

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + "\n");
}

/** One line on stderr; the message already names the file and the cause. */
export function printError(err: unknown): ExitCode {
  if (err instanceof DuckbakError) {
    process.stderr.write(`${color.red("duckbak: error:")} ${err.message}\n`);
    return err.exitCode;
  }
  const msg = err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`${color.red("duckbak: internal error:")} ${msg}\n`);
  return ExitCode.ERROR;
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
