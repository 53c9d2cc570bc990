// How long work reports its progress: core calls these; the CLI draws a bar on a terminal (or
// nothing). Core never prints.

export type ProgressUnit = "bytes" | "rows";

export interface ProgressSink {
  /** A new phase of `total` bytes (or rows), replacing the one before, like "verifying backup_x". */
  start(total: number, label: string, unit?: ProgressUnit): void;
  /** `n` more bytes (rows) of the current phase are done. */
  advance(n: number): void;
}
