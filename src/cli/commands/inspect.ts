import type { CAC } from "cac";
import { inspectDatabaseFile, type InspectResult } from "../../core/inspect.ts";
import { color, formatBytes, printJson } from "../output.ts";

export function registerInspect(cli: CAC): void {
  cli
    .command("inspect <file>", "Show a database file's header (DuckDB version, storage format, which DuckDB can open it) without opening it")
    .option("--json", "Print the result as JSON")
    .example("duckbak inspect data/availability.duckdb")
    .action(async (file: string, flags: { json?: boolean }) => runInspect(file, flags));
}

async function runInspect(file: string, flags: { json?: boolean }): Promise<number> {
  const r = await inspectDatabaseFile(file);
  if (flags.json) {
    return printJson("inspect", {
      path: r.path,
      size_bytes: r.sizeBytes,
      creator_version: r.creatorVersion,
      source_id: r.sourceId,
      storage_version: r.storageVersion,
      serialization_compatibility: r.serializationCompatibility,
      opens_with: r.opensWith,
      encrypted: r.encrypted,
      block_alloc_size: r.blockAllocSize,
      vector_size: r.vectorSize,
      checkpoint_iteration: r.checkpointIteration,
      block_count: r.blockCount,
      expected_min_size: r.expectedMinSize,
      truncated: r.truncated,
      checksums: { main: r.checksums.main, database_headers: r.checksums.databaseHeaders },
      active_header: r.activeHeader,
      wal: r.wal && { path: r.wal.path, size_bytes: r.wal.sizeBytes },
    });
  }
  for (const [label, value] of describe(r)) console.log(`${`${label}:`.padEnd(18)}${value}`);
  return 0;
}

const ok = (valid: boolean) => (valid ? "ok" : color.red("INVALID"));

function describe(r: InspectResult): [string, string][] {
  const lines: [string, string][] = [
    ["File", `${r.path} (${formatBytes(r.sizeBytes)})`],
    ["Created by", r.creatorVersion ? `DuckDB ${r.creatorVersion}${r.sourceId ? ` (${r.sourceId})` : ""}` : "unknown (written before DuckDB recorded its version)"],
    ["Storage version", `${r.storageVersion}${r.serializationCompatibility !== null ? `, serialization compatibility ${r.serializationCompatibility}` : ""}`],
    ["Opens with", r.opensWith.startsWith("v") || r.opensWith.startsWith("only") ? `DuckDB ${r.opensWith}` : r.opensWith],
    ["Encrypted", r.encrypted ? "yes" : "no"],
  ];
  if (r.blockAllocSize !== null) {
    lines.push(["Block size", `${formatBytes(r.blockAllocSize)} (${r.blockAllocSize} bytes), vector size ${r.vectorSize}`]);
    lines.push(["Checkpoint", `iteration ${r.checkpointIteration} (database header ${r.activeHeader} of 2)`]);
    const size = r.truncated ? color.red(`TRUNCATED: the file is shorter than the ${formatBytes(r.expectedMinSize!)} they need`) : "ok";
    lines.push(["Blocks", `${r.blockCount} (file size ${size})`]);
  }
  const dbHeaders = r.checksums.databaseHeaders ? `, database headers ${ok(r.checksums.databaseHeaders[0])}/${ok(r.checksums.databaseHeaders[1])}` : "";
  lines.push(["Header checksums", `main ${ok(r.checksums.main)}${dbHeaders}`]);
  lines.push(["WAL", r.wal ? `present, ${formatBytes(r.wal.sizeBytes)} of changes not yet checkpointed into the file` : "none"]);
  return lines;
}
