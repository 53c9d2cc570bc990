// export: every table (or the chosen ones, or the rows since a date) of one database as Parquet or
// CSV files, plus the schema as SQL and a manifest with row counts and checksums, so that `import`
// can rebuild the database. All tables come from one read-only open of the database, which keeps
// writers out for the whole export, and their rows from one transaction.
import { pausePoint } from "./pause.ts";
import type { ProgressSink } from "./progress.ts";
import { mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { hostname } from "node:os";
import { DuckbakError, UsageError, fsError } from "./errors.ts";
import { fsyncDir, removeStaleTemporaries, tempPath, writeFileAtomic } from "./fsutil.ts";
import { stemCandidates, utcStamp } from "./naming.ts";
import { DUCKBAK_VERSION } from "./version.ts";
import { quoteIdent, quoteLiteral } from "./duckdb/sql.ts";
import { DuckDBSession, openDatabase } from "./duckdb/session.ts";
import type { KeyLookup } from "./keys.ts";
import { duckdbMessage } from "./duckdb/open.ts";
import { readSchema, SchemaError, type SchemaStatement, type SchemaTable } from "./duckdb/schema.ts";

export type ExportFormat = "parquet" | "csv";
export const EXPORT_FORMATS: readonly ExportFormat[] = ["parquet", "csv"];
export type ExportCompression = "zstd" | "snappy" | "gzip" | "none";
export const EXPORT_COMPRESSIONS: readonly ExportCompression[] = ["zstd", "snappy", "gzip", "none"];

export const EXPORT_MANIFEST_NAME = "export.json";
export const EXPORT_MANIFEST_FORMAT = "duckbak-export";
export const EXPORT_MANIFEST_FORMAT_VERSION = 1;
const SCHEMA_FILE = "schema.sql";
const LOAD_FILE = "load.sql";

export interface ExportColumn {
  name: string;
  type: string;
  /** Set when the file holds the column as text because the format cannot carry the type exactly. */
  stored_as?: "VARCHAR";
}

export interface ExportTable {
  schema: string;
  name: string;
  /** Path of the data file, relative to the export folder. */
  file: string;
  /** The columns in the file, in order (generated columns are not exported). */
  columns: ExportColumn[];
  rows: number;
  /** For an incremental export: the smallest and largest value of the date column exported. */
  range?: { min: string | null; max: string | null };
}

export interface ExportFile {
  path: string;
  size_bytes: number;
  sha256: string;
}

export interface ExportManifest {
  format: typeof EXPORT_MANIFEST_FORMAT;
  format_version: number;
  /** Identifies this export; `import --append` records it to refuse the same export twice. */
  export_id: string;
  created_at: string;
  duckbak_version: string;
  duckdb_version: string;
  host: string;
  source: { path: string; name: string; storage_version: string | null };
  file_format: ExportFormat;
  compression: ExportCompression;
  /** Rows with `date_column >= since` only (the seed's incremental strategy); null for a full export. */
  incremental: { date_column: string; since: string } | null;
  /** True when every table is exported with all its rows. */
  complete: boolean;
  /** schema.sql: every object of the database, in an order that replays. */
  schema_file: string;
  /** load.sql: INSERT statements that load the data files, for use without duckbak. */
  load_file: string;
  /** In load order: foreign-key parents first. */
  tables: ExportTable[];
  /** Every file of the export but this manifest. */
  files: ExportFile[];
}

export interface ExportOptions {
  database: string;
  /** Told the rows to export, then each table's rows once written. */
  progress?: ProgressSink;
  /** The folder to create; must not exist or be empty. Default `<db stem>_export_<UTC time>` in cwd. */
  out?: string;
  format?: ExportFormat;
  /** Default zstd for Parquet, none for CSV. */
  compression?: ExportCompression;
  /** Only these tables (`name` or `schema.name`). */
  tables?: string[];
  since?: string;
  dateColumn?: string;
  waitSeconds?: number;
  /** Keys of encrypted databases. */
  keys?: KeyLookup;
  now?: Date;
}

export interface ExportResult {
  path: string;
  manifest: ExportManifest;
  /** Total size of the files written. */
  bytes: number;
  durationMs: number;
  /** Tables left out of an incremental export because they lack the date column. */
  skipped: { schema: string; name: string }[];
  /** Objects that could not be put in schema.sql. */
  warnings: string[];
  /** Tables not exported because this DuckDB cannot recreate them (their data is not exported either). */
  leftOut: { schema: string; name: string }[];
}

// Types that Parquet cannot carry exactly, anywhere in a column's type: DuckDB writes HUGEINT as
// DOUBLE, drops TIMETZ offsets, cannot write negative INTERVALs and only milliseconds of positive
// ones. Such columns are written as text, which DuckDB casts back exactly on import.
const PARQUET_INEXACT = /\b(HUGEINT|UHUGEINT|INTERVAL|TIME WITH TIME ZONE|BIGNUM|VARINT)\b/;
// Parquet's geometry carries no M coordinate: DuckDB writes such values as plain BLOBs that do not
// import back. Their WKT text (exact: DuckDB prints the shortest round-trip doubles) does.
const GEOMETRY = /^GEOMETRY\b/;
const HAS_M = "'^[A-Z]+ Z?M '";
// A UNION read back from text can take a different member (or become a non-NULL union of NULL).
const CSV_UNSUPPORTED = /\bUNION\(/;

export function defaultCompression(format: ExportFormat): ExportCompression {
  return format === "parquet" ? "zstd" : "none";
}

function dataFileName(index: number, t: SchemaTable, format: ExportFormat, compression: ExportCompression): string {
  const label = (t.schema === "main" ? t.name : `${t.schema}.${t.name}`).replace(/[^A-Za-z0-9_.-]+/g, "_").slice(0, 60);
  const ext = format === "parquet" ? ".parquet" : compression === "gzip" ? ".csv.gz" : compression === "zstd" ? ".csv.zst" : ".csv";
  return `data/${String(index + 1).padStart(4, "0")}_${label}${ext}`;
}

/** The table function that reads one data file: its columns are the table's, in order. */
export function readFileSql(t: Pick<ExportTable, "columns">, path: string, format: ExportFormat): string {
  if (format === "parquet") return `read_parquet(${quoteLiteral(path)})`;
  const columns = t.columns.map((_, i) => `'c${i}': 'VARCHAR'`).join(", ");
  return (
    `read_csv(${quoteLiteral(path)}, header = true, auto_detect = false, columns = {${columns}}, ` +
    `delim = ',', quote = '"', escape = '"', allow_quoted_nulls = false)`
  );
}

/** The statement that loads one data file into its table; `path` as the statement should name it. */
export function loadStatement(t: Pick<ExportTable, "schema" | "name" | "columns">, path: string, format: ExportFormat): string {
  // By position: the file's columns are the table's, in order, whatever their names became.
  const target = `${quoteIdent(t.schema)}.${quoteIdent(t.name)} (${t.columns.map((c) => quoteIdent(c.name)).join(", ")})`;
  return `INSERT INTO ${target} SELECT * FROM ${readFileSql(t, path, format)}`;
}

function copyOptions(format: ExportFormat, compression: ExportCompression): string {
  if (format === "parquet") return `FORMAT PARQUET, COMPRESSION ${compression === "none" ? "UNCOMPRESSED" : compression.toUpperCase()}`;
  // An empty string is written quoted, NULL as nothing: read_csv with allow_quoted_nulls = false tells them apart.
  return `FORMAT CSV, HEADER, DELIMITER ',', QUOTE '"', ESCAPE '"', COMPRESSION ${compression === "none" ? "NONE" : compression.toUpperCase()}`;
}


async function isEmptyDir(path: string): Promise<boolean | null> {
  const st = await stat(path).catch(() => null);
  if (!st) return null;
  if (!st.isDirectory()) return false;
  return (await readdir(path)).length === 0;
}

async function chooseOut(opts: ExportOptions, now: Date): Promise<string> {
  if (opts.out !== undefined) {
    const out = resolve(opts.out);
    if ((await isEmptyDir(out)) === false) throw new DuckbakError(`${out}: already exists and is not an empty folder; not overwritten`);
    return out;
  }
  const stem = `${basename(opts.database).replace(/\.[^.]*$/, "")}_export_${utcStamp(now)}`;
  for (const name of stemCandidates(stem)) if ((await isEmptyDir(name)) !== false) return resolve(name);
  throw new Error("unreachable");
}

export async function sha256File(path: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  for await (const chunk of Bun.file(path).stream()) hasher.update(chunk);
  return hasher.digest("hex");
}

async function fsyncFile(path: string): Promise<void> {
  const h = await open(path, "r");
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

function pickTables(all: SchemaTable[], wanted: string[] | undefined): SchemaTable[] {
  if (!wanted?.length) return all;
  const picked = new Set<SchemaTable>();
  for (const w of wanted) {
    const exact = all.filter((t) => t.name === w || `${t.schema}.${t.name}` === w);
    const matches = exact.length > 0 ? exact : all.filter((t) => t.name.toLowerCase() === w.toLowerCase() || `${t.schema}.${t.name}`.toLowerCase() === w.toLowerCase());
    if (matches.length === 0) throw new UsageError(`--table '${w}': no such table (tables: ${all.map((t) => `${t.schema}.${t.name}`).join(", ") || "none"})`);
    if (matches.length > 1) throw new UsageError(`--table '${w}' is ambiguous: ${matches.map((t) => `${t.schema}.${t.name}`).join(", ")}; give schema.table`);
    picked.add(matches[0]!);
  }
  return all.filter((t) => picked.has(t));
}

function findColumn(t: SchemaTable, name: string) {
  return t.columns.find((c) => c.name === name) ?? t.columns.find((c) => c.name.toLowerCase() === name.toLowerCase());
}

function validate(opts: ExportOptions): { format: ExportFormat; compression: ExportCompression } {
  const format = opts.format ?? "parquet";
  if (!EXPORT_FORMATS.includes(format)) throw new UsageError(`--format must be parquet or csv, not '${format}'`);
  const compression = opts.compression ?? defaultCompression(format);
  if (!EXPORT_COMPRESSIONS.includes(compression)) throw new UsageError(`--compression must be one of ${EXPORT_COMPRESSIONS.join(", ")}, not '${compression}'`);
  if (format === "csv" && compression === "snappy") throw new UsageError("--compression snappy is for Parquet; CSV takes gzip, zstd or none");
  if ((opts.since === undefined) !== (opts.dateColumn === undefined)) throw new UsageError("--since and --date-column go together");
  if (opts.since !== undefined && opts.since.trim() === "") throw new UsageError("--since must not be empty");
  return { format, compression };
}

/** Exports one database; the folder appears complete or not at all. */
export async function exportDatabase(opts: ExportOptions): Promise<ExportResult> {
  const started = performance.now();
  const now = opts.now ?? new Date();
  const { format, compression } = validate(opts);
  const database = resolve(opts.database);
  const out = await chooseOut(opts, now);
  await mkdir(dirname(out), { recursive: true }).catch((err) => {
    throw fsError(err, dirname(out), "create folder");
  });

  const session = await openDatabase(database, { readOnly: true, waitSeconds: opts.waitSeconds, lockedConsequence: "not exported", keys: opts.keys });
  await removeStaleTemporaries(dirname(out));
  const tmp = tempPath(out);
  try {
    await mkdir(join(tmp, "data"), { recursive: true }).catch((err) => {
      throw fsError(err, tmp, "create folder");
    });
    await pausePoint("export:writing");
    let schema;
    try {
      schema = await readSchema(session, tmp);
    } catch (err) {
      if (err instanceof SchemaError) throw new DuckbakError(`${database}: ${err.message}; not exported`);
      throw err;
    }
    const chosen = pickTables(schema.tables, opts.tables);
    const incremental = opts.since !== undefined ? { date_column: opts.dateColumn!, since: opts.since } : null;
    const skipped = incremental ? chosen.filter((t) => !findColumn(t, incremental.date_column)) : [];
    if (incremental && opts.tables?.length && skipped.length > 0)
      throw new UsageError(`--date-column '${incremental.date_column}': no such column in ${skipped.map((t) => `${t.schema}.${t.name}`).join(", ")}`);
    const tables = chosen.filter((t) => !skipped.includes(t));
    if (incremental && tables.length === 0) throw new UsageError(`--date-column '${incremental.date_column}': no table has that column`);
    const exported = await writeData(session, tables, tmp, format, compression, incremental, opts.progress);
    const [{ v: duckdbVersion }] = (await session.rows<{ v: string }>("SELECT version() AS v")) as [{ v: string }];
    session.close(); // releases the database before the checksums are computed

    const manifest = await finish(tmp, {
      format: EXPORT_MANIFEST_FORMAT,
      format_version: EXPORT_MANIFEST_FORMAT_VERSION,
      export_id: crypto.randomUUID(),
      created_at: now.toISOString(),
      duckbak_version: DUCKBAK_VERSION,
      duckdb_version: duckdbVersion,
      host: hostname(),
      source: { path: database, name: basename(database), storage_version: schema.storageVersion },
      file_format: format,
      compression,
      incremental,
      complete: incremental === null && tables.length === schema.tables.length && schema.leftOut.length === 0,
      schema_file: SCHEMA_FILE,
      load_file: LOAD_FILE,
      tables: exported,
      files: [],
    }, schema.statements, tables);
    await commitFolder(tmp, out);
    return {
      path: out,
      manifest,
      bytes: manifest.files.reduce((n, f) => n + f.size_bytes, 0),
      durationMs: Math.round(performance.now() - started),
      skipped: skipped.map((t) => ({ schema: t.schema, name: t.name })),
      warnings: schema.warnings,
      leftOut: schema.leftOut,
    };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  } finally {
    session.close();
  }
}

async function writeData(
  s: DuckDBSession,
  tables: SchemaTable[],
  dir: string,
  format: ExportFormat,
  compression: ExportCompression,
  incremental: ExportManifest["incremental"],
  progress: ProgressSink | undefined,
): Promise<ExportTable[]> {
  const out: ExportTable[] = [];
  await s.run("BEGIN TRANSACTION");
  try {
    if (progress) {
      // Rows are the measure here (DuckDB writes the files); an incremental export may end short of 100%.
      let total = 0;
      for (const t of tables) total += Number((await s.rows<{ n: string }>(`SELECT count(*)::VARCHAR AS n FROM ${quoteIdent(t.schema)}.${quoteIdent(t.name)}`))[0]!.n);
      progress.start(total, "exporting", "rows");
    }
    for (const [i, t] of tables.entries()) {
      const name = `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;
      const columns: ExportColumn[] = [];
      for (const c of t.columns) {
        if (format === "csv" && CSV_UNSUPPORTED.test(c.type))
          throw new DuckbakError(`${name}: column ${quoteIdent(c.name)} is a ${c.type}, which CSV cannot carry; export it with --format parquet`);
        const asText =
          format === "parquet" &&
          (PARQUET_INEXACT.test(c.type) ||
            (GEOMETRY.test(c.type) &&
              (await s.rows<{ m: boolean | null }>(`SELECT bool_or(regexp_matches(CAST(${quoteIdent(c.name)} AS VARCHAR), ${HAS_M})) AS m FROM ${name}`))[0]!.m === true));
        columns.push(asText ? { ...c, stored_as: "VARCHAR" } : { ...c });
      }
      const select = columns.map((c) => (c.stored_as ? `CAST(${quoteIdent(c.name)} AS VARCHAR) AS ${quoteIdent(c.name)}` : quoteIdent(c.name))).join(", ");
      let where = "";
      let col: { name: string; type: string } | undefined;
      if (incremental) {
        col = findColumn(t, incremental.date_column)!;
        const bound = `CAST(${quoteLiteral(incremental.since)} AS ${col.type})`;
        await s.rows(`SELECT ${bound}`).catch((err) => {
          throw new UsageError(`--since '${incremental.since}' is not a ${col!.type} (column ${quoteIdent(col!.name)} of ${name}): ${duckdbMessage(err)}`);
        });
        where = ` WHERE ${quoteIdent(col.name)} >= ${bound}`;
      }
      const file = dataFileName(i, t, format, compression);
      const [copied] = await s.rows<{ Count: string }>(`COPY (SELECT ${select} FROM ${name}${where}) TO ${quoteLiteral(join(dir, file))} (${copyOptions(format, compression)})`);
      const table: ExportTable = { schema: t.schema, name: t.name, file, columns, rows: Number(copied!.Count) };
      progress?.advance(table.rows);
      if (col) {
        const [r] = await s.rows<{ min: string | null; max: string | null }>(
          `SELECT CAST(min(${quoteIdent(col.name)}) AS VARCHAR) AS min, CAST(max(${quoteIdent(col.name)}) AS VARCHAR) AS max FROM ${name}${where}`,
        );
        table.range = { min: r!.min, max: r!.max };
      }
      out.push(table);
    }
  } catch (err) {
    await s.run("ROLLBACK").catch(() => {});
    throw err;
  }
  await s.run("COMMIT");
  return out;
}

/** Writes schema.sql, load.sql and the manifest into the temporary folder, everything flushed. */
async function finish(dir: string, manifest: ExportManifest, statements: SchemaStatement[], tables: SchemaTable[]): Promise<ExportManifest> {
  const header = `-- ${manifest.source.name}: schema exported by duckbak ${manifest.duckbak_version} (DuckDB ${manifest.duckdb_version}) at ${manifest.created_at}\n`;
  await writeFileAtomic(join(dir, SCHEMA_FILE), header + statements.map((st) => `${st.sql};\n`).join(""));
  const selfReferencing = new Set(tables.filter((t) => t.selfReferencing).map((t) => JSON.stringify([t.schema, t.name])));
  const load = manifest.tables
    .map((t) => {
      // DuckDB checks a foreign key against the rows already in the table, not those of the same INSERT.
      const note = selfReferencing.has(JSON.stringify([t.schema, t.name])) ? "-- References itself: rows whose parent row is in the same file fail here; `duckbak import` loads them parents first.\n" : "";
      return `${note}${loadStatement(t, t.file, manifest.file_format)};\n`;
    })
    .join("");
  await writeFileAtomic(join(dir, LOAD_FILE), `-- Run from the export folder after schema.sql.\n${load}`);
  for (const path of [SCHEMA_FILE, LOAD_FILE, ...manifest.tables.map((t) => t.file)]) {
    const full = join(dir, path);
    await fsyncFile(full);
    manifest.files.push({ path, size_bytes: (await stat(full)).size, sha256: await sha256File(full) });
  }
  fsyncDir(join(dir, "data"));
  await writeFileAtomic(join(dir, EXPORT_MANIFEST_NAME), JSON.stringify(manifest, null, 2) + "\n");
  return manifest;
}

/** Moves the finished folder into place; an empty folder of that name is replaced, anything else refused. */
async function commitFolder(tmp: string, out: string): Promise<void> {
  try {
    await rename(tmp, out);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOTEMPTY" || code === "EEXIST" || code === "ENOTDIR") throw new DuckbakError(`${out}: already exists and is not an empty folder; not overwritten`);
    throw fsError(err, out, "rename into place");
  }
  fsyncDir(dirname(out));
}
