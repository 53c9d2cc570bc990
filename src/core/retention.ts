// Retention policy: decides which backups to keep and which to delete.
// Pure: no I/O and no clock; the caller passes `now`.

import { UsageError } from "./errors.ts";

export interface RetentionPolicy {
  /** Delete backups older than this many days (timestamp < now − N×24h). */
  keepDays?: number;
  /** Always keep this many newest backups, however old. */
  keepMinimum?: number;
  /** Keep the N newest backups. */
  keepLast?: number;
  /** Keep the newest backup of each of the last N calendar days that have backups. */
  keepDaily?: number;
  /** Same for ISO-8601 weeks (week-year, e.g. 2020-W53). */
  keepWeekly?: number;
  /** Same for calendar months. */
  keepMonthly?: number;
  /** Same for calendar years; "forever" keeps the newest of every year. */
  keepYearly?: number | "forever";
}

export interface BackupRef {
  name: string;
  timestamp: Date;
  /** true: known to pass verification; false: known to fail; undefined: unknown. */
  verified?: boolean;
}

export interface RetentionDecision {
  /** Newest first; `reasons` lists every rule that keeps the backup. */
  keep: { backup: BackupRef; reasons: string[] }[];
  /** Newest first. */
  remove: BackupRef[];
}

export interface RetentionOptions {
  /** IANA time zone for calendar periods; defaults to the process's local zone. */
  timeZone?: string;
}

/** A policy that is malformed or would delete everything: a usage error, nothing is deleted. */
export class RetentionPolicyError extends UsageError {}

/** Seed rule. Fields absent from a policy are off, so callers merge: `{ ...DEFAULT_POLICY, ...user }`. */
export const DEFAULT_POLICY: Readonly<RetentionPolicy> = Object.freeze({ keepDays: 30, keepMinimum: 5 });

const DAY_MS = 24 * 60 * 60 * 1000;

const COUNT_KEYS = ["keepDays", "keepMinimum", "keepLast", "keepDaily", "keepWeekly", "keepMonthly", "keepYearly"] as const;

export function validatePolicy(p: RetentionPolicy): void {
  if (typeof p !== "object" || p === null) throw new RetentionPolicyError("retention policy must be an object");
  for (const key of Object.keys(p)) {
    // A misspelt option would otherwise be ignored silently and delete more than intended.
    if (!(COUNT_KEYS as readonly string[]).includes(key)) {
      throw new RetentionPolicyError(`unknown retention option "${key}"`);
    }
  }
  for (const key of COUNT_KEYS) {
    const v: unknown = p[key];
    if (v === undefined || (key === "keepYearly" && v === "forever")) continue;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
      const allowed = key === "keepYearly" ? 'a non-negative integer or "forever"' : "a non-negative integer";
      throw new RetentionPolicyError(`${key} must be ${allowed}, got ${typeof v === "string" ? JSON.stringify(v) : String(v)}`);
    }
  }
  if (COUNT_KEYS.every((key) => !p[key])) {
    throw new RetentionPolicyError(
      "retention policy keeps nothing and would delete every backup; set keep_days, keep_minimum or a keep_last/daily/weekly/monthly/yearly count ([retention] in duckbak.toml, or --keep-days, --keep-last, ... on the command line)",
    );
  }
}

export function describePolicy(policy: RetentionPolicy): string {
  const parts: string[] = [];
  if (policy.keepDays) parts.push(`backups from the last ${policy.keepDays} days`);
  if (policy.keepMinimum) parts.push(`at least the ${policy.keepMinimum} newest`);
  if (policy.keepLast) parts.push(`the last ${policy.keepLast}`);
  if (policy.keepDaily) parts.push(`${policy.keepDaily} daily`);
  if (policy.keepWeekly) parts.push(`${policy.keepWeekly} weekly`);
  if (policy.keepMonthly) parts.push(`${policy.keepMonthly} monthly`);
  if (policy.keepYearly === "forever") parts.push("yearly forever");
  else if (policy.keepYearly) parts.push(`${policy.keepYearly} yearly`);
  if (parts.length === 0) return "keep nothing";
  return `keep ${parts.join(", ")}; the newest verified backup is always kept`;
}

/** Newest first; equal timestamps fall back to name so the order never depends on input order. */
function compareNewestFirst(a: BackupRef, b: BackupRef): number {
  const dt = b.timestamp.getTime() - a.timestamp.getTime();
  if (dt !== 0) return dt;
  return a.name < b.name ? 1 : a.name > b.name ? -1 : 0;
}

interface Periods {
  day: string;
  week: string;
  month: string;
  year: string;
}

function wallClockDate(fmt: Intl.DateTimeFormat, t: Date): { y: number; m: number; d: number } {
  let y = 0;
  let m = 0;
  let d = 0;
  for (const part of fmt.formatToParts(t)) {
    if (part.type === "year") y = Number(part.value);
    else if (part.type === "month") m = Number(part.value);
    else if (part.type === "day") d = Number(part.value);
  }
  return { y, m, d };
}

/** ISO-8601 week: the week belongs to the year of its Thursday. */
function isoWeek(y: number, m: number, d: number): { year: number; week: number } {
  const date = new Date(Date.UTC(y, m - 1, d));
  const weekday = date.getUTCDay() || 7; // Monday = 1 … Sunday = 7
  const thursday = new Date(date.getTime() + (4 - weekday) * DAY_MS);
  const year = thursday.getUTCFullYear();
  const week = Math.floor((thursday.getTime() - Date.UTC(year, 0, 1)) / DAY_MS / 7) + 1;
  return { year, week };
}

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

function periodsOf(fmt: Intl.DateTimeFormat, t: Date): Periods {
  const { y, m, d } = wallClockDate(fmt, t);
  const w = isoWeek(y, m, d);
  return {
    day: `${pad(y, 4)}-${pad(m)}-${pad(d)}`,
    week: `${pad(w.year, 4)}-W${pad(w.week)}`,
    month: `${pad(y, 4)}-${pad(m)}`,
    year: pad(y, 4),
  };
}

function dateFormatter(timeZone: string | undefined): Intl.DateTimeFormat {
  try {
    // Wall-clock date in the zone, so DST shifts never move a backup into another day.
    return new Intl.DateTimeFormat("en-US", {
      timeZone,
      calendar: "gregory",
      numberingSystem: "latn",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
    });
  } catch {
    throw new RetentionPolicyError(`unknown time zone "${timeZone}"`);
  }
}

function checkInput(backups: BackupRef[], now: Date): void {
  if (Number.isNaN(now.getTime())) throw new RangeError("retention: `now` is an invalid date");
  const names = new Set<string>();
  for (const b of backups) {
    if (!(b.timestamp instanceof Date) || Number.isNaN(b.timestamp.getTime())) {
      throw new RangeError(`retention: backup "${b.name}" has an invalid timestamp`);
    }
    // Unique names make the tie-break total, hence the result independent of input order.
    if (names.has(b.name)) throw new RangeError(`retention: duplicate backup name "${b.name}"`);
    names.add(b.name);
  }
}

export function planRetention(
  backups: BackupRef[],
  policy: RetentionPolicy,
  now: Date,
  opts: RetentionOptions = {},
): RetentionDecision {
  validatePolicy(policy);
  checkInput(backups, now);
  const fmt = dateFormatter(opts.timeZone);

  const sorted = [...backups].sort(compareNewestFirst);
  const reasons = new Map<BackupRef, string[]>(sorted.map((b) => [b, []]));
  const why = (b: BackupRef, reason: string) => reasons.get(b)!.push(reason);

  // Seed rule.
  if (policy.keepDays) {
    const cutoff = now.getTime() - policy.keepDays * DAY_MS;
    for (const b of sorted) if (b.timestamp.getTime() >= cutoff) why(b, `keep-days ${policy.keepDays}`);
  }
  sorted.slice(0, policy.keepMinimum ?? 0).forEach((b) => why(b, "keep-minimum"));

  // GFS rules as restic's forget: walk newest first, and the first backup seen in a period
  // is that period's newest; a period is counted only when a backup falls into it.
  // (restic >= 0.17 also keeps the oldest snapshot while a count is left over; we do not.)
  sorted.slice(0, policy.keepLast ?? 0).forEach((b, i) => why(b, `last ${i + 1}`));
  const allBuckets: { label: string; count: number; key: keyof Periods }[] = [
    { label: "daily", count: policy.keepDaily ?? 0, key: "day" },
    { label: "weekly", count: policy.keepWeekly ?? 0, key: "week" },
    { label: "monthly", count: policy.keepMonthly ?? 0, key: "month" },
    { label: "yearly", count: policy.keepYearly === "forever" ? Infinity : (policy.keepYearly ?? 0), key: "year" },
  ];
  const buckets = allBuckets.filter((bucket) => bucket.count > 0);
  if (buckets.length > 0) {
    // A set, not restic's "differs from the previous key", so a period stays one period even if
    // a zone's offset change ever makes local dates run backwards.
    const seen = buckets.map(() => new Set<string>());
    for (const b of sorted) {
      const periods = periodsOf(fmt, b.timestamp);
      buckets.forEach((bucket, i) => {
        const period = periods[bucket.key];
        if (seen[i].size < bucket.count && !seen[i].has(period)) {
          seen[i].add(period);
          why(b, `${bucket.label} ${period}`);
        }
      });
    }
  }

  // Safety net: a restorable backup must survive any policy.
  const newestVerified = sorted.find((b) => b.verified === true);
  if (newestVerified) why(newestVerified, "newest verified");
  else if (sorted.length > 0) why(sorted[0], "newest (none verified)");

  const decision: RetentionDecision = { keep: [], remove: [] };
  for (const b of sorted) {
    const r = reasons.get(b)!;
    if (r.length > 0) decision.keep.push({ backup: b, reasons: r });
    else decision.remove.push(b);
  }
  return decision;
}
