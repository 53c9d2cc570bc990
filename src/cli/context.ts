import { existsSync, readdirSync } from "node:fs";
import { basename, join, resolve, sep } from "node:path";
import { configSearchPath, CONFIG_FILE_NAME, databaseSettings, loadConfig, DEFAULT_BACKUP_DIR, DEFAULT_DATA_DIR, DEFAULT_LOG_FILE, type Config } from "../core/config.ts";
import { UsageError } from "../core/errors.ts";
import { printNote } from "./output.ts";
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
export function loadContext(flags: CommonFlags, opts: { backupFolder?: boolean } = {}): Context {
  const config = loadConfig(flags.config);
  if (config.fileMode !== undefined) process.umask(umaskFor(config.fileMode));
  const backupDir = flags.backupDir ? resolve(flags.backupDir) : (config.backupDir ?? resolve(config.baseDir, DEFAULT_BACKUP_DIR));
  // Not for repository commands: they act on the repository, not on the backup folder.
  const repository = (flags as { repo?: unknown }).repo !== undefined || process.env.DUCKBAK_REPOSITORY || config.repository;
  if (!flags.backupDir && !repository && opts.backupFolder !== false) announceConfig(config, backupDir);
  return { config, backupDir };
}

/**
 * Says which config a command uses when it is not where the user is (found in ~/.config or /etc),
 * and when there is none and neither the default backup folder nor ./data exist: never silently
 * the wrong place. On stderr, so --json stays one document.
 */
let announced = false;
function announceConfig(config: Config, backupDir: string): void {
  if (announced) return;
  announced = true;
  if (config.source === "user" || config.source === "system") printNote(`using the config ${config.file} (no ${CONFIG_FILE_NAME} here)`);
  // No config, no backup folder and no data folder: not the project folder the user thinks.
  else if (config.source === null && !existsSync(backupDir) && !existsSync(resolve(config.baseDir, DEFAULT_DATA_DIR)))
    printNote(
      `no config found (looked for ${configSearchPath().map((c) => c.file).join(", ")}; --config, DUCKBAK_CONFIG); ` +
        `defaults apply and the backup folder ${backupDir} does not exist: run 'duckbak init' here, or pass --config or --backup-dir`,
    );
}

/** --log-file, else log_file from the config, else data/backup.log beside the config. */
export function resolveLogFile(flag: unknown, config: Config): string {
  return flag !== undefined ? resolve(String(flag)) : (config.logFile ?? resolve(config.baseDir, DEFAULT_LOG_FILE));
}

const GLOB_CHARS = /[*?[{]/;
/** Files a glob may match that are never databases of their own: WAL, restore's .bak copies, temporaries. */
const NOT_A_DATABASE = /(\.wal|\.bak\.[^/]*|\.tmp)$|^\.duckbak-tmp\./;

/**
 * The files a database entry names: itself, or for a glob (`data/*.duckdb`) the files it matches,
 * sorted; a glob that matches nothing is an error naming it. `where` says where the entry came from.
 */
export function expandDatabaseGlob(pattern: string, where: string): string[] {
  const abs = resolve(pattern);
  if (!GLOB_CHARS.test(abs)) return [abs];
  const parts = abs.split(sep);
  const firstGlob = parts.findIndex((p) => GLOB_CHARS.test(p));
  const root = parts.slice(0, firstGlob).join(sep) || sep;
  const rest = parts.slice(firstGlob).join("/");
  const matches = (existsSync(root) ? [...new Bun.Glob(rest).scanSync({ cwd: root, onlyFiles: true, dot: false })] : [])
    .filter((m) => !NOT_A_DATABASE.test(basename(m)))
    .map((m) => join(root, m))
    .sort();
  if (matches.length === 0) throw new UsageError(`${where}: '${pattern}' matches no file`);
  return matches;
}

/**
 * Databases named on the command line, else the config's, else every *.duckdb in ./data. Globs
 * are expanded (a file they match that is not a DuckDB database fails on its own, not the others).
 */
export function resolveDatabases(args: string[], config: Config): string[] {
  if (args.length > 0) return unique(args.flatMap((a) => expandDatabaseGlob(a, "database argument")));
  if (config.databases?.length) return unique(config.databases.flatMap((d) => expandDatabaseGlob(d, `${config.file}: databases`)));
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

const unique = (paths: string[]) => [...new Set(paths)];

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
