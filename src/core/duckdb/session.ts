// Opening a database in this process for export, import and diff. Two rules from POSIX locks:
// the file is checked with fs only BEFORE DuckDB opens it (closing any descriptor of a locked file
// drops this process's lock), and the instance stays referenced until close (Bun would collect it
// and close it, dropping the lock).
import type { DuckDBConnection } from "@duckdb/node-api";
import { DatabaseLockedError, DuckbakError } from "../errors.ts";
import { checkDatabaseFile, DuckDBQueryError, duckdbMessage, isLockError, openDuckDB, parseLockHolder, readDuckDBHeader, type OpenedDatabase } from "./open.ts";
import { keyForFile, type KeyLookup } from "../keys.ts";
import { EMBEDDED_DUCKDB } from "./compat.ts";

const POLL_MS = 250;

export class DuckDBSession {
  private constructor(
    readonly path: string,
    readonly instance: OpenedDatabase,
    readonly con: DuckDBConnection,
  ) {}

  static async open(path: string, config: Record<string, string>, encryptionKey?: string | null): Promise<DuckDBSession> {
    const { access_mode, ...rest } = config;
    const instance = await openDuckDB(path, { readOnly: access_mode === "READ_ONLY", encryptionKey, config: rest });
    try {
      return new DuckDBSession(path, instance, await instance.connect());
    } catch (err) {
      instance.closeSync();
      throw err;
    }
  }

  /** Rows as JSON-friendly objects (BIGINT as string, lists as arrays). */
  async rows<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]> {
    try {
      const reader = await this.con.runAndReadAll(sql, params as never);
      return reader.getRowObjectsJson() as T[];
    } catch (err) {
      throw new DuckDBQueryError(this.path, duckdbMessage(err), { cause: err });
    }
  }

  /** Failures become one line naming the database (a full disk mid-COPY is not an internal error). */
  async run(sql: string): Promise<void> {
    try {
      await this.con.run(sql);
    } catch (err) {
      throw new DuckDBQueryError(this.path, duckdbMessage(err), { cause: err });
    }
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

export interface OpenOptions {
  readOnly: boolean;
  /** Seconds to wait while another process holds a conflicting lock. */
  waitSeconds?: number;
  /** What the lock error says was not done, e.g. "not imported into". */
  lockedConsequence: string;
  config?: Record<string, string>;
  /** Keys of encrypted databases. */
  keys?: KeyLookup;
}

/**
 * Opens an existing database, waiting for (then refusing) a conflicting lock like backup does. An
 * encrypted one opens read-only only: DuckDB writes encryption only with its httpfs extension's
 * OpenSSL (its built-in fallback is not secure for writing), and duckbak loads no extension.
 */
export async function openDatabase(path: string, opts: OpenOptions): Promise<DuckDBSession> {
  await checkDatabaseFile(path);
  if (!opts.readOnly && (await readDuckDBHeader(path)).encrypted)
    throw new DuckbakError(
      `${path}: the database is encrypted, and duckbak reads encrypted databases but does not write them (DuckDB needs its httpfs extension for that, which duckbak does not load); ${opts.lockedConsequence}`,
    );
  const key = await keyForFile(path, opts.keys);
  const waitSeconds = opts.waitSeconds ?? 0;
  const deadline = Date.now() + waitSeconds * 1000;
  const config = { ...opts.config, access_mode: opts.readOnly ? "READ_ONLY" : "READ_WRITE" };
  for (;;) {
    try {
      return await DuckDBSession.open(path, config, key);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      if (!isLockError(msg))
        throw new DuckbakError(`${path}: cannot open with DuckDB ${EMBEDDED_DUCKDB.version} (the one in duckbak): ${duckdbMessage(err)}`, undefined, { cause: err });
      if (Date.now() >= deadline) throw new DatabaseLockedError(path, parseLockHolder(msg), waitSeconds, opts.lockedConsequence);
      await Bun.sleep(Math.min(POLL_MS, Math.max(0, deadline - Date.now())));
    }
  }
}
