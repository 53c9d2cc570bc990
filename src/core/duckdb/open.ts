// How duckbak opens databases, in one place: no extension downloads (hosts may have no network),
// DuckDB's lock errors recognised, and the file checked with fs only BEFORE DuckDB opens it
// (closing any descriptor of a file drops the locks this process holds on it).
import { open, stat } from "node:fs/promises";
import type { DuckDBInstance } from "@duckdb/node-api";
import { DatabaseNotFoundError, DuckbakError, NotADuckDBError, fsError } from "../errors.ts";

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

export function openReadOnly(path: string): Promise<DuckDBInstance> {
  return createInstance(path, { access_mode: "READ_ONLY" });
}

export function isLockError(message: string): boolean {
  return /Could not set lock on file/i.test(message);
}

/** Parses DuckDB's lock error: `Conflicting lock is held in /usr/bin/python3 (PID 1234)`. */
export function parseLockHolder(message: string): { pid?: number; program?: string } {
  const m = /Conflicting lock is held in (.*?) \(PID (\d+)\)/.exec(message);
  return m ? { program: m[1], pid: Number(m[2]) } : {};
}

/** Exists, is a regular file, and carries DuckDB's magic. */
export async function checkDatabaseFile(path: string): Promise<void> {
  const st = await stat(path).catch((err) => {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new DatabaseNotFoundError(path);
    throw fsError(err, path, "stat");
  });
  if (!st.isFile()) throw new DuckbakError(`${path}: not a regular file`);
  const handle = await open(path, "r").catch((err) => {
    throw fsError(err, path, "open");
  });
  try {
    const magic = new Uint8Array(4);
    await handle.read(magic, 0, 4, 8);
    if (new TextDecoder().decode(magic) !== "DUCK") throw new NotADuckDBError(path);
  } finally {
    await handle.close();
  }
}
