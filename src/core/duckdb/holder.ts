// The snapshot holder: a short-lived child process that opens one database read-only, which takes
// DuckDB's shared (fcntl) read lock, reports what the parent needs for the manifest, and keeps
// the lock until its stdin closes. It runs in its own process because POSIX drops a process's
// locks when it closes ANY descriptor of the file: the parent, which reads the file to copy it,
// must not be the lock holder.
import { closeSync } from "node:fs";
import { quoteIdent } from "./sql.ts";
import { duckdbMessage, embeddedDuckDBVersion, isKeyError, isLockError, openReadOnly, type OpenedDatabase } from "./open.ts";
import { rawLockSupported, takeReadLock } from "../../platform/file-lock.ts";

export interface HolderTable {
  schema: string;
  name: string;
  rows: number;
}

export type HolderResult =
  /** `rawReason`: DuckDB could not open the file (why); the lock is an fcntl lock taken without it. */
  | { path: string; ok: true; readerVersion: string; tables: HolderTable[]; rawReason?: string }
  | { path: string; ok: false; error: string; locked: boolean; embedded: string };

export const HOLDER_COMMAND = "__snapshot-holder";
/** The same holder taking the locks only (see lockOne). */
export const LOCK_HOLDER_COMMAND = "__lock-holder";
/** Hidden command: opens a copy read-only, describes it (a hot copy: reads all of it), prints one HolderResult. */
export const COPY_CHECK_COMMAND = "__check-copy";
const POLL_MS = 250;

// Module scope keeps the instances reachable: a collected DuckDBInstance closes and drops its lock.
const held: OpenedDatabase[] = [];
// Descriptors carrying raw fcntl locks: closing one releases its lock.
const rawLocks: number[] = [];

/** The DuckDB version and each table's row count; `readAll` decodes every column of every row too. */
export async function describeDatabase(db: OpenedDatabase, readAll = false): Promise<{ readerVersion: string; tables: HolderTable[] }> {
  const con = await db.connect();
  try {
    const version = String((await con.runAndReadAll("SELECT version()")).getRows()[0]![0]);
    const list = (
      await con.runAndReadAll(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() AND NOT temporary ORDER BY schema_name, table_name",
      )
    ).getRows();
    const tables: HolderTable[] = [];
    for (const [schema, name] of list) {
      const table = `${quoteIdent(String(schema))}.${quoteIdent(String(name))}`;
      // sum(hash(COLUMNS(*))) makes DuckDB read and decode every column of every row.
      const rows = (await con.runAndReadAll(`SELECT count(*)${readAll ? ", sum(hash(COLUMNS(*)))" : ""} FROM ${table}`)).getRows();
      tables.push({ schema: String(schema), name: String(name), rows: Number(rows[0]![0]) });
    }
    return { readerVersion: version, tables };
  } finally {
    con.closeSync();
  }
}

interface OpenOptions {
  key?: string;
  readAll?: boolean;
  /** Open only (for the lock): no version, no row counts. */
  lockOnly?: boolean;
  /** A file DuckDB cannot open (a newer or older format, a WAL it cannot replay) is locked without it. */
  rawFallback?: boolean;
}

async function openOne(path: string, opts: OpenOptions = {}): Promise<HolderResult> {
  try {
    const instance = await openReadOnly(path, opts.key);
    held.push(instance);
    if (opts.lockOnly) return { path, ok: true, readerVersion: "", tables: [] };
    return { path, ok: true, ...(await describeDatabase(instance, opts.readAll)) };
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    const embedded = await embeddedDuckDBVersion();
    if (!opts.rawFallback || isLockError(error) || isKeyError(error)) return { path, ok: false, error, locked: isLockError(error), embedded };
    // The same lock, taken without DuckDB, still keeps writers out for a consistent copy of its bytes.
    const raw = await takeReadLock(path);
    if (!raw.ok) return { path, ok: false, error: raw.locked ? raw.error : `${duckdbMessage(error)} (and ${raw.error})`, locked: raw.locked, embedded };
    rawLocks.push(raw.fd);
    return { path, ok: true, readerVersion: embedded, tables: [], rawReason: duckdbMessage(error) };
  }
}

/** The first line on stdin, where keys travel (never in argv, which `ps` shows); null when stdin ends first. */
async function firstLine(stdin: { read(): Promise<{ done: boolean; value?: Uint8Array }> }): Promise<string | null> {
  let text = "";
  const decoder = new TextDecoder();
  while (!text.includes("\n")) {
    const { done, value } = await stdin.read();
    if (done) return null;
    text += decoder.decode(value, { stream: true });
  }
  return text.slice(0, text.indexOf("\n"));
}

/**
 * The lock alone, for a copy described afterwards (between hooks, where every moment is the
 * application's pause): the fcntl lock without loading DuckDB where that is implemented, else a
 * DuckDB open without reading anything.
 */
async function lockOne(path: string, key: string | undefined): Promise<HolderResult> {
  if (rawLockSupported() !== null) return openOne(path, { key, lockOnly: true, rawFallback: true });
  const raw = await takeReadLock(path);
  if (!raw.ok) return { path, ok: false, error: raw.error, locked: raw.locked, embedded: "" };
  rawLocks.push(raw.fd);
  return { path, ok: true, readerVersion: "", tables: [] };
}

/**
 * Entry point of the hidden CLI command: takes every database's lock (retrying the locked ones
 * until `waitMs` has passed), prints one JSON line with a result per database, then holds the
 * locks until stdin ends. One process serves a whole backup, so all databases in an archive are
 * captured at one point in time. `lockOnly`: take the locks, report nothing about the contents
 * (the caller describes its copy later: see lockOne).
 */
export async function runSnapshotHolder(paths: string[], waitMs: number, lockOnly = false): Promise<number> {
  const deadline = Date.now() + waitMs;
  // The first line on stdin maps paths to encryption keys.
  const stdin = Bun.stdin.stream().getReader();
  const first = await firstLine(stdin);
  if (first === null) return 0;
  const keys = JSON.parse(first) as Record<string, string>;
  const open = (path: string) => (lockOnly ? lockOne(path, keys[path]) : openOne(path, { key: keys[path], rawFallback: true }));
  const results = await Promise.all(paths.map(open));
  for (;;) {
    const locked = results.map((r, i) => (!r.ok && r.locked ? i : -1)).filter((i) => i >= 0);
    if (locked.length === 0 || Date.now() >= deadline) break;
    await Bun.sleep(Math.min(POLL_MS, deadline - Date.now()));
    for (const i of locked) results[i] = await open(paths[i]!);
  }
  process.stdout.write(JSON.stringify(results) + "\n");
  // Nothing more is expected on stdin; its end (the parent finished, or died) releases the locks.
  while (!(await stdin.read()).done);
  for (const instance of held.splice(0)) instance.closeSync();
  for (const fd of rawLocks.splice(0)) closeSync(fd);
  return 0;
}

/**
 * Entry point of COPY_CHECK_COMMAND: `hot` (a hot copy: every column of every table read) or
 * `describe` (a copy taken under the lock: row counts, and the raw-lock fallback of the holder for
 * a file DuckDB cannot open). A process of its own, so that a copy that crashes DuckDB fails the
 * check instead of the backup. The key of an encrypted copy comes on stdin, never in argv.
 */
export async function runCopyCheck(mode: string, path: string): Promise<number> {
  const key = (JSON.parse((await firstLine(Bun.stdin.stream().getReader())) || "{}") as { key?: string }).key;
  const result = await openOne(path, mode === "hot" ? { key, readAll: true } : { key, rawFallback: true });
  for (const instance of held.splice(0)) instance.closeSync();
  process.stdout.write(JSON.stringify(result) + "\n");
  return 0;
}
