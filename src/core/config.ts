import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { ConfigError } from "./errors.ts";
import { COMPRESSIONS, type Compression } from "./naming.ts";
import type { RetentionPolicy } from "./retention.ts";

export const CONFIG_FILE_NAME = "duckbak.toml";
export const DEFAULT_BACKUP_DIR = "data/backups";
export const DEFAULT_LOG_FILE = "data/backup.log";
export const DEFAULT_DATA_DIR = "data";

/** The [retention] table: the same fields as a retention policy. */
export type RetentionSettings = RetentionPolicy;

/** duckbak.toml, validated; relative paths are resolved against the config file's folder. */
export interface Config {
  /** The file it was read from, or null when none exists. */
  file: string | null;
  /** Folder that relative paths are resolved against. */
  baseDir: string;
  databases?: string[];
  backupDir?: string;
  logFile?: string;
  compression?: Compression;
  waitSeconds?: number;
  /** Seconds to wait for another duckbak run's lock on the backup folder. */
  lockWaitSeconds?: number;
  retention: RetentionSettings;
}

const RETENTION_KEYS: Record<string, keyof RetentionSettings> = {
  keep_days: "keepDays",
  keep_minimum: "keepMinimum",
  keep_last: "keepLast",
  keep_daily: "keepDaily",
  keep_weekly: "keepWeekly",
  keep_monthly: "keepMonthly",
  keep_yearly: "keepYearly",
};
const TOP_KEYS = new Set(["databases", "backup_dir", "log_file", "compression", "wait", "lock_wait", "retention"]);

/**
 * Loads `explicit` (an error if missing), else ./duckbak.toml if present, else an empty config
 * rooted at the working directory.
 */
export function loadConfig(explicit?: string, cwd = process.cwd()): Config {
  const file = explicit ? resolve(cwd, explicit) : resolve(cwd, CONFIG_FILE_NAME);
  if (!existsSync(file)) {
    if (explicit) throw new ConfigError(file, "config file not found");
    return { file: null, baseDir: cwd, retention: {} };
  }
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(file, `cannot read: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = Bun.TOML.parse(text);
  } catch (err) {
    throw new ConfigError(file, `invalid TOML: ${(err as Error).message}`);
  }
  return parseConfig(raw as Record<string, unknown>, file);
}

/** Validates parsed TOML; pure apart from path resolution. */
export function parseConfig(raw: Record<string, unknown>, file: string): Config {
  const baseDir = dirname(file);
  const cfg: Config = { file, baseDir, retention: {} };
  const fail = (msg: string): never => {
    throw new ConfigError(file, msg);
  };
  for (const key of Object.keys(raw)) if (!TOP_KEYS.has(key)) fail(`unknown key '${key}'`);

  const str = (key: string): string | undefined => {
    const v = raw[key];
    if (v === undefined) return undefined;
    if (typeof v !== "string" || v === "") fail(`'${key}' must be a non-empty string`);
    return v as string;
  };
  if (raw.databases !== undefined) {
    const dbs = raw.databases;
    if (!Array.isArray(dbs) || dbs.some((d) => typeof d !== "string" || d === ""))
      fail("'databases' must be a list of file paths");
    cfg.databases = (dbs as string[]).map((d) => resolve(baseDir, d));
  }
  const backupDir = str("backup_dir");
  if (backupDir) cfg.backupDir = resolve(baseDir, backupDir);
  const logFile = str("log_file");
  if (logFile) cfg.logFile = resolve(baseDir, logFile);
  const compression = str("compression");
  if (compression !== undefined) {
    if (!COMPRESSIONS.includes(compression as Compression))
      fail(`'compression' must be one of ${COMPRESSIONS.join(", ")}, not '${compression}'`);
    cfg.compression = compression as Compression;
  }
  const seconds = (key: string): number | undefined => {
    const v = raw[key];
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !(v >= 0)) fail(`'${key}' must be a number of seconds >= 0`);
    return v as number;
  };
  cfg.waitSeconds = seconds("wait");
  cfg.lockWaitSeconds = seconds("lock_wait");
  if (raw.retention !== undefined) {
    const r = raw.retention;
    if (typeof r !== "object" || r === null || Array.isArray(r)) fail("'retention' must be a table");
    for (const [key, value] of Object.entries(r as Record<string, unknown>)) {
      const field = Object.hasOwn(RETENTION_KEYS, key) ? RETENTION_KEYS[key]! : fail(`unknown key 'retention.${key}'`);
      if (field === "keepYearly" && value === "forever") cfg.retention.keepYearly = "forever";
      else if (typeof value === "number" && Number.isInteger(value) && value >= 0) cfg.retention[field] = value;
      else fail(`'retention.${key}' must be a whole number >= 0${field === "keepYearly" ? ' or "forever"' : ""}`);
    }
  }
  return cfg;
}
