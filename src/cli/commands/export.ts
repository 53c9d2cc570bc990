import type { CAC } from "cac";
import { withProgress } from "../progress.ts";
import { exportDatabase, type ExportCompression, type ExportFormat } from "../../core/export.ts";
import { ExitCode } from "../../core/errors.ts";
import { ENCRYPTION_KEY_OPTION, asList, keysFor, loadContext, parseSeconds, type CommonFlags } from "../context.ts";
import { color, formatBytes, formatDuration, plural, printJson, printNote, printWarning } from "../output.ts";

interface ExportFlags extends CommonFlags {
  format?: string;
  compression?: string;
  table?: string | string[];
  since?: string;
  dateColumn?: string;
  out?: string;
  wait?: string;
  json?: boolean;
}

export function registerExport(cli: CAC): void {
  cli
    .command("export <database>", "Export a database's tables to Parquet or CSV files, with its schema, for `import`")
    .option("--format <format>", "parquet (default) or csv")
    .option("--compression <codec>", "zstd (Parquet default), snappy (Parquet only), gzip, or none (CSV default)")
    .option("--table <name>", "Export only this table (name or schema.name); repeatable")
    .option("--since <date>", "Incremental: only rows whose --date-column is >= this value")
    .option("--date-column <column>", "The column --since compares with")
    .option("--out <dir>", "Folder to create; must not exist or be empty (default ./<db>_export_YYYYMMDD_HHMMSS, UTC)")
    .option("--wait <seconds>", "Wait up to this long for a database that a writer has open (default 0)")
    .option("--config <file>", "Config file, for the database's encryption key (default: ./duckbak.toml when present)")
    .option(...ENCRYPTION_KEY_OPTION)
    .option("--json", "Print the result as JSON")
    .example("duckbak export data/availability.duckdb --out exports/full")
    .example("duckbak export data/availability.duckdb --since 2024-10-01 --date-column date --out exports/oct")
    .example("duckbak export data/results.duckdb --format csv --table portfolio_trades")
    .action(async (database: string, flags: ExportFlags) => runExport(database, flags));
}

async function runExport(database: string, flags: ExportFlags): Promise<number> {
  const result = await withProgress(flags, (progress) => exportDatabase({
    database,
    progress,
    out: flags.out === undefined ? undefined : String(flags.out),
    format: flags.format === undefined ? undefined : (String(flags.format) as ExportFormat),
    compression: flags.compression === undefined ? undefined : (String(flags.compression) as ExportCompression),
    tables: asList(flags.table),
    since: flags.since === undefined ? undefined : String(flags.since),
    dateColumn: flags.dateColumn === undefined ? undefined : String(flags.dateColumn),
    waitSeconds: parseSeconds("--wait", flags.wait),
    keys: keysFor(flags, loadContext(flags, { backupFolder: false }).config),
  }));
  const m = result.manifest;
  // Tables this DuckDB cannot recreate were left out: the others are exported, the run is partial.
  const code = result.leftOut.length > 0 ? ExitCode.PARTIAL : ExitCode.OK;
  if (flags.json) {
    const body = { path: result.path, size_bytes: result.bytes, duration_ms: result.durationMs, skipped: result.skipped, not_exported: result.leftOut, warnings: result.warnings, manifest: m };
    const leftOut = result.leftOut.map((t) => `${t.schema}.${t.name}`);
    return printJson("export", body, code, leftOut.length ? `not exported (their definition does not replay): ${leftOut.join(", ")}` : undefined);
  }
  for (const w of result.warnings) printWarning(w);
  if (result.skipped.length > 0)
    printNote(`skipped, no column '${m.incremental!.date_column}': ${result.skipped.map((t) => `${t.schema}.${t.name}`).join(", ")}`);
  const size = new Map(m.files.map((f) => [f.path, f.size_bytes]));
  for (const t of m.tables) {
    const range = t.range ? `, ${m.incremental!.date_column} ${t.range.min ?? "-"} .. ${t.range.max ?? "-"}` : "";
    console.log(`${color.green("ok")}  ${t.schema}.${t.name}  ${t.rows.toLocaleString("en-US")} rows${range}  ${t.file}  ${formatBytes(size.get(t.file) ?? 0)}`);
  }
  const rows = m.tables.reduce((n, t) => n + t.rows, 0);
  const what = m.incremental ? `incremental since ${m.incremental.since}` : m.complete ? "full" : "partial";
  console.log(
    `Export created: ${result.path} (${what}, ${m.file_format}/${m.compression}, ${plural(m.tables.length, "table")}, ` +
      `${rows.toLocaleString("en-US")} rows, ${formatBytes(result.bytes)}, ${formatDuration(result.durationMs)})`,
  );
  for (const t of result.leftOut) console.error(`${color.red("NOT EXPORTED")}  ${t.schema}.${t.name} (see the warning above)`);
  return code;
}
