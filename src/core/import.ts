// import: rebuilds a new database from an export, or appends an (incremental) export to an
// existing one. Every file is checked against the manifest's sha256 before anything is loaded, and
// all of the loading is one transaction: a failure leaves no new database, or the existing one as
// it was. Each import is recorded in the target's `_duckbak_imports` table, and an export that is
// recorded there already is refused, so an incremental export appended twice does not double rows.
import type { ProgressSink } from "./progress.ts";
import { mkdir, open, readFile, rm, stat } from "node:fs/promises";
import { existsSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { DuckbakError, ExitCode, fsError } from "./errors.ts";
import { fsyncDir, moveNoClobber, removeStaleTemporaries, tempPath } from "./fsutil.ts";
import { quoteIdent } from "./duckdb/sql.ts";
import { splitStatements } from "./duckdb/sqltext.ts";
import { DuckDBSession, openDatabase } from "./duckdb/session.ts";
import { duckdbMessage } from "./duckdb/open.ts";
import {
  EXPORT_MANIFEST_FORMAT,
  EXPORT_MANIFEST_FORMAT_VERSION,
  EXPORT_MANIFEST_NAME,
  loadStatement,
  readFileSql,
  sha256File,
  type ExportManifest,
  type ExportTable,
} from "./export.ts";

export const IMPORTS_TABLE = "_duckbak_imports";

export interface ImportOptions {
  /** The export folder. */
  dir: string;
  /** The database to create (or, with `append`, to add rows to). */
  into: string;
  append?: boolean;
  /** Seconds to wait for a writer to release the target (append only). */
  waitSeconds?: number;
  /** Told the rows to load, then each table's rows once loaded. */
  progress?: ProgressSink;
}

export interface ImportResult {
  target: string;
  mode: "new" | "append";
  exportId: string;
  tables: { schema: string; name: string; rows: number }[];
  rows: number;
  /** False when the export held only some tables or rows (the rest of a new database is empty). */
  complete: boolean;
  durationMs: number;
}

export class CorruptExportError extends DuckbakError {
  constructor(dir: string, detail: string) {
    super(`${dir}: ${detail}; nothing imported`, ExitCode.VERIFY_FAILED);
  }
}

export class AlreadyImportedError extends DuckbakError {
  constructor(target: string, exportId: string, importedAt: string) {
    super(`${target}: export ${exportId} was already imported on ${importedAt}; not imported again (its rows would be duplicated)`);
  }
}

const isSha256 = (v: unknown) => typeof v === "string" && /^[0-9a-f]{64}$/.test(v);
const isInside = (p: unknown) => typeof p === "string" && p.length > 0 && !isAbsolute(p) && !p.split(/[\\/]/).includes("..");

/** Reads and checks the shape of an export's manifest. */
export async function readExportManifest(dir: string): Promise<ExportManifest> {
  const path = join(dir, EXPORT_MANIFEST_NAME);
  let m: any;
  try {
    m = JSON.parse(await readFile(path, "utf8"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new DuckbakError(`${dir}: not a duckbak export (no ${EXPORT_MANIFEST_NAME})`);
    if (err instanceof SyntaxError) throw new CorruptExportError(dir, `${EXPORT_MANIFEST_NAME} is not valid JSON`);
    throw fsError(err, path, "read");
  }
  const bad = (what: string): never => {
    throw new CorruptExportError(dir, `${EXPORT_MANIFEST_NAME}: ${what}`);
  };
  if (m?.format !== EXPORT_MANIFEST_FORMAT) bad(`unknown format ${JSON.stringify(m?.format)}`);
  if (typeof m.format_version !== "number" || m.format_version > EXPORT_MANIFEST_FORMAT_VERSION) bad(`format version ${m.format_version} is newer than this duckbak understands`);
  if (typeof m.export_id !== "string" || !m.export_id) bad("missing export_id");
  if (m.file_format !== "parquet" && m.file_format !== "csv") bad(`unknown file_format ${JSON.stringify(m.file_format)}`);
  if (!Array.isArray(m.files) || !m.files.every((f: any) => isInside(f?.path) && typeof f.size_bytes === "number" && isSha256(f.sha256)))
    bad("files lack path, size_bytes or sha256");
  const listed = new Set(m.files.map((f: any) => f.path));
  if (!listed.has(m.schema_file)) bad("the schema file is not among the checksummed files");
  if (!Array.isArray(m.tables)) bad("missing tables");
  for (const t of m.tables) {
    if (typeof t?.schema !== "string" || typeof t.name !== "string" || !Array.isArray(t.columns) || t.columns.length === 0 || typeof t.rows !== "number")
      bad("a table lacks schema, name, columns or rows");
    if (!listed.has(t.file)) bad(`the data file of ${t.schema}.${t.name} is not among the checksummed files`);
  }
  return m as ExportManifest;
}

/** Compares every file with its size and sha256 in the manifest. */
export async function verifyExportFiles(dir: string, m: ExportManifest): Promise<void> {
  for (const f of m.files) {
    const path = join(dir, f.path);
    const st = await stat(path).catch(() => null);
    if (!st?.isFile()) throw new CorruptExportError(dir, `${f.path} is missing`);
    if (st.size !== f.size_bytes) throw new CorruptExportError(dir, `${f.path} is ${st.size} bytes, the manifest says ${f.size_bytes}`);
    if ((await sha256File(path)) !== f.sha256) throw new CorruptExportError(dir, `${f.path} does not match its sha256 in the manifest`);
  }
}

export async function importExport(opts: ImportOptions): Promise<ImportResult> {
  const started = performance.now();
  const dir = resolve(opts.dir);
  const target = resolve(opts.into);
  const manifest = await readExportManifest(dir);
  await verifyExportFiles(dir, manifest);
  const tables = opts.append ? await appendInto(target, dir, manifest, opts.progress, opts.waitSeconds) : await buildNew(target, dir, manifest, opts.progress);
  return {
    target,
    mode: opts.append ? "append" : "new",
    exportId: manifest.export_id,
    tables,
    rows: tables.reduce((n, t) => n + t.rows, 0),
    complete: manifest.complete,
    durationMs: Math.round(performance.now() - started),
  };
}

type Loaded = ImportResult["tables"];

/**
 * The tables whose rows an import adds. An append leaves out the source's own import history: it
 * would record in the target exports that were never imported into it.
 */
function tablesToLoad(m: ExportManifest, mode: ImportResult["mode"]): ExportManifest["tables"] {
  return mode === "append" ? m.tables.filter((t) => !(t.schema === "main" && t.name === IMPORTS_TABLE)) : m.tables;
}

/** Loads every table, then records the import; the caller owns the transaction. */
async function load(s: DuckDBSession, target: string, dir: string, m: ExportManifest, mode: ImportResult["mode"], failure: string, progress?: ProgressSink): Promise<Loaded> {
  const loaded: Loaded = [];
  progress?.start(tablesToLoad(m, mode).reduce((n, t) => n + t.rows, 0), "importing", "rows");
  for (const t of tablesToLoad(m, mode)) {
    let rows: number;
    try {
      const selfKeys = await selfForeignKeys(s, t);
      rows = selfKeys.length > 0 ? await loadParentsFirst(s, t, join(dir, t.file), m.file_format, selfKeys) : await insertRows(s, loadStatement(t, join(dir, t.file), m.file_format));
    } catch (err) {
      throw new DuckbakError(`${target}: loading ${label(t)} from ${t.file} failed: ${duckdbMessage(err)}; ${failure}`, undefined, { cause: err });
    }
    if (rows !== t.rows) throw new DuckbakError(`${target}: ${t.file} gave ${rows} rows, the manifest says ${t.rows}; ${failure}`);
    loaded.push({ schema: t.schema, name: t.name, rows });
    progress?.advance(rows);
  }
  await s.rows(
    `INSERT INTO main.${quoteIdent(IMPORTS_TABLE)} VALUES (?, now(), ?, ?, CAST(? AS TIMESTAMPTZ), ?, ?, ?)`,
    [m.export_id, mode, m.source.path, m.created_at, m.incremental?.date_column ?? null, m.incremental?.since ?? null, loaded.reduce((n, t) => n + t.rows, 0)],
  );
  return loaded;
}

async function insertRows(s: DuckDBSession, sql: string): Promise<number> {
  const [r] = await s.rows<{ Count: string }>(sql);
  return Number(r!.Count);
}

interface ForeignKey {
  cols: string[];
  refs: string[];
}

async function selfForeignKeys(s: DuckDBSession, t: ExportTable): Promise<ForeignKey[]> {
  return s.rows<ForeignKey>(
    `SELECT constraint_column_names AS cols, referenced_column_names AS refs FROM duckdb_constraints()
     WHERE database_name = current_database() AND schema_name = ? AND table_name = ? AND constraint_type = 'FOREIGN KEY' AND referenced_table = table_name`,
    [t.schema, t.name],
  );
}

/**
 * DuckDB checks a foreign key against the rows already in the table, not against the other rows
 * of the same INSERT; so a table that references itself is loaded in rounds from a staging table,
 * each round the rows whose parent rows are in by now. Rows whose parent never arrives are left
 * for a last INSERT, which fails with DuckDB's own foreign-key error.
 */
async function loadParentsFirst(s: DuckDBSession, t: ExportTable, path: string, format: ExportManifest["file_format"], keys: ForeignKey[]): Promise<number> {
  const table = label(t);
  const names = t.columns.map((c) => quoteIdent(c.name)).join(", ");
  const aliases = t.columns.map((_, i) => quoteIdent(`c${i}`));
  const typed = t.columns.map((c, i) => `CAST(f.${aliases[i]} AS ${c.type}) AS ${quoteIdent(c.name)}`).join(", ");
  const ready = keys
    .map((k) => {
      const anyNull = k.cols.map((c) => `s.${quoteIdent(c)} IS NULL`).join(" OR ");
      const parentIn = k.cols.map((c, j) => `p.${quoteIdent(k.refs[j]!)} = s.${quoteIdent(c)}`).join(" AND ");
      return `(${anyNull} OR EXISTS (SELECT 1 FROM ${table} p WHERE ${parentIn}))`;
    })
    .join(" AND ");
  await s.run(`CREATE OR REPLACE TEMP TABLE duckbak_stage AS SELECT row_number() OVER () AS duckbak_row, ${typed} FROM ${readFileSql(t, path, format)} AS f(${aliases.join(", ")})`);
  try {
    let total = 0;
    for (;;) {
      await s.run(`CREATE OR REPLACE TEMP TABLE duckbak_batch AS SELECT duckbak_row FROM duckbak_stage s WHERE ${ready}`);
      const batch = "duckbak_row IN (SELECT duckbak_row FROM duckbak_batch)";
      const n = await insertRows(s, `INSERT INTO ${table} (${names}) SELECT ${names} FROM duckbak_stage WHERE ${batch}`);
      if (n === 0) break;
      total += n;
      await s.run(`DELETE FROM duckbak_stage WHERE ${batch}`);
    }
    return total + (await insertRows(s, `INSERT INTO ${table} (${names}) SELECT ${names} FROM duckbak_stage`));
  } finally {
    await s.run("DROP TABLE IF EXISTS duckbak_stage; DROP TABLE IF EXISTS duckbak_batch").catch(() => {});
  }
}

const label = (t: Pick<ExportTable, "schema" | "name">) => `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;

const IMPORTS_DDL = `CREATE TABLE IF NOT EXISTS main.${quoteIdent(IMPORTS_TABLE)} (
  export_id VARCHAR PRIMARY KEY,
  imported_at TIMESTAMPTZ NOT NULL,
  mode VARCHAR NOT NULL,
  source_path VARCHAR,
  exported_at TIMESTAMPTZ,
  date_column VARCHAR,
  since VARCHAR,
  rows BIGINT
)`;

/** Builds the database under a temporary name in the target's folder, then moves it into place. */
async function buildNew(target: string, dir: string, m: ExportManifest, progress?: ProgressSink): Promise<Loaded> {
  const failure = "no database created";
  if (existsSync(target) || existsSync(`${target}.wal`))
    throw new DuckbakError(`${target}: already exists; import builds a new database (use --append to add the export's rows to it)`);
  await mkdir(dirname(target), { recursive: true }).catch((err) => {
    throw fsError(err, dirname(target), "create folder");
  });
  await removeStaleTemporaries(dirname(target));
  const tmp = tempPath(target);
  const removeTemp = () => Promise.all([rm(tmp, { force: true }), rm(`${tmp}.wal`, { force: true })]);
  // The source's storage version keeps what it allowed (typed macro parameters need v1.4.0+).
  const storage = /^v\d+\.\d+\.\d+/.exec(m.source.storage_version ?? "")?.[0];
  let s: DuckDBSession | null = null;
  try {
    s = await DuckDBSession.open(tmp, storage ? { storage_compatibility_version: storage } : {}).catch((err) => {
      throw new DuckbakError(`${target}: cannot create the database: ${duckdbMessage(err)}; ${failure}`);
    });
    await s.run("BEGIN TRANSACTION");
    for (const sql of splitStatements(await readFile(join(dir, m.schema_file), "utf8"))) {
      await s.run(sql).catch((err) => {
        throw new DuckbakError(`${target}: ${m.schema_file}: ${duckdbMessage(err)} in: ${sql.replace(/\s+/g, " ").slice(0, 120)}; ${failure}`);
      });
    }
    await s.run(IMPORTS_DDL);
    const loaded = await load(s, target, dir, m, "new", failure, progress);
    await s.run("COMMIT");
    await s.run("CHECKPOINT");
    s.close();
    if (existsSync(`${tmp}.wal`)) throw new DuckbakError(`${target}: DuckDB left a WAL after the final checkpoint; ${failure}`);
    await commitNew(tmp, target);
    return loaded;
  } catch (err) {
    s?.close();
    await removeTemp();
    throw err;
  }
}

/** Flushes the finished database and links it into place; an existing target is never replaced. */
async function commitNew(tmp: string, target: string): Promise<void> {
  const h = await open(tmp, "r");
  try {
    await h.sync();
  } finally {
    await h.close();
  }
  const moved = await moveNoClobber(tmp, target).catch((err) => {
    throw fsError(err, target, "move into place");
  });
  if (!moved) throw new DuckbakError(`${target}: appeared while importing; not overwritten`);
  fsyncDir(dirname(target));
}

async function appendInto(target: string, dir: string, m: ExportManifest, progress?: ProgressSink, waitSeconds?: number): Promise<Loaded> {
  const failure = "nothing imported (the database is unchanged)";
  const s = await openDatabase(target, { readOnly: false, waitSeconds, lockedConsequence: "not imported into" });
  try {
    await s.run("BEGIN TRANSACTION");
    try {
      await s.run(IMPORTS_DDL);
      const [prior] = await s.rows<{ at: string }>(`SELECT CAST(imported_at AS VARCHAR) AS at FROM main.${quoteIdent(IMPORTS_TABLE)} WHERE export_id = ?`, [m.export_id]);
      if (prior) throw new AlreadyImportedError(target, m.export_id, prior.at);
      await checkColumns(s, target, m, failure);
      const loaded = await load(s, target, dir, m, "append", failure, progress);
      await s.run("COMMIT");
      return loaded;
    } catch (err) {
      await s.run("ROLLBACK").catch(() => {});
      throw err;
    }
  } finally {
    s.close();
  }
}

/** Every exported column must exist in the target's table (types may differ: rows are cast). */
async function checkColumns(s: DuckDBSession, target: string, m: ExportManifest, failure: string): Promise<void> {
  for (const t of tablesToLoad(m, "append")) {
    const have = new Set(
      (
        await s.rows<{ c: string }>(
          "SELECT column_name AS c FROM duckdb_columns() WHERE database_name = current_database() AND schema_name = ? AND table_name = ?",
          [t.schema, t.name],
        )
      ).map((r) => r.c),
    );
    if (have.size === 0) throw new DuckbakError(`${target}: has no table ${label(t)}, which the export holds; ${failure}`);
    const missing = t.columns.filter((c) => !have.has(c.name));
    if (missing.length > 0)
      throw new DuckbakError(`${target}: table ${label(t)} lacks the export's column(s) ${missing.map((c) => quoteIdent(c.name)).join(", ")}; ${failure}`);
  }
}
