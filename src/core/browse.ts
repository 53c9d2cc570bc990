// Looking into a backup (an archive or a repository snapshot) without restoring it: `sql` runs a
// read-only query on an extracted private copy, and `restore --table` brings one table back into a
// live database. An encrypted database's copy is attached with its key (found by the database's
// original path, as restore and verify do); the key goes into no message.
import { basename } from "node:path";
import { DuckbakError, UsageError } from "./errors.ts";
import { EncryptionKeyError, NO_KEYS, keyForFile, refusedKeyError, type KeyLookup } from "./keys.ts";
import { restoreName, selectDatabases, withExtractedBackup } from "./restore.ts";
import { readArchiveManifest } from "./archive/reader.ts";
import { DuckDBSession, openDatabase } from "./duckdb/session.ts";
import { duckdbMessage, isKeyError } from "./duckdb/open.ts";
import { quoteIdent, quoteLiteral } from "./duckdb/sql.ts";
import type { ArchiveRef } from "./list.ts";
import type { DatabaseFacts } from "./manifest.ts";
import type { ProgressSink } from "./progress.ts";

export interface ExtractedDatabase {
  name: string;
  originalPath: string;
  /** Its extracted copy in a private temporary folder. */
  path: string;
}

/** A backup to look into: an archive (archiveSource) or a repository snapshot (repo/extract.ts). */
export interface BackupSource {
  /** Its short name in messages: the archive's name, or "snapshot 1a2b3c4d". */
  name: string;
  /** Where it is, in errors: the archive's path, or the repository and snapshot. */
  label: string;
  manifest(): Promise<{ databases: DatabaseFacts[] }>;
  /** Extracts the databases `only` selects (checked) into a private temporary folder, runs `fn`, removes the folder. */
  extract<T>(fn: (dbs: ExtractedDatabase[]) => Promise<T>, opts: { only?: string[]; progress?: ProgressSink }): Promise<T>;
}

export function archiveSource(ref: ArchiveRef): BackupSource {
  return {
    name: ref.name,
    label: ref.path,
    manifest: () => readArchiveManifest(ref.path, ref.compression),
    extract: (fn, opts) => withExtractedBackup(ref, fn, opts),
  };
}

/** The name a database is attached under in `sql`: its file name without `.duckdb`, or the archive entry's. */
export function attachAlias(db: Pick<DatabaseFacts, "name" | "entry">, all: Pick<DatabaseFacts, "name" | "entry">[]): string {
  const stem = (n: string) => n.replace(/\.(duckdb|db|ddb)$/i, "");
  const taken = all.filter((d) => stem(d.name) === stem(db.name)).length > 1;
  return stem(taken ? db.entry : db.name);
}

/** `schema.table`, `table` (schema main), or a quoted name with a dot: `"a.b"`. */
export function parseTableName(text: string): { schema: string; name: string } {
  const m = /^(?:("(?:[^"]|"")+"|[^".]+)\.)?("(?:[^"]|"")+"|[^".]+)$/.exec(text.trim());
  if (!m) throw new UsageError(`--table '${text}': expected TABLE or SCHEMA.TABLE`);
  const unquote = (s: string) => (s.startsWith('"') ? s.slice(1, -1).replaceAll('""', '"') : s);
  return { schema: m[1] ? unquote(m[1]) : "main", name: unquote(m[2]!) };
}

export interface QueryResult {
  columns: string[];
  /** JSON-friendly values: BIGINT and DECIMAL as strings, lists as arrays. */
  rows: Record<string, unknown>[];
  /** Attach names of the databases, for the message when a name is not found. */
  databases: string[];
}

/**
 * Runs one query on the backup's databases, extracted into a private temporary folder (removed
 * afterwards). Each database is attached read-only under its alias; with one database (or --only)
 * it is also the default, so `SELECT * FROM trades` works. File access is switched off, so the
 * query cannot read or write anything outside those copies.
 */
export async function queryBackup(
  source: BackupSource,
  sql: string,
  opts: { only?: string[]; progress?: ProgressSink; keys?: KeyLookup } = {},
): Promise<QueryResult> {
  return source.extract(
    async (dbs) => {
      const s = await DuckDBSession.open(":memory:", {});
      try {
        const all = dbs.map((d) => ({ name: d.name, entry: basename(d.path) }));
        const aliases = all.map((d) => attachAlias(d, all));
        for (const [i, d] of dbs.entries())
          await attachCopy(s, d, aliases[i]!, opts.keys ?? NO_KEYS, source.name).catch((err) => {
            // The query may not need that database at all.
            if (err instanceof EncryptionKeyError && dbs.length > 1)
              throw new EncryptionKeyError(`${err.message}; --only ${others(dbs, d)} queries the others without it`);
            throw err;
          });
        if (dbs.length === 1) await s.run(`USE ${quoteIdent(aliases[0]!)}`);
        await s.run("SET enable_external_access = false");
        await s.run("SET lock_configuration = true");
        const reader = await s.con.runAndReadAll(sql).catch((err) => {
          throw new DuckbakError(`${source.name}: query failed: ${err instanceof Error ? err.message : String(err)} (databases: ${aliases.join(", ")})`);
        });
        return { columns: reader.columnNames(), rows: reader.getRowObjectsJson() as Record<string, unknown>[], databases: aliases };
      } finally {
        s.close();
      }
    },
    { only: opts.only, progress: opts.progress },
  );
}

const others = (dbs: ExtractedDatabase[], d: ExtractedDatabase) =>
  dbs
    .filter((x) => x !== d)
    .map((x) => x.name)
    .join(" --only ");

export interface TableRestoreOptions {
  table: string;
  /** The live database to put the table into (must exist). */
  into: string;
  /** Drop the live table of that name first (in the same transaction). */
  replace?: boolean;
  /** Which database of the backup holds the table, when several do. */
  only?: string[];
  waitSeconds?: number;
  progress?: ProgressSink;
  /** Keys of the backup's encrypted databases. */
  keys?: KeyLookup;
}

export interface TableRestoreResult {
  /** The archive's path, or the repository and snapshot. */
  archive: string;
  database: string;
  into: string;
  schema: string;
  table: string;
  rows: number;
  replaced: boolean;
}

/** The backup's database holding `table`, from the manifest's table lists. */
export function findTableDatabase(m: { databases: DatabaseFacts[] }, t: { schema: string; name: string }, only: string[] | undefined, archive: string): DatabaseFacts {
  const candidates = selectDatabases(m, only);
  const holding = candidates.filter((d) => d.tables.some((x) => x.schema === t.schema && x.name === t.name));
  const label = `${t.schema}.${t.name}`;
  if (holding.length === 0)
    throw new DuckbakError(`${archive}: no table ${label} in ${candidates.map(restoreName).join(", ") || "the backup"} (see duckbak ls)`, 10);
  if (holding.length > 1)
    throw new UsageError(`${label} is in several databases of the backup (${holding.map(restoreName).join(", ")}); choose one with --only`);
  return holding[0]!;
}

/**
 * Copies one table (definition and rows) from a backup into a live database in one transaction:
 * nothing changes unless all of it is in. The live database must not be open in a writer.
 */
export async function restoreTable(source: BackupSource, opts: TableRestoreOptions): Promise<TableRestoreResult> {
  const t = parseTableName(opts.table);
  const label = `${t.schema}.${t.name}`;
  const db = findTableDatabase(await source.manifest(), t, opts.only, source.label);
  const expected = db.tables.find((x) => x.schema === t.schema && x.name === t.name)!.rows;
  const notDone = `table ${label} not restored`;
  // Opened first: a locked, missing or encrypted target fails before the backup is extracted.
  const live = await openDatabase(opts.into, { readOnly: false, waitSeconds: opts.waitSeconds, lockedConsequence: notDone });
  try {
    const fail = (why: string): never => {
      throw new DuckbakError(`${opts.into}: ${why}; ${notDone}`);
    };
    const exists = async () =>
      (await live.rows(`SELECT 1 FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = ? AND table_name = ?`, [t.schema, t.name])).length > 0;
    if ((await exists()) && !opts.replace) fail(`table ${label} already exists (use --replace to drop it and put the backup's in its place)`);
    return await source.extract(
      async ([src]) => {
        const SRC = "__duckbak_backup";
        await attachCopy(live, src!, SRC, opts.keys ?? NO_KEYS, source.name);
        try {
          const [ddl] = await live.rows<{ sql: string }>(`SELECT sql FROM duckdb_tables() WHERE database_name = ? AND schema_name = ? AND table_name = ?`, [SRC, t.schema, t.name]);
          if (!ddl) fail(`the backup's ${db.name} has no table ${label}`);
          const name = `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;
          await live.run("BEGIN TRANSACTION");
          try {
            const replaced = await exists();
            if (replaced) await live.run(`DROP TABLE ${name}`);
            await live.run(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(t.schema)}`);
            // The table's own definition (constraints, defaults), created in its schema of the live database.
            await live.run(`USE ${quoteIdent(await currentDatabase(live))}.${quoteIdent(t.schema)}`);
            await live.run(ddl!.sql);
            const [ins] = await live.rows<{ Count: string }>(`INSERT INTO ${name} SELECT * FROM ${SRC}.${name}`);
            const rows = Number(ins!.Count);
            if (rows !== expected) fail(`the backup's ${label} gave ${rows} rows, its manifest says ${expected}`);
            await live.run("COMMIT");
            return { archive: source.label, database: db.name, into: opts.into, schema: t.schema, table: t.name, rows, replaced };
          } catch (err) {
            await live.run("ROLLBACK").catch(() => {});
            if (err instanceof DuckbakError && err.message.includes(notDone)) throw err;
            fail(err instanceof Error ? err.message : String(err));
            throw err;
          }
        } finally {
          await live.run(`DETACH ${SRC}`).catch(() => {});
        }
      },
      // Its original path: the one name no other database of the backup answers to.
      { only: [db.original_path], progress: opts.progress },
    );
  } finally {
    live.close();
  }
}

/**
 * Attaches a backup's extracted copy read-only under `alias`, with its key when it is encrypted.
 * Errors name the database (its original path), never the private copy or the key.
 */
async function attachCopy(s: DuckDBSession, db: ExtractedDatabase, alias: string, keys: KeyLookup, backup: string): Promise<void> {
  const key = await keyForFile(db.path, keys, db.originalPath);
  const options = key === null ? "READ_ONLY" : `READ_ONLY, ENCRYPTION_KEY ${quoteLiteral(key)}`;
  try {
    await s.con.run(`ATTACH ${quoteLiteral(db.path)} AS ${quoteIdent(alias)} (${options})`);
  } catch (err) {
    let detail = duckdbMessage(err).replaceAll(db.path, db.originalPath);
    if (key !== null) detail = detail.replaceAll(key, "***");
    if (isKeyError(detail)) throw refusedKeyError(db.originalPath, detail, backup);
    throw new DuckbakError(`${backup}: cannot attach its copy of ${db.originalPath}: ${detail}`);
  }
}

async function currentDatabase(s: DuckDBSession): Promise<string> {
  return (await s.rows<{ d: string }>("SELECT current_database() AS d"))[0]!.d;
}
