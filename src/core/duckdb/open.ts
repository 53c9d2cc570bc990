// How duckbak opens databases, in one place: no extension downloads (hosts may have no network),
// DuckDB's lock errors recognised, and the file checked with fs only BEFORE DuckDB opens it
// (closing any descriptor of a file drops the locks this process holds on it).
import { open, stat } from "node:fs/promises";
import type { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { DatabaseNotFoundError, DuckbakError, ExitCode, NotADuckDBError, fsError } from "../errors.ts";
import { BLOCKS_START, NotADuckDBFileError, parseDuckDBHeader, type DuckDBFileHeader } from "./header.ts";
import { quoteIdent, quoteLiteral } from "./sql.ts";

const DUCKDB_OPTIONS: Record<string, string> = {
  autoinstall_known_extensions: "false",
  autoload_known_extensions: "false",
  threads: "2",
  // DuckDB's default is 80% of RAM; duckbak runs beside the application it backs up.
  memory_limit: "512MB",
};

/**
 * DuckDB is loaded on first use, so that commands which never open a database (list, cleanup,
 * status, the parent of a backup) start without its 70 MB library.
 */
export async function createInstance(path: string, options: Record<string, string> = {}): Promise<DuckDBInstance> {
  const { DuckDBInstance } = await import("@duckdb/node-api");
  return DuckDBInstance.create(path, { ...DUCKDB_OPTIONS, ...options });
}

/**
 * Readies DuckDB for an open that comes later (that open reports any failure): its library
 * written to its cache folder or checked there, then linked (~0.15 s of the main thread), and the
 * first instance's costs (~0.1 s) paid on an in-memory one, dropped at once.
 */
export function preloadDuckDB(): void {
  createInstance(":memory:").then(
    (instance) => instance.closeSync(),
    () => {},
  );
}

/** The DuckDB release embedded in duckbak, e.g. "v1.5.5" (loads DuckDB). */
export async function embeddedDuckDBVersion(): Promise<string> {
  const { version } = await import("@duckdb/node-api");
  return version();
}

/** A database opened by duckbak: directly, or attached with its key to an in-memory instance. */
export interface OpenedDatabase {
  readonly instance: DuckDBInstance;
  /** A connection whose default database is this one (`current_database()` names it). */
  connect(): Promise<DuckDBConnection>;
  closeSync(): void;
}

export interface OpenSettings {
  readOnly: boolean;
  /** DuckDB 1.4+ encryption key; the database is then ATTACHed, the only way DuckDB takes a key. */
  encryptionKey?: string | null;
  config?: Record<string, string>;
}

// The alias an encrypted database is attached under (current_database() in every query).
const ENCRYPTED_ALIAS = "duckbak_db";

/**
 * Opens a database. A read-only open (attached or not) takes DuckDB's shared fcntl lock on the
 * file; a read-write one the exclusive lock. Errors never contain the key.
 */
export async function openDuckDB(path: string, settings: OpenSettings): Promise<OpenedDatabase> {
  const mode = settings.readOnly ? "READ_ONLY" : "READ_WRITE";
  const key = settings.encryptionKey;
  if (!key) {
    const instance = await createInstance(path, { ...settings.config, access_mode: mode });
    return { instance, connect: () => instance.connect(), closeSync: () => instance.closeSync() };
  }
  const instance = await createInstance(":memory:", settings.config);
  try {
    const con = await instance.connect();
    try {
      await con.run(`ATTACH ${quoteLiteral(path)} AS ${quoteIdent(ENCRYPTED_ALIAS)} (ENCRYPTION_KEY ${quoteLiteral(key)}, ${mode})`);
    } finally {
      con.closeSync();
    }
  } catch (err) {
    instance.closeSync();
    const message = (err instanceof Error ? err.message : String(err)).replaceAll(key, "***");
    throw new Error(message);
  }
  return {
    instance,
    async connect() {
      const con = await instance.connect();
      await con.run(`USE ${quoteIdent(ENCRYPTED_ALIAS)}`);
      return con;
    },
    closeSync: () => instance.closeSync(),
  };
}

export function openReadOnly(path: string, encryptionKey?: string | null, options: Record<string, string> = {}): Promise<OpenedDatabase> {
  return openDuckDB(path, { readOnly: true, encryptionKey, config: options });
}

/**
 * For reading a whole database once (verify) or folding a WAL into it (restore): a small buffer
 * pool (DuckDB spills to disk beyond it) keeps the command within 250 MiB whatever the size.
 */
export const BOUNDED_MEMORY: Record<string, string> = { memory_limit: "96MB" };

/** A statement failed on the database at `path` (disk full, a constraint); `detail` is DuckDB's first line. */
export class DuckDBQueryError extends DuckbakError {
  constructor(
    readonly path: string,
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${path}: ${detail}`, ExitCode.ERROR, options);
  }
}

/** The first line of DuckDB's error text (the rest points into the SQL). */
export function duckdbMessage(err: unknown): string {
  if (err instanceof DuckDBQueryError) return err.detail;
  return (err instanceof Error ? err.message : String(err)).split("\n")[0]!.trim();
}

/*
 * DuckDB's "another process has this database" errors, per OS (src/common/local_file_system.cpp, v1.5.5):
 * - POSIX: an fcntl lock (shared for read_only, exclusive for a writer); a conflict reads
 *   `Could not set lock on file "<path>": Conflicting lock is held in <program> (PID <n>) [by user <u>]`.
 * - Windows: no fcntl and no LockFileEx; the lock is the share mode of CreateFileW (read_only opens
 *   with FILE_SHARE_READ, a writer with no sharing; both add FILE_SHARE_DELETE). A conflict is
 *   ERROR_SHARING_VIOLATION, reported as `Cannot open file "<path>": <FormatMessage text>` plus,
 *   when the Restart Manager names the holders, `\nFile is already open in \n<program> (PID <n>)`
 *   per process. The system text is in the user's language; the English texts of
 *   ERROR_SHARING_VIOLATION and ERROR_LOCK_VIOLATION are recognised, and DuckDB's own
 *   "File is already open in" in any language.
 * So on Windows the snapshot holder's read_only open keeps writers out just as the shared fcntl
 * lock does, and duckbak's own reads of the file (which share read, write and delete) still work.
 */
const LOCK_PATTERNS = [
  /Could not set lock on file/i,
  /Cannot open file .*(being used by another process|another process has locked a portion of the file)/is,
  /Cannot open file .*File is already open in/is,
];

export function isLockError(message: string): boolean {
  return LOCK_PATTERNS.some((p) => p.test(message));
}

/** DuckDB refused the key, or needs one: not a property of the file's format. */
export function isKeyError(message: string): boolean {
  return /encrypt/i.test(message) && /key/i.test(message);
}

/**
 * The holder a lock error names: POSIX `Conflicting lock is held in /usr/bin/python3 (PID 1234)`,
 * Windows `File is already open in \nC:\Program Files\Python\python.exe (PID 1234)` (the first listed).
 */
export function parseLockHolder(message: string): { pid?: number; program?: string } {
  const m = /(?:Conflicting lock is held in|File is already open in)\s+(?:(.*?) \()?PID (\d+)\)?/.exec(message);
  return m ? { ...(m[1] ? { program: m[1] } : {}), pid: Number(m[2]) } : {};
}

/** Whether an fs open failed because another program opened the file without sharing it (Windows' lock). */
export function openRefusedBySharing(platform: string, code: string | undefined): boolean {
  return platform === "win32" && code === "EBUSY";
}

/** Exists, is a regular file, and carries DuckDB's magic. */
export async function checkDatabaseFile(path: string): Promise<void> {
  const st = await stat(path).catch((err) => {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new DatabaseNotFoundError(path);
    throw fsError(err, path, "stat");
  });
  if (!st.isFile()) throw new DuckbakError(`${path}: not a regular file`);
  const handle = await open(path, "r").catch((err) => {
    // Windows: a writer opened it without sharing (see above). Not checkable now; DuckDB's own open
    // then reports the lock, which --wait retries.
    if (openRefusedBySharing(process.platform, (err as NodeJS.ErrnoException).code)) return null;
    throw fsError(err, path, "open");
  });
  if (!handle) return;
  try {
    const magic = new Uint8Array(4);
    await handle.read(magic, 0, 4, 8);
    if (new TextDecoder().decode(magic) !== "DUCK") throw new NotADuckDBError(path);
  } finally {
    await handle.close();
  }
}

/** The file header and both database headers, parsed; a file that is not DuckDB's says so, naming it. */
export async function readDuckDBHeader(path: string): Promise<DuckDBFileHeader> {
  const handle = await open(path, "r").catch((err) => {
    throw fsError(err, path, "open");
  });
  const bytes = new Uint8Array(BLOCKS_START);
  let read: number;
  try {
    ({ bytesRead: read } = await handle.read(bytes, 0, BLOCKS_START, 0));
  } finally {
    await handle.close();
  }
  try {
    return parseDuckDBHeader(bytes.subarray(0, read));
  } catch (err) {
    if (err instanceof NotADuckDBFileError) throw new NotADuckDBError(path, err.message);
    throw err;
  }
}
