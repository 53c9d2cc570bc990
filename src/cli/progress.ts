// The progress bar of long commands: on stderr, only when stderr is a terminal and the output is
// not --json; never in logs, pipes or cron mail. Drawing, redraw throttling (5 per second) and
// terminal handling come from cli-progress; what a line says is the pure renderProgressLine.
import cliProgress from "cli-progress";
import type { ProgressSink, ProgressUnit } from "../core/progress.ts";
import { formatBytes } from "./output.ts";

export interface Progress extends ProgressSink {
  /** Ends the bar, leaving `summary` (if any) as one line in its place. */
  done(summary?: string): void;
}

export interface ProgressState {
  label: string;
  doneBytes: number;
  totalBytes: number;
  elapsedMs: number;
  /** What the numbers count; default bytes. */
  unit?: ProgressUnit;
}

/** "1.2 GiB", or "12,345 rows". */
export function formatAmount(n: number, unit: ProgressUnit = "bytes"): string {
  return unit === "bytes" ? formatBytes(n) : `${Math.round(n).toLocaleString("en-US")} rows`;
}

/** "1m 05s", "42s", "2h 03m". */
export function formatEta(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** Bytes per second so far; null until there is enough to judge (a quarter second). */
export function rateOf(s: ProgressState): number | null {
  return s.elapsedMs >= 250 && s.doneBytes > 0 ? (s.doneBytes * 1000) / s.elapsedMs : null;
}

/** One line: `verifying b1  [=====-----]  45%  1.2 GiB / 2.6 GiB  85.0 MiB/s  ETA 17s`, cut to `width`. */
export function renderProgressLine(s: ProgressState, width: number): string {
  const fraction = s.totalBytes > 0 ? Math.min(1, s.doneBytes / s.totalBytes) : 0;
  const rate = rateOf(s);
  const eta = rate && s.totalBytes > s.doneBytes ? `ETA ${formatEta((s.totalBytes - s.doneBytes) / rate)}` : rate ? "ETA 0s" : "ETA -";
  const tail = [
    `${String(Math.floor(fraction * 100)).padStart(3)}%`,
    `${s.unit === "rows" ? Math.round(s.doneBytes).toLocaleString("en-US") : formatBytes(s.doneBytes)} / ${formatAmount(s.totalBytes, s.unit)}`,
    rate ? `${formatAmount(Math.round(rate), s.unit)}/s` : "-/s",
    eta,
  ].join("  ");
  // Room kept for the longest tail, so the bar does not change width as the numbers do.
  const barWidth = Math.max(0, Math.min(30, width - s.label.length - 56));
  const filled = Math.round(fraction * barWidth);
  const bar = barWidth >= 5 ? `  [${"=".repeat(filled)}${"-".repeat(barWidth - filled)}]` : "";
  const line = `${s.label}${bar}  ${tail}`;
  return line.length > width ? line.slice(0, Math.max(0, width - 1)) : line;
}

/**
 * The line left behind: "restoring b1: 1.2 GiB in 28.1 s (85.0 MiB/s)" with the last phase's bytes
 * and rate, and the time of the whole command.
 */
export function summaryLine(label: string, bytes: number, phaseMs: number, totalMs: number, unit: ProgressUnit = "bytes"): string {
  const rate = phaseMs > 0 ? ` (${formatAmount(Math.round((bytes * 1000) / phaseMs), unit)}/s)` : "";
  return `${label}: ${formatAmount(bytes, unit)} in ${(totalMs / 1000).toFixed(1)} s${rate}`;
}

const NONE: Progress = { start() {}, advance() {}, done() {} };

/** Whether a bar may be drawn: a terminal on stderr, no --json, not a dumb terminal, not switched off. */
export function progressWanted(opts: { json?: boolean; stream?: { isTTY?: boolean } } = {}): boolean {
  const stream = opts.stream ?? process.stderr;
  return Boolean(stream.isTTY) && !opts.json && process.env.TERM !== "dumb" && !process.env.DUCKBAK_NO_PROGRESS;
}

/**
 * A progress bar for a command; a no-op unless progressWanted. Phases (start) may follow each
 * other; `done` leaves one summary line: the given one, else bytes, time and rate of all phases.
 */
export function createProgress(opts: { json?: boolean } = {}): Progress {
  if (!progressWanted(opts)) return NONE;
  const stream = process.stderr;
  let phase = { label: "", unit: "bytes" as ProgressUnit, total: 0, value: 0, start: 0, end: 0 };
  // The summary tells of the last phase in the first phase's unit: restore's restore pass (not its
  // check pass), verify's archive read (not its reading of the tables, counted in rows).
  let summarized: typeof phase | null = null;
  const begun = performance.now();
  const bar = new cliProgress.SingleBar({
    stream,
    fps: 5,
    clearOnComplete: true,
    hideCursor: false,
    linewrap: true,
    gracefulExit: false,
    format: (_options, params) =>
      renderProgressLine(
        { label: phase.label, unit: phase.unit, doneBytes: params.value, totalBytes: params.total, elapsedMs: performance.now() - phase.start },
        params.maxWidth,
      ),
  });
  let running = false;
  const stop = () => {
    if (running) bar.stop();
    running = false;
    phase.end = performance.now();
  };
  return {
    start(total, label, unit = "bytes") {
      stop();
      phase = { label, unit, total, value: 0, start: performance.now(), end: 0 };
      if (!summarized || summarized.unit === unit) summarized = phase;
      bar.start(total, 0);
      running = true;
    },
    advance(n) {
      if (!running) return;
      phase.value += n;
      bar.update(Math.min(phase.value, phase.total));
    },
    done(summary) {
      stop();
      const s = summarized;
      const line = summary ?? (s ? summaryLine(s.label, s.value, s.end - s.start, performance.now() - begun, s.unit) : null);
      if (line) stream.write(`${line}\n`);
    },
  };
}

/** Runs `fn` with a progress bar that is ended whatever happens (its redraw timer would keep the process alive). */
export async function withProgress<T>(opts: { json?: boolean }, fn: (progress: Progress) => Promise<T>): Promise<T> {
  const progress = createProgress(opts);
  try {
    return await fn(progress);
  } finally {
    progress.done();
  }
}
