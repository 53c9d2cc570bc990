// diff: compares the databases in a backup with the current ones, table by table: tables added or
// dropped, columns added, dropped or retyped, row counts (the seed's "Current DB / Backup DB /
// Difference"), and whether the rows are the same. The backup's databases are extracted, checked,
// into a private temporary folder; the current ones are opened read-only, which keeps writers out
// while they are read (a database a writer holds is refused, or waited for).
import { basename, resolve } from "node:path";
import { DuckbakError, UsageError } from "./errors.ts";
import { readArchiveManifest } from "./archive/reader.ts";
import { withExtractedBackup } from "./restore.ts";
import type { ArchiveRef } from "./list.ts";
import type { DatabaseFacts } from "./manifest.ts";
import { quoteIdent } from "./duckdb/sql.ts";
import { DuckDBSession, openDatabase } from "./duckdb/session.ts";
import { NO_KEYS, keyForFile, type KeyLookup } from "./keys.ts";

export interface DiffOptions {
  /** Current databases to compare: each matches a backup database by original path or file name (or is the only one). */
  databases?: string[];
  /** Seconds to wait for a writer to release a current database. */
  waitSeconds?: number;
  /** Keys of encrypted databases, by original path (the current database's path when it differs). */
  keys?: KeyLookup;
}

export interface ColumnInfo {
  name: string;
  type: string;
}

export interface TableDiff {
  schema: string;
  name: string;
  /** "added": only in the current database; "dropped": only in the backup. */
  status: "same" | "added" | "dropped" | "changed";
  /** Column changes from the backup to the current table; null when the table is on one side only. */
  columns: { added: ColumnInfo[]; dropped: ColumnInfo[]; retyped: { name: string; backup: string; current: string }[]; reordered: boolean } | null;
  rows: { current: number | null; backup: number | null; difference: number | null };
  /** Whether the rows are the same as a multiset; null when the columns differ or the table is on one side only. */
  contents: "same" | "different" | null;
}

export type DatabaseDiff =
  | { name: string; originalPath: string; currentPath: string; ok: true; identical: boolean; tables: TableDiff[] }
  | { name: string; originalPath: string; currentPath: string; ok: false; error: DuckbakError };

export interface DiffResult {
  archive: string;
  name: string;
  databases: DatabaseDiff[];
  /** Every database compared, and no difference found. */
  identical: boolean;
}

interface TableState {
  schema: string;
  name: string;
  columns: ColumnInfo[];
  rows: number;
}

/** Pairs backup databases with current files: by original path, else file name, else the only one. */
export function pairDatabases(dbs: DatabaseFacts[], args: string[] | undefined, backupName: string): { db: DatabaseFacts; current: string }[] {
  if (!args?.length) return dbs.map((db) => ({ db, current: db.original_path }));
  return args.map((arg) => {
    const current = resolve(arg);
    let match = dbs.filter((d) => d.original_path === current);
    if (match.length === 0) match = dbs.filter((d) => d.name === basename(current));
    if (match.length === 0 && dbs.length === 1) match = dbs;
    if (match.length !== 1)
      throw new UsageError(
        `${arg}: ${match.length === 0 ? "matches no" : "matches more than one"} database in backup ${backupName} (it has ${dbs.map((d) => d.original_path).join(", ")})`,
      );
    return { db: match[0]!, current };
  });
}

export async function diffBackup(ref: ArchiveRef, opts: DiffOptions = {}): Promise<DiffResult> {
  const manifest = await readArchiveManifest(ref.path, ref.compression);
  const pairs = pairDatabases(manifest.databases, opts.databases, ref.name);
  const databases = await withExtractedBackup(
    ref,
    async (extracted) => {
      const out: DatabaseDiff[] = [];
      for (const { db, current } of pairs) {
        const copy = extracted.find((e) => e.originalPath === db.original_path)!;
        const base = { name: db.name, originalPath: db.original_path, currentPath: current };
        try {
          const tables = await compareDatabase(copy.path, db.original_path, current, opts);
          out.push({ ...base, ok: true, identical: tables.every((t) => t.status === "same"), tables });
        } catch (err) {
          if (!(err instanceof DuckbakError)) throw err;
          out.push({ ...base, ok: false, error: err });
        }
      }
      return out;
    },
    { only: [...new Set(pairs.map((p) => p.db.original_path))] },
  );
  return { archive: ref.path, name: ref.name, databases, identical: databases.every((d) => d.ok && d.identical) };
}

async function compareDatabase(backupCopy: string, originalPath: string, current: string, opts: DiffOptions): Promise<TableDiff[]> {
  const keys = opts.keys ?? NO_KEYS;
  // The current database's key, else the one configured for the backed-up path.
  const key = await keyForFile(backupCopy, async () => (await keys(current)) ?? (await keys(originalPath)), originalPath);
  const live = await openDatabase(current, { readOnly: true, waitSeconds: opts.waitSeconds, lockedConsequence: "not compared", keys });
  try {
    const old = await DuckDBSession.open(backupCopy, { access_mode: "READ_ONLY" }, key);
    try {
      return await compareTables(old, live);
    } finally {
      old.close();
    }
  } finally {
    live.close();
  }
}

async function readTables(s: DuckDBSession): Promise<Map<string, TableState>> {
  const tables = await s.rows<{ schema_name: string; table_name: string }>(
    "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() AND NOT internal AND NOT temporary ORDER BY schema_name, table_name",
  );
  const columns = await s.rows<{ schema_name: string; table_name: string; column_name: string; data_type: string }>(
    "SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() AND NOT internal ORDER BY column_index",
  );
  const out = new Map<string, TableState>();
  for (const t of tables) {
    const [count] = await s.rows<{ n: string }>(`SELECT count(*) AS n FROM ${quoteIdent(t.schema_name)}.${quoteIdent(t.table_name)}`);
    out.set(JSON.stringify([t.schema_name, t.table_name]), {
      schema: t.schema_name,
      name: t.table_name,
      columns: columns.filter((c) => c.schema_name === t.schema_name && c.table_name === t.table_name).map((c) => ({ name: c.column_name, type: c.data_type })),
      rows: Number(count!.n),
    });
  }
  return out;
}

/**
 * An order-independent fingerprint of a table's rows: the row count and the sum, as a 128-bit
 * integer that cannot overflow, of every row's 64-bit hash. A sum (unlike XOR) counts duplicate
 * rows, so a table that loses one of two identical rows, or gains a copy, changes the fingerprint.
 */
async function fingerprint(s: DuckDBSession, t: TableState, columns: ColumnInfo[]): Promise<string> {
  const cols = columns.map((c) => quoteIdent(c.name)).join(", ");
  const [r] = await s.rows<{ n: string; h: string | null }>(
    `SELECT count(*) AS n, CAST(sum(hash(${cols})) AS VARCHAR) AS h FROM ${quoteIdent(t.schema)}.${quoteIdent(t.name)}`,
  );
  return `${r!.n}:${r!.h ?? ""}`;
}

async function compareTables(backup: DuckDBSession, current: DuckDBSession): Promise<TableDiff[]> {
  const before = await readTables(backup);
  const now = await readTables(current);
  const keys = [...new Set([...before.keys(), ...now.keys()])].sort();
  const out: TableDiff[] = [];
  for (const key of keys) {
    const b = before.get(key);
    const c = now.get(key);
    const t = (b ?? c)!;
    const rows = { current: c?.rows ?? null, backup: b?.rows ?? null, difference: b && c ? c.rows - b.rows : null };
    if (!b || !c) {
      out.push({ schema: t.schema, name: t.name, status: b ? "dropped" : "added", columns: null, rows, contents: null });
      continue;
    }
    const columns = compareColumns(b.columns, c.columns);
    const schemaChanged = columns.added.length + columns.dropped.length + columns.retyped.length > 0 || columns.reordered;
    let contents: TableDiff["contents"] = null;
    if (columns.added.length + columns.dropped.length + columns.retyped.length === 0) {
      // Same columns (in whatever order): compare the rows, hashing the columns in one order on both sides.
      contents = b.rows !== c.rows || (await fingerprint(backup, b, b.columns)) !== (await fingerprint(current, c, b.columns)) ? "different" : "same";
    }
    const same = !schemaChanged && contents === "same";
    out.push({ schema: t.schema, name: t.name, status: same ? "same" : "changed", columns, rows, contents });
  }
  return out;
}

export function compareColumns(backup: ColumnInfo[], current: ColumnInfo[]): NonNullable<TableDiff["columns"]> {
  const inCurrent = new Map(current.map((c) => [c.name, c]));
  const inBackup = new Map(backup.map((c) => [c.name, c]));
  const retyped = backup
    .filter((c) => inCurrent.has(c.name) && inCurrent.get(c.name)!.type !== c.type)
    .map((c) => ({ name: c.name, backup: c.type, current: inCurrent.get(c.name)!.type }));
  const common = (cols: ColumnInfo[], other: Map<string, ColumnInfo>) => cols.filter((c) => other.has(c.name)).map((c) => c.name).join("\0");
  return {
    added: current.filter((c) => !inBackup.has(c.name)),
    dropped: backup.filter((c) => !inCurrent.has(c.name)),
    retyped,
    reordered: common(backup, inCurrent) !== common(current, inBackup),
  };
}
