// A database's schema as SQL that rebuilds it: schemas, types, sequences (at their current value),
// tables (FK parents first) with every constraint, indexes, macros, views, and the comments that
// DuckDB's own EXPORT DATABASE drops. DuckDB's catalog `sql` columns cannot be replayed as they
// are in 1.5: a table's sql omits self-referencing foreign keys and prints other foreign keys and
// sequence names unquoted. So tables keep only their column definitions from `sql` and get their
// constraints from duckdb_constraints(), and sequences are written from their fields.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { quoteIdent, quoteLiteral } from "./sql.ts";
import { leadingListItems, leadingName, splitStatements, topLevelWords } from "./sqltext.ts";
import { DuckDBSession } from "./session.ts";
import { duckdbMessage } from "./open.ts";

export interface SchemaColumn {
  name: string;
  type: string;
}

export interface SchemaTable {
  schema: string;
  name: string;
  /** Columns that hold data, in table order; generated columns are left out. */
  columns: SchemaColumn[];
  /** Has a foreign key to itself (rows must be loaded parents first). */
  selfReferencing: boolean;
}

export type StatementKind = "schema" | "type" | "sequence" | "table" | "index" | "macro" | "view" | "comment";

export interface SchemaStatement {
  kind: StatementKind;
  /** The object created, or commented on: `view "main"."v"`. */
  object: string;
  sql: string;
}

export interface DatabaseSchema {
  /** DuckDB's storage_version tag of the database, e.g. "v1.0.0+"; null when not reported. */
  storageVersion: string | null;
  /** In an order that replays on an empty database (checked by replaying them). */
  statements: SchemaStatement[];
  /** Every table, foreign-key parents before their children: the order to load data in. */
  tables: SchemaTable[];
  /** Objects that could not be recreated and were left out, with DuckDB's reason. */
  warnings: string[];
  /** Tables whose definition does not replay (a legacy AGGREGATE_STATE column): left out, data too. */
  leftOut: { schema: string; name: string }[];
}

export class SchemaError extends Error {}

const qname = (schema: string, name: string) => `${quoteIdent(schema)}.${quoteIdent(name)}`;
const CURRENT = "database_name = current_database()";

interface Row {
  [k: string]: any;
}

/**
 * Reads the schema of the session's database, outside any transaction (see macroStatements); the
 * caller's read-only open keeps writers out, so nothing changes meanwhile. Macros are read through
 * DuckDB's own printing, the only one that keeps their parameters' default values; `scratchParent`
 * is a folder where that takes a moment's scratch space.
 */
export async function readSchema(s: DuckDBSession, scratchParent: string): Promise<DatabaseSchema> {
  const [db] = await s.rows<Row>("SELECT current_database() AS name, (SELECT tags['storage_version'] FROM duckdb_databases() WHERE database_name = current_database()) AS sv");
  const fixed: SchemaStatement[] = [];
  const comments: SchemaStatement[] = [];
  const comment = (target: string, on: string, text: string | null) => {
    if (text) comments.push({ kind: "comment", object: target, sql: `COMMENT ON ${on} IS ${quoteLiteral(text)}` });
  };

  for (const r of await s.rows<Row>(`SELECT schema_name FROM duckdb_schemas() WHERE ${CURRENT} AND NOT internal ORDER BY oid`))
    fixed.push({ kind: "schema", object: `schema ${quoteIdent(r.schema_name)}`, sql: `CREATE SCHEMA ${quoteIdent(r.schema_name)}` });

  for (const r of await s.rows<Row>(`SELECT schema_name, type_name, comment FROM duckdb_types() WHERE ${CURRENT} AND NOT internal ORDER BY type_oid`)) {
    const name = qname(r.schema_name, r.type_name);
    // typeof() spells the definition out (ENUM labels, STRUCT fields), independent of other types.
    const [def] = await s.rows<Row>(`SELECT typeof(NULL::${name}) AS t`);
    fixed.push({ kind: "type", object: `type ${name}`, sql: `CREATE TYPE ${name} AS ${def!.t}` });
    comment(`type ${name}`, `TYPE ${name}`, r.comment);
  }

  for (const r of await s.rows<Row>(
    `SELECT schema_name, sequence_name, min_value, max_value, increment_by, cycle, sql, comment FROM duckdb_sequences() WHERE ${CURRENT} AND NOT temporary ORDER BY sequence_oid`,
  )) {
    const name = qname(r.schema_name, r.sequence_name);
    fixed.push({ kind: "sequence", object: `sequence ${name}`, sql: sequenceSql(name, r) });
    comment(`sequence ${name}`, `SEQUENCE ${name}`, r.comment);
  }

  const tables = await readTables(s);
  for (const t of tables) {
    fixed.push({ kind: "table", object: `table ${t.qname}`, sql: t.sql });
    comment(`table ${t.qname}`, `TABLE ${t.qname}`, t.comment);
    for (const c of t.columnComments) comment(`table ${t.qname}`, `COLUMN ${t.qname}.${quoteIdent(c.name)}`, c.comment);
  }

  for (const r of await s.rows<Row>(`SELECT schema_name, index_name, sql, comment FROM duckdb_indexes() WHERE ${CURRENT} AND sql IS NOT NULL ORDER BY index_oid`)) {
    const name = qname(r.schema_name, r.index_name);
    fixed.push({ kind: "index", object: `index ${name}`, sql: stripSemicolon(r.sql) });
    comment(`index ${name}`, `INDEX ${name}`, r.comment);
  }

  // Macros and views may use each other in any order; replay finds an order that works.
  const deferred: SchemaStatement[] = [];
  const macros = await s.rows<Row>(
    `SELECT DISTINCT schema_name, function_name, function_type, comment FROM duckdb_functions() WHERE ${CURRENT} AND NOT internal AND function_type IN ('macro', 'table_macro')`,
  );
  if (macros.length > 0) {
    for (const sql of await macroStatements(s, db!.name, scratchParent)) deferred.push({ kind: "macro", object: `macro ${macroName(sql)}`, sql });
    for (const r of macros) {
      const name = qname(r.schema_name, r.function_name);
      comment(`macro ${name}`, `MACRO ${r.function_type === "table_macro" ? "TABLE " : ""}${name}`, r.comment);
    }
  }
  const viewColumns = await s.rows<Row>(
    `SELECT c.schema_name, c.table_name, c.column_name, c.comment FROM duckdb_columns() c JOIN duckdb_views() v ON v.database_name = c.database_name AND v.schema_name = c.schema_name AND v.view_name = c.table_name WHERE c.${CURRENT} AND c.comment IS NOT NULL ORDER BY c.column_index`,
  );
  for (const r of await s.rows<Row>(`SELECT schema_name, view_name, sql, comment FROM duckdb_views() WHERE ${CURRENT} AND NOT internal AND NOT temporary ORDER BY view_oid`)) {
    const name = qname(r.schema_name, r.view_name);
    deferred.push({ kind: "view", object: `view ${name}`, sql: stripSemicolon(r.sql) });
    comment(`view ${name}`, `VIEW ${name}`, r.comment);
    for (const c of viewColumns.filter((c) => c.schema_name === r.schema_name && c.table_name === r.view_name))
      comment(`view ${name}`, `COLUMN ${name}.${quoteIdent(c.column_name)}`, c.comment);
  }

  const { statements, warnings, left } = await replay(fixed, deferred, comments);
  const kept = tables.filter((t) => !left.has(`table ${t.qname}`));
  return {
    storageVersion: db!.sv ?? null,
    statements,
    tables: kept.map((t) => ({ schema: t.schema, name: t.name, columns: t.columns, selfReferencing: t.selfReferencing })),
    warnings,
    leftOut: tables.filter((t) => !kept.includes(t)).map((t) => ({ schema: t.schema, name: t.name })),
  };
}

const stripSemicolon = (sql: string) => sql.replace(/;\s*$/, "");

/**
 * The sequence at its next value. DuckDB prints that value as `START n` in the sequence's sql (its
 * last_value column is not it once the database has been reopened); the name there is unquoted,
 * so only the number is taken from it.
 */
function sequenceSql(name: string, r: Row): string {
  const start = /\bSTART (-?\d+) (?:NO )?CYCLE;?\s*$/.exec(r.sql ?? "");
  if (!start) throw new SchemaError(`sequence ${name}: cannot read its current value from ${JSON.stringify(r.sql)}`);
  const inc = BigInt(r.increment_by);
  const min = BigInt(r.min_value);
  const max = BigInt(r.max_value);
  let next = BigInt(start[1]!);
  // An exhausted sequence cannot be created as such: it restarts at its end.
  if (next > max) next = max;
  if (next < min) next = min;
  return `CREATE SEQUENCE ${name} INCREMENT BY ${inc} MINVALUE ${min} MAXVALUE ${max} START WITH ${next} ${r.cycle ? "CYCLE" : "NO CYCLE"}`;
}

interface TableInfo extends SchemaTable {
  qname: string;
  sql: string;
  comment: string | null;
  columnComments: { name: string; comment: string }[];
  parents: string[];
}

async function readTables(s: DuckDBSession): Promise<TableInfo[]> {
  const tables = await s.rows<Row>(
    `SELECT schema_name, table_name, sql, comment FROM duckdb_tables() WHERE ${CURRENT} AND NOT internal AND NOT temporary ORDER BY table_oid`,
  );
  const columns = await s.rows<Row>(
    `SELECT schema_name, table_name, column_name, data_type, comment FROM duckdb_columns() WHERE ${CURRENT} AND NOT internal ORDER BY column_index`,
  );
  const constraints = await s.rows<Row>(
    `SELECT schema_name, table_name, constraint_type, constraint_text, constraint_column_names AS cols, referenced_table, referenced_column_names AS ref_cols FROM duckdb_constraints() WHERE ${CURRENT} ORDER BY constraint_index`,
  );
  const key = (schema: string, name: string) => JSON.stringify([schema, name]);
  const infos = new Map<string, TableInfo>();
  for (const t of tables) {
    const name = qname(t.schema_name, t.table_name);
    const cols = columns.filter((c) => c.schema_name === t.schema_name && c.table_name === t.table_name);
    let defs: string[];
    try {
      defs = leadingListItems(t.sql, cols.length);
    } catch (err) {
      throw new SchemaError(`table ${name}: cannot read its definition: ${duckdbMessage(err)}`);
    }
    const words = defs.map((d) => ` ${topLevelWords(d)} `);
    const parts = [...defs];
    const parents: string[] = [];
    let selfReferencing = false;
    for (const c of constraints.filter((c) => c.schema_name === t.schema_name && c.table_name === t.table_name)) {
      const colIdx = cols.findIndex((col) => col.column_name === c.cols[0]);
      switch (c.constraint_type) {
        case "CHECK":
          parts.push(c.constraint_text);
          break;
        case "PRIMARY KEY":
        case "UNIQUE":
          // Single-column keys declared with the column are printed inside its definition already.
          if (c.cols.length > 1 || !words[colIdx]?.includes(` ${c.constraint_type} `)) parts.push(c.constraint_text);
          break;
        case "FOREIGN KEY":
          // Foreign keys cannot cross schemas in DuckDB: the parent is in the table's schema.
          parts.push(
            `FOREIGN KEY (${c.cols.map(quoteIdent).join(", ")}) REFERENCES ${qname(t.schema_name, c.referenced_table)}(${c.ref_cols.map(quoteIdent).join(", ")})`,
          );
          if (c.referenced_table !== t.table_name) parents.push(key(t.schema_name, c.referenced_table));
          else selfReferencing = true;
          break;
      }
    }
    infos.set(key(t.schema_name, t.table_name), {
      schema: t.schema_name,
      name: t.table_name,
      qname: name,
      columns: cols.filter((_, i) => !words[i]!.includes(" GENERATED ALWAYS AS ")).map((c) => ({ name: c.column_name, type: c.data_type })),
      sql: `CREATE TABLE ${name}(${parts.join(", ")})`,
      comment: t.comment,
      columnComments: cols.filter((c) => c.comment).map((c) => ({ name: c.column_name, comment: c.comment })),
      parents,
      selfReferencing,
    });
  }
  // Depth-first, parents first; DuckDB cannot create foreign-key cycles (the parent must exist).
  const ordered: TableInfo[] = [];
  const seen = new Set<string>();
  const visit = (k: string) => {
    if (seen.has(k)) return;
    seen.add(k);
    const info = infos.get(k)!;
    for (const p of info.parents) visit(p);
    ordered.push(info);
  };
  for (const k of infos.keys()) visit(k);
  return ordered;
}

/**
 * CREATE MACRO statements as DuckDB prints them, via a schema-only copy into a scratch database
 * (a file: a read-only instance cannot attach an in-memory one) that is then exported. Runs
 * outside any transaction: a database cannot be detached from a transaction that wrote to it.
 */
async function macroStatements(s: DuckDBSession, dbName: string, scratchParent: string): Promise<string[]> {
  const alias = quoteIdent(`duckbak_scratch_${process.pid}_${Date.now()}`);
  const dir = await mkdtemp(join(scratchParent, ".macros-"));
  try {
    await s.run(`ATTACH ${quoteLiteral(join(dir, "scratch.duckdb"))} AS ${alias} (READ_WRITE, STORAGE_VERSION 'latest')`);
    try {
      await s.run(`COPY FROM DATABASE ${quoteIdent(dbName)} TO ${alias} (SCHEMA)`);
      await s.run(`EXPORT DATABASE ${alias} TO ${quoteLiteral(join(dir, "export"))}`);
    } finally {
      await s.run(`DETACH ${alias}`);
    }
    return splitStatements(await readFile(join(dir, "export", "schema.sql"), "utf8")).filter((st) => /^CREATE MACRO\s/i.test(st));
  } catch (err) {
    throw new SchemaError(`cannot read the macros' definitions: ${duckdbMessage(err)}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The qualified name of the macro a CREATE MACRO statement creates, as qname() spells it. */
function macroName(sql: string): string {
  const parts = leadingName(sql.replace(/^CREATE MACRO\s+/i, ""));
  return parts.length === 1 ? qname("main", parts[0]!) : qname(parts.at(-2)!, parts.at(-1)!);
}

/**
 * Replays the statements on an empty in-memory database: the export is known to import, and
 * macros and views come out in an order that works. A macro or view that cannot be created (a
 * view over a table dropped since) is left out with a warning, and so are its comments.
 */
async function replay(
  fixed: SchemaStatement[],
  deferred: SchemaStatement[],
  comments: SchemaStatement[],
): Promise<{ statements: SchemaStatement[]; warnings: string[]; left: Set<string> }> {
  const s = await DuckDBSession.open(":memory:", {});
  try {
    const statements: SchemaStatement[] = [];
    const tableWarnings: string[] = [];
    const leftTables = new Set<string>();
    for (const st of fixed) {
      try {
        await s.run(st.sql);
      } catch (err) {
        // One table this DuckDB cannot recreate (a legacy type) must not sink the others; its
        // indexes go with it.
        if (st.kind === "table" || (st.kind === "index" && leftTables.size > 0)) {
          if (st.kind === "table") leftTables.add(st.object);
          tableWarnings.push(`${st.object} NOT EXPORTED: its definition does not replay (${duckdbMessage(err)})`);
          continue;
        }
        throw new SchemaError(`${st.object}: its definition does not replay: ${duckdbMessage(err)}`);
      }
      statements.push(st);
    }
    let pending = deferred;
    const failures = new Map<SchemaStatement, string>();
    while (pending.length > 0) {
      const next: SchemaStatement[] = [];
      for (const st of pending) {
        try {
          await s.run(st.sql);
          statements.push(st);
          failures.delete(st);
        } catch (err) {
          failures.set(st, duckdbMessage(err));
          next.push(st);
        }
      }
      if (next.length === pending.length) break;
      pending = next;
    }
    const left = new Set([...leftTables, ...pending.map((st) => st.object)]);
    const warnings = [...tableWarnings, ...pending.map((st) => `${st.object} left out: it cannot be recreated (${failures.get(st)})`)];
    for (const st of comments) {
      if (left.has(st.object)) continue;
      try {
        await s.run(st.sql);
      } catch (err) {
        throw new SchemaError(`${st.object}: its comment does not replay: ${duckdbMessage(err)}`);
      }
      statements.push(st);
    }
    return { statements, warnings, left: leftTables };
  } finally {
    s.close();
  }
}
