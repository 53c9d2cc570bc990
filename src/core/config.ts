import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { homedir } from "node:os";
import { didYouMean } from "./suggest.ts";
import { ConfigError } from "./errors.ts";
import { COMPRESSIONS, type Compression } from "./naming.ts";
import type { RetentionPolicy } from "./retention.ts";
import { maxUnusedFraction } from "./repo/repack.ts";
import type { KeySource } from "./keys.ts";

export const CONFIG_FILE_NAME = "duckbak.toml";
export const DEFAULT_BACKUP_DIR = "data/backups";
export const DEFAULT_LOG_FILE = "data/backup.log";
export const DEFAULT_DATA_DIR = "data";

/** The [retention] table: the same fields as a retention policy. */
export type RetentionSettings = RetentionPolicy;

/** Default seconds a before_backup / after_backup command may run before it is killed. */
export const DEFAULT_HOOK_TIMEOUT_SECONDS = 300;

/**
 * One database's own settings: a `[[database]]` table (`path` plus any of the keys below), merged
 * with the global defaults by `databaseSettings`. New per-database keys go in DATABASE_KEYS.
 */
export interface DatabaseSettings {
  path: string;
  /** Shell command run before this database is copied (the global one when unset; "" for none). */
  beforeBackup?: string;
  /** Shell command run after the copy, always once the before command ran. */
  afterBackup?: string;
  /** Copy it while a writer holds it open, by the hot-copy protocol (backup --hot). */
  hot?: boolean;
  /** Where the key of an encrypted database (DuckDB 1.4+) comes from; the key itself is never stored. */
  encryptionKey?: KeySource;
}

/** duckbak.toml, validated; relative paths are resolved against the config file's folder. */
export interface Config {
  /** The file it was read from, or null when none exists. */
  file: string | null;
  /** How it was found (null: none was); unset for a config parsed directly. */
  source?: ConfigSource | null;
  /** Folder that relative paths are resolved against. */
  baseDir: string;
  /** Every configured database: `databases = [...]`, then the paths of `[[database]]` tables. */
  databases?: string[];
  /** `[[database]]` tables by resolved path. */
  database: Record<string, DatabaseSettings>;
  /** Global before_backup / after_backup, the default of every database. */
  beforeBackup?: string;
  afterBackup?: string;
  hookTimeoutSeconds?: number;
  backupDir?: string;
  logFile?: string;
  compression?: Compression;
  waitSeconds?: number;
  /** Seconds to wait for another duckbak run's lock on the backup folder. */
  lockWaitSeconds?: number;
  /** Permissions of the files duckbak creates (folders get x where r is set); default 0600 / 0700. */
  fileMode?: number;
  /** Prometheus text file written after daily, backup and cleanup (node_exporter's textfile collector). */
  metricsFile?: string;
  /** Shell command run after daily, backup and cleanup, with the result in its environment and JSON on stdin. */
  notifyCommand?: string;
  /** healthchecks.io-style check URL pinged by daily: /start, then the URL or /fail. */
  healthcheckUrl?: string;
  retention: RetentionSettings;
  /** The [s3] table: how to reach s3:// repositories (AWS variables fill what it leaves out). */
  s3?: S3Config;
  /** `offsite`: a second repository (typically s3://...) that `daily` copies each new snapshot to. */
  offsite?: string;
  /** Snapshot repository location (folder path; DUCKBAK_REPOSITORY and --repo override it). */
  repository?: string;
  /** Shell command that prints the repository password. */
  passwordCommand?: string;
  /** cleanup --repo's repacking threshold (a fraction of the pack bytes that may be unused). */
  maxUnused?: number;
}

/** The [s3] table. Secrets read from here are never printed. */
export interface S3Config {
  endpoint?: string;
  region?: string;
  /** Path-style (https://host/bucket/key, MinIO/Ceph) or virtual-hosted (https://bucket.host/key). */
  pathStyle?: boolean;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** An AWS shared-credentials file (INI) holding them, resolved against the config's folder. */
  credentialsFile?: string;
  /** Its section; default AWS_PROFILE, else "default". */
  profile?: string;
  /** Attempts after the first for transient failures. */
  retries?: number;
}

const S3_STRING_KEYS = {
  endpoint: "endpoint",
  region: "region",
  access_key_id: "accessKeyId",
  secret_access_key: "secretAccessKey",
  credentials_file: "credentialsFile",
  profile: "profile",
} as const;

function parseS3Table(raw: unknown, baseDir: string, fail: Fail): S3Config {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) fail("'s3' must be a table");
  const out: S3Config = {};
  for (const [key, v] of Object.entries(raw as Record<string, unknown>)) {
    if (Object.hasOwn(S3_STRING_KEYS, key)) {
      if (typeof v !== "string" || v === "") fail(`'s3.${key}' must be a non-empty string`);
      out[S3_STRING_KEYS[key as keyof typeof S3_STRING_KEYS]] = v as string;
    } else if (key === "path_style") {
      if (typeof v !== "boolean") fail("'s3.path_style' must be true or false");
      out.pathStyle = v as boolean;
    } else if (key === "retries") {
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 30) fail("'s3.retries' must be a whole number from 0 to 30");
      out.retries = v as number;
    } else fail(`unknown key 's3.${key}'${didYouMean(key, [...Object.keys(S3_STRING_KEYS), "path_style", "retries"])}`);
  }
  if (out.endpoint !== undefined && !/^https?:\/\/[^/]+/.test(out.endpoint)) fail("'s3.endpoint' must be an http(s):// URL");
  if ((out.accessKeyId === undefined) !== (out.secretAccessKey === undefined))
    fail("'s3.access_key_id' and 's3.secret_access_key' go together");
  if (out.credentialsFile !== undefined) {
    if (out.accessKeyId !== undefined) fail("'s3.credentials_file' and 's3.access_key_id' exclude each other");
    out.credentialsFile = resolve(baseDir, out.credentialsFile);
  }
  return out;
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
const TOP_KEYS = new Set([
  "databases", "database", "backup_dir", "log_file", "compression", "wait", "lock_wait", "retention",
  "before_backup", "after_backup", "hook_timeout", "file_mode",
  "metrics_file", "notify_command", "healthcheck_url", "s3", "offsite", "repository", "password_command", "max_unused",
]);

type Fail = (msg: string) => never;
type DatabaseKey = (db: DatabaseSettings, value: unknown, ctx: { key: string; baseDir: string; fail: Fail }) => void;

const hookCommand: (field: "beforeBackup" | "afterBackup") => DatabaseKey = (field) => (db, v, { key, fail }) => {
  // "" is allowed here: it switches the global hook off for this database.
  if (typeof v !== "string") fail(`'${key}' must be a shell command (a string)`);
  db[field] = v as string;
};

/** The keys of a `[[database]]` table: the one place per-database settings are parsed. */
const DATABASE_KEYS: Record<string, DatabaseKey> = {
  path: (db, v, { key, baseDir, fail }) => {
    if (typeof v !== "string" || v === "") fail(`'${key}' must be a non-empty string`);
    db.path = resolve(baseDir, v as string);
  },
  before_backup: hookCommand("beforeBackup"),
  after_backup: hookCommand("afterBackup"),
  hot: (db, v, { key, fail }) => {
    if (typeof v !== "boolean") fail(`'${key}' must be true or false`);
    db.hot = v as boolean;
  },
  encryption_key_file: (db, v, { key, baseDir, fail }) => {
    if (typeof v !== "string" || v === "") fail(`'${key}' must be a non-empty string`);
    if (db.encryptionKey) fail(`'${key}': set encryption_key_file or encryption_key_command, not both`);
    db.encryptionKey = { file: resolve(baseDir, v as string) };
  },
  encryption_key_command: (db, v, { key, fail }) => {
    if (typeof v !== "string" || v === "") fail(`'${key}' must be a shell command (a non-empty string)`);
    if (db.encryptionKey) fail(`'${key}': set encryption_key_file or encryption_key_command, not both`);
    db.encryptionKey = { command: v as string };
  },
};

function parseDatabaseTables(raw: unknown, baseDir: string, fail: Fail): DatabaseSettings[] {
  if (!Array.isArray(raw)) fail("'database' must be an array of tables ([[database]] with a path)");
  return (raw as unknown[]).map((t, i) => {
    const where = `database[${i + 1}]`;
    if (typeof t !== "object" || t === null || Array.isArray(t)) fail(`'${where}' must be a table`);
    const db = { path: "" } as DatabaseSettings;
    for (const [key, value] of Object.entries(t as Record<string, unknown>)) {
      const parse = Object.hasOwn(DATABASE_KEYS, key) ? DATABASE_KEYS[key]! : fail(`unknown key '${where}.${key}'${didYouMean(key, Object.keys(DATABASE_KEYS))}`);
      parse(db, value, { key: `${where}.${key}`, baseDir, fail });
    }
    if (!db.path) fail(`'${where}' needs a 'path'`);
    return db;
  });
}

/** The settings that apply to `path`: its [[database]] table over the global defaults. */
export function databaseSettings(config: Config, path: string): DatabaseSettings {
  const own = Object.hasOwn(config.database, path) ? config.database[path]! : { path };
  return { beforeBackup: config.beforeBackup, afterBackup: config.afterBackup, ...own };
}

/**
 * Loads `explicit` (an error if missing), else ./duckbak.toml if present, else an empty config
 * rooted at the working directory.
 */
export type ConfigSource = "flag" | "env" | "cwd" | "user" | "system";

/** Where discovery looks, in order, after --config and DUCKBAK_CONFIG (the first that exists wins). */
export function configSearchPath(cwd = process.cwd(), env: NodeJS.ProcessEnv = process.env): { file: string; source: ConfigSource }[] {
  const xdg = env.XDG_CONFIG_HOME && isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : join(env.HOME ?? homedir(), ".config");
  const system = process.platform === "win32" ? join(env.ProgramData ?? "C:\\ProgramData", "duckbak") : "/etc/duckbak";
  return [
    { file: resolve(cwd, CONFIG_FILE_NAME), source: "cwd" },
    { file: join(xdg, "duckbak", CONFIG_FILE_NAME), source: "user" },
    { file: join(system, CONFIG_FILE_NAME), source: "system" },
  ];
}

/**
 * The config: `explicit` (--config), else $DUCKBAK_CONFIG (either an error if missing), else the
 * first of ./duckbak.toml, $XDG_CONFIG_HOME/duckbak/duckbak.toml (~/.config/...),
 * /etc/duckbak/duckbak.toml; else an empty config rooted at the working directory.
 */
export function loadConfig(explicit?: string, cwd = process.cwd(), env: NodeJS.ProcessEnv = process.env): Config {
  const named = explicit ? { file: resolve(cwd, explicit), source: "flag" as const } : env.DUCKBAK_CONFIG ? { file: resolve(cwd, env.DUCKBAK_CONFIG), source: "env" as const } : null;
  if (named && !existsSync(named.file)) throw new ConfigError(named.file, `config file not found${named.source === "env" ? " (DUCKBAK_CONFIG)" : ""}`);
  const found = named ?? configSearchPath(cwd, env).find((c) => existsSync(c.file));
  if (!found) return { file: null, source: null, baseDir: cwd, database: {}, retention: {} };
  const file = found.file;
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
  return { ...parseConfig(raw as Record<string, unknown>, file), source: found.source };
}

/** Validates parsed TOML; pure apart from path resolution. */
export function parseConfig(raw: Record<string, unknown>, file: string): Config {
  const baseDir = dirname(file);
  const cfg: Config = { file, baseDir, database: {}, retention: {} };
  const fail: Fail = (msg: string): never => {
    throw new ConfigError(file, msg);
  };
  for (const key of Object.keys(raw)) if (!TOP_KEYS.has(key)) fail(`unknown key '${key}'${didYouMean(key, [...TOP_KEYS, ...Object.keys(RETENTION_KEYS).map((k) => `retention.${k}`)])}`);

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
  if (raw.database !== undefined) {
    for (const db of parseDatabaseTables(raw.database, baseDir, fail)) {
      if (Object.hasOwn(cfg.database, db.path)) fail(`database ${db.path} has two [[database]] tables`);
      cfg.database[db.path] = db;
      cfg.databases ??= [];
      if (!cfg.databases.includes(db.path)) cfg.databases.push(db.path);
    }
  }
  for (const [key, field] of [["before_backup", "beforeBackup"], ["after_backup", "afterBackup"]] as const) {
    const cmd = str(key);
    if (cmd !== undefined) cfg[field] = cmd;
  }
  const backupDir = str("backup_dir");
  if (backupDir) cfg.backupDir = resolve(baseDir, backupDir);
  const logFile = str("log_file");
  if (logFile) cfg.logFile = resolve(baseDir, logFile);
  const metricsFile = str("metrics_file");
  if (metricsFile) cfg.metricsFile = resolve(baseDir, metricsFile);
  cfg.notifyCommand = str("notify_command");
  const healthcheckUrl = str("healthcheck_url");
  if (healthcheckUrl !== undefined) {
    if (!URL.canParse(healthcheckUrl) || !/^https?:$/.test(new URL(healthcheckUrl).protocol))
      fail(`'healthcheck_url' must be an http:// or https:// URL, not '${healthcheckUrl}'`);
    cfg.healthcheckUrl = healthcheckUrl.replace(/\/+$/, "");
  }
  const repository = str("repository");
  // A folder path is relative to the config file; a URL-style location (s3://) is kept as written.
  if (repository) cfg.repository = /^[a-z][a-z0-9+.-]*:\/\//i.test(repository) ? repository : resolve(baseDir, repository);
  cfg.passwordCommand = str("password_command");
  if (raw.max_unused !== undefined) {
    const f = typeof raw.max_unused === "number" || typeof raw.max_unused === "string" ? maxUnusedFraction(raw.max_unused) : null;
    if (f === null) fail(`'max_unused' must be a percentage from 0% to 100% like "10%", not ${JSON.stringify(raw.max_unused)}`);
    cfg.maxUnused = f!;
  }
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
  cfg.hookTimeoutSeconds = seconds("hook_timeout");
  if (raw.file_mode !== undefined) {
    // "0640" as a string, or TOML's octal integer 0o640.
    const v = raw.file_mode;
    const mode = typeof v === "string" && /^0?[0-7]{3}$/.test(v) ? parseInt(v, 8) : typeof v === "number" && Number.isInteger(v) ? v : -1;
    if (mode < 0 || mode > 0o666 || (mode & 0o111) !== 0 || (mode & 0o600) !== 0o600)
      fail(`'file_mode' must be an octal mode like "0600" or "0640" (owner read-write, no execute bits), not ${JSON.stringify(v)}`);
    cfg.fileMode = mode;
  }
  if (raw.s3 !== undefined) cfg.s3 = parseS3Table(raw.s3, baseDir, fail);
  const offsite = str("offsite");
  if (offsite) cfg.offsite = offsite.startsWith("s3://") ? offsite : resolve(baseDir, offsite);
  if (raw.retention !== undefined) {
    const r = raw.retention;
    if (typeof r !== "object" || r === null || Array.isArray(r)) fail("'retention' must be a table");
    for (const [key, value] of Object.entries(r as Record<string, unknown>)) {
      const field = Object.hasOwn(RETENTION_KEYS, key) ? RETENTION_KEYS[key]! : fail(`unknown key 'retention.${key}'${didYouMean(key, Object.keys(RETENTION_KEYS))}`);
      if (field === "keepYearly" && value === "forever") cfg.retention.keepYearly = "forever";
      else if (typeof value === "number" && Number.isInteger(value) && value >= 0) cfg.retention[field] = value;
      else fail(`'retention.${key}' must be a whole number >= 0${field === "keepYearly" ? ' or "forever"' : ""}`);
    }
  }
  return cfg;
}
