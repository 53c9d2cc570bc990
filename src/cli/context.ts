import { readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { databaseSettings, loadConfig, DEFAULT_BACKUP_DIR, DEFAULT_DATA_DIR, DEFAULT_LOG_FILE, type Config } from "../core/config.ts";
import { UsageError } from "../core/errors.ts";
import { didYouMean } from "../core/suggest.ts";
import { umaskFor } from "../core/fsutil.ts";
import { COMPRESSIONS, type Compression } from "../core/naming.ts";
import { keyLookup, type KeyLookup, type KeySource } from "../core/keys.ts";

export interface CommonFlags {
  config?: string;
  backupDir?: string;
  json?: boolean;
  encryptionKeyFile?: string;
}

export const ENCRYPTION_KEY_OPTION = [
  "--encryption-key-file <file>",
  "Key of encrypted databases (DuckDB 1.4+) that have none in duckbak.toml; the key is never printed",
] as const;

/** Keys of encrypted databases: [[database]] tables of the config, else --encryption-key-file. */
export function keysFor(flags: CommonFlags, config: Config): KeyLookup {
  const perDatabase = new Map<string, KeySource>();
  for (const [path, s] of Object.entries(config.database)) if (s.encryptionKey) perDatabase.set(path, s.encryptionKey);
  return keyLookup(perDatabase, flags.encryptionKeyFile === undefined ? undefined : { file: resolve(String(flags.encryptionKeyFile)) });
}

export interface Context {
  config: Config;
  backupDir: string;
}

/** Flags override duckbak.toml, which overrides the defaults (relative to the config's folder). */
export function loadContext(flags: CommonFlags): Context {
  const config = loadConfig(flags.config);
  if (config.fileMode !== undefined) process.umask(umaskFor(config.fileMode));
  const backupDir = flags.backupDir ? resolve(flags.backupDir) : (config.backupDir ?? resolve(config.baseDir, DEFAULT_BACKUP_DIR));
  return { config, backupDir };
}

/** --log-file, else log_file from the config, else data/backup.log beside the config. */
export function resolveLogFile(flag: unknown, config: Config): string {
  return flag !== undefined ? resolve(String(flag)) : (config.logFile ?? resolve(config.baseDir, DEFAULT_LOG_FILE));
}

/** Databases named on the command line, else the config's, else every *.duckdb in ./data. */
export function resolveDatabases(args: string[], config: Config): string[] {
  if (args.length > 0) return args.map((a) => resolve(a));
  if (config.databases?.length) return config.databases;
  const dataDir = resolve(config.baseDir, DEFAULT_DATA_DIR);
  let names: string[] = [];
  try {
    names = readdirSync(dataDir).filter((n) => n.endsWith(".duckdb")).sort();
  } catch {
    // no ./data folder: handled below
  }
  if (names.length === 0)
    throw new UsageError(`no databases given: name them, list them under 'databases' in duckbak.toml, or put *.duckdb files in ${dataDir}`);
  return names.map((n) => join(dataDir, n));
}

/** The databases `backup` would take; none when nothing is configured. */
export function configuredDatabases(config: Config): string[] {
  try {
    return resolveDatabases([], config);
  } catch (err) {
    if (err instanceof UsageError) return [];
    throw err;
  }
}

export function parseCompression(value: unknown, noCompress: boolean, fallback: Compression | undefined): Compression {
  if (noCompress) return "none";
  if (value === undefined) return fallback ?? "gzip";
  // "none" as in the config's compression = "none": the same as --no-compress.
  if (!COMPRESSIONS.includes(value as Compression))
    throw new UsageError(`--compression must be gzip, zstd or none, not '${value}'${didYouMean(String(value), COMPRESSIONS)}`);
  return value as Compression;
}

export function parseSeconds(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || value === true || value === "") throw new UsageError(`invalid value for ${name}: ${value} (must be a number of seconds >= 0)`);
  return n;
}

/** cac gives a string for one value and an array for repeated options; we want a list either way. */
export function asList(value: unknown): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
}

/** Each database's settings (hooks, hot) from the config, for createBackup and runDaily; `hot` (--hot) sets hot for all. */
export function settingsFrom(config: Config, hot = false) {
  return (path: string) => {
    const s = databaseSettings(config, path);
    return hot ? { ...s, hot: true } : s;
  };
}

export function parseCount(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || value === true || value === "") throw new UsageError(`invalid value for ${name}: ${value} (must be a whole number >= 0)`);
  return n;
}
