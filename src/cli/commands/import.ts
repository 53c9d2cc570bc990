import type { CAC } from "cac";
import { withProgress } from "../progress.ts";
import { importExport } from "../../core/import.ts";
import { UsageError } from "../../core/errors.ts";
import { parseSeconds } from "../context.ts";
import { color, formatDuration, plural, printJson, printNote } from "../output.ts";

interface ImportFlags {
  into?: string;
  append?: boolean;
  wait?: string;
  json?: boolean;
}

export function registerImport(cli: CAC): void {
  cli
    .command("import <dir>", "Build a new database from an export, or append an (incremental) export to one")
    .option("--into <database>", "The database to create (must not exist), or to append to with --append")
    .option("--append", "Add the export's rows to an existing database; the same export is refused twice")
    .option("--wait <seconds>", "With --append: wait up to this long for a writer to close the database (default 0)")
    .option("--json", "Print the result as JSON")
    .example("duckbak import exports/full --into restored/availability.duckdb")
    .example("duckbak import exports/oct --into data/availability.duckdb --append")
    .action(async (dir: string, flags: ImportFlags) => runImport(dir, flags));
}

async function runImport(dir: string, flags: ImportFlags): Promise<number> {
  if (flags.into === undefined || flags.into === "") throw new UsageError("--into DATABASE is required");
  const result = await withProgress(flags, (progress) =>
    importExport({ dir, into: String(flags.into), append: flags.append === true, waitSeconds: parseSeconds("--wait", flags.wait), progress }),
  );
  if (flags.json) {
    const body = { target: result.target, mode: result.mode, export_id: result.exportId, tables: result.tables, rows: result.rows, complete: result.complete, duration_ms: result.durationMs };
    return printJson("import", body);
  }
  for (const t of result.tables) console.log(`${color.green("ok")}  ${t.schema}.${t.name}  ${t.rows.toLocaleString("en-US")} rows`);
  const how = result.mode === "new" ? "Database created" : "Rows appended";
  console.log(`${how}: ${result.target} (${plural(result.tables.length, "table")}, ${result.rows.toLocaleString("en-US")} rows, ${formatDuration(result.durationMs)})`);
  if (result.mode === "new" && !result.complete) printNote("the export holds only some tables or rows; tables it does not hold were created empty");
  return 0;
}
