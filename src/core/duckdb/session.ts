// Opening a database in this process for export, import and diff. Two rules from POSIX locks:
// the file is checked with fs only BEFORE DuckDB opens it (closing any descriptor of a locked file
// drops this process's lock), and the instance stays referenced until close (Bun would collect it
// and close it, dropping the lock).
import { open, stat } from "node:fs/promises";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { DatabaseLockedError, DatabaseNotFoundError, DuckbakError, NotADuckDBError, fsError } from "../errors.ts";
import { parseLockHolder } from "../snapshot.ts";
import { isLockError } from "./holder.ts";

const POLL_MS = 250;

export class DuckDBSession {
  private constructor(
    readonly path: string,
    readonly instance: DuckDBInstance,
    readonly con: DuckDBConnection,
  ) {}

  static async open(path: string, config: Record<string, string>): Promise<DuckDBSession> {
    const instance = await DuckDBInstance.create(path, {
      autoinstall_known_extensions: "false",
      autoload_known_extensions: "false",
      threads: "2",
      ...config,
    });
    try {
      return new DuckDBSession(path, instance, await instance.connect());
    } catch (err) {
      instance.closeSync();
      throw err;
    }
  }

  /** Rows as JSON-friendly objects (BIGINT as string, lists as arrays). */
  async rows<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]> {
    const reader = await this.con.runAndReadAll(sql, params as never);
    return reader.getRowObjectsJson() as T[];
  }

  async run(sql: string): Promise<void> {
    await this.con.run(sql);
  }

  private closed = false;

  /** Closes the connection and the instance (which releases the lock); safe to call again. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.con.closeSync();
    this.instance.closeSync();
  }
}

/** Exists, is a regular file, and carries DuckDB's magic; read before DuckDB opens it. */
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

export interface OpenOptions {
  readOnly: boolean;
  /** Seconds to wait while another process holds a conflicting lock. */
  waitSeconds?: number;
  /** What the lock error says was not done, e.g. "not imported into". */
  lockedConsequence: string;
  config?: Record<string, string>;
}

/** Opens an existing database, waiting for (then refusing) a conflicting lock like backup does. */
export async function openDatabase(path: string, opts: OpenOptions): Promise<DuckDBSession> {
  await checkDatabaseFile(path);
  const waitSeconds = opts.waitSeconds ?? 0;
  const deadline = Date.now() + waitSeconds * 1000;
  const config = { ...opts.config, access_mode: opts.readOnly ? "READ_ONLY" : "READ_WRITE" };
  for (;;) {
    try {
      return await DuckDBSession.open(path, config);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      if (!isLockError(msg)) throw new DuckbakError(`${path}: cannot open with DuckDB: ${duckdbMessage(err)}`, undefined, { cause: err });
      if (Date.now() >= deadline) throw new DatabaseLockedError(path, parseLockHolder(msg), waitSeconds, opts.lockedConsequence);
      await Bun.sleep(Math.min(POLL_MS, Math.max(0, deadline - Date.now())));
    }
  }
}

/** The first line of DuckDB's error text (the rest points into the SQL). */
export function duckdbMessage(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0]!.trim();
}
