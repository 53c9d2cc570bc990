// verify: proves a backup restores as it was taken. In order, per database: (1) the archive reads
// to its end, every byte matches the integrity trailer, every entry is in the manifest and each
// file's sha256 matches; (2) DuckDB's own block checksums, computed without DuckDB; (3) the
// database, restored into a private folder, opens in DuckDB and every column of every table reads,
// with the row counts of the manifest.
import { join } from "node:path";
import type { ProgressSink } from "./progress.ts";
import { scanArchive, type ArchiveScan, type FileScan } from "./archive/reader.ts";
import { fileSink, withTempDir } from "./extract.ts";
import { duckdbMessage, openReadOnly, readDuckDBHeader, BOUNDED_MEMORY } from "./duckdb/open.ts";
import { EMBEDDED_DUCKDB, embeddedCannotOpen } from "./duckdb/compat.ts";
import { quoteIdent } from "./duckdb/sql.ts";
import { blockDamage } from "./duckdb/blocks.ts";
import { EncryptionKeyError, NO_KEYS, keyForFile, type KeyLookup } from "./keys.ts";
import type { ArchiveRef } from "./list.ts";
import type { DatabaseFacts, Manifest, ManifestDatabase } from "./manifest.ts";

export type CheckState = "ok" | "failed" | "skipped";

export interface DatabaseVerifyResult {
  name: string;
  entry: string;
  originalPath: string;
  ok: boolean;
  checks: { checksum: CheckState; blocks: CheckState; open: CheckState };
  /** One line each; empty when ok. */
  problems: string[];
  /** Why a check was skipped (not damage), e.g. "open check SKIPPED: needs DuckDB ≥ v2.0.0; …". */
  notes: string[];
  /** File offsets of blocks whose checksum is wrong. */
  badBlocks: number[];
  tables: { schema: string; name: string; expectedRows: number; rows: number | null }[];
}

export interface VerifyResult {
  archive: string;
  name: string;
  ok: boolean;
  quick: boolean;
  /** Damage to the archive as a whole (affects every database in it). */
  problems: string[];
  manifest: Manifest | null;
  databases: DatabaseVerifyResult[];
}

/** Checks 1 and 2 for one database, from a completed scan. */
export function judgeDatabase(scan: ArchiveScan, db: ManifestDatabase, blocks: boolean): DatabaseVerifyResult {
  const r: DatabaseVerifyResult = {
    name: db.name,
    entry: db.entry,
    originalPath: db.original_path,
    ok: true,
    checks: { checksum: "ok", blocks: blocks ? "ok" : "skipped", open: "skipped" },
    problems: [],
    notes: [],
    badBlocks: [],
    tables: db.tables.map((t) => ({ schema: t.schema, name: t.name, expectedRows: t.rows, rows: null })),
  };
  const fail = (check: keyof DatabaseVerifyResult["checks"], problem: string) => {
    r.ok = false;
    r.checks[check] = "failed";
    r.problems.push(problem);
  };
  if (scan.problems.length) fail("checksum", `archive damaged: ${scan.problems[0]}`);
  for (const f of db.files) {
    const seen: FileScan | undefined = scan.files.get(f.entry);
    if (!seen) {
      if (!scan.problems.length) fail("checksum", `${f.entry}: missing from the archive`);
      continue;
    }
    if (seen.sha256 !== f.sha256) fail("checksum", `${f.entry}: sha256 ${seen.sha256.slice(0, 12)}… differs from the manifest's ${f.sha256.slice(0, 12)}…`);
    if (!blocks || f.role !== "main") continue;
    if (seen.blockError) fail("blocks", `${f.entry}: ${seen.blockError}`);
    const b = seen.blocks;
    if (!b) continue;
    r.badBlocks = b.badBlocks.map((x) => x.offset);
    const known = db.source_blocks?.state === "damaged";
    for (const problem of blockDamage(b)) fail("blocks", known ? sourceDamage(f.entry, problem, "archive") : `${f.entry}: ${problem}`);
  }
  return r;
}

/**
 * A problem of a database's main file (`entry`) that was already in the source when it was backed
 * up (its source_blocks are "damaged"): the backup (`holder`) is faithful, yet does not verify.
 */
export function sourceDamage(entry: string, problem: string, holder: "archive" | "snapshot"): string {
  return `${entry}: ${problem} (the source was already damaged when backed up; the ${holder} holds it as it was)`;
}

/** A repository snapshot's database: the damage its source had when backed up, as recorded (no block is read). */
export function recordedSourceDamage(db: DatabaseFacts): string[] {
  return db.source_blocks?.state === "damaged" ? db.source_blocks.problems.map((p) => sourceDamage(db.entry, p, "snapshot")) : [];
}

/** Check 3: open the restored copy read-only and read every column of every table. */
/**
 * Why the embedded DuckDB cannot open a file whose bytes are verified, when that is a matter of
 * format rather than damage: its header, else the manifest's record that the source did not open
 * either. null: an open failure is damage.
 */
export async function unopenableReason(path: string, db: DatabaseFacts): Promise<string | null> {
  const header = await readDuckDBHeader(path).catch(() => null);
  const byHeader = header && embeddedCannotOpen(header);
  if (byHeader) return byHeader;
  if (db.consistency === "raw-lock")
    return `DuckDB could not open the source either when it was backed up (${db.duckdb.open_error ?? "no reason recorded"}); this duckbak embeds DuckDB ${EMBEDDED_DUCKDB.version}`;
  return null;
}

async function openAndRead(path: string, r: DatabaseVerifyResult, db: ManifestDatabase, keys: KeyLookup, progress?: ProgressSink): Promise<void> {
  let instance;
  let con;
  try {
    instance = await openReadOnly(path, await keyForFile(path, keys, r.originalPath), BOUNDED_MEMORY);
    con = await instance.connect();
  } catch (err) {
    instance?.closeSync();
    if (err instanceof EncryptionKeyError) {
      r.ok = false;
      r.checks.open = "failed";
      r.problems.push(err.message);
      return;
    }
    const why = await unopenableReason(path, db);
    if (why) {
      r.notes.push(`open check SKIPPED: ${why}`);
      return;
    }
    r.ok = false;
    r.checks.open = "failed";
    r.problems.push(`${r.entry}: DuckDB ${EMBEDDED_DUCKDB.version} cannot open the restored copy: ${duckdbMessage(err)}`);
    return;
  }
  try {
    const present = (
      await con.runAndReadAll("SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() AND NOT temporary")
    ).getRows().map(([s, t]) => `${s}.${t}`);
    // A raw-lock copy's tables were never read, so there is nothing to compare with.
    if (db.consistency !== "raw-lock")
      for (const key of present)
        if (!r.tables.some((t) => `${t.schema}.${t.name}` === key)) r.problems.push(`${r.entry}: table ${key} is not in the manifest`);
    // Reading every column can take as long as the archive read: its own phase, counted in rows.
    progress?.start(r.tables.reduce((n, t) => n + t.expectedRows, 0), `verifying ${r.entry}: reading tables`, "rows");
    for (const t of r.tables) {
      try {
        // sum(hash(COLUMNS(*))) makes DuckDB read and decode every column of every row.
        const rows = (await con.runAndReadAll(`SELECT count(*), sum(hash(COLUMNS(*))) FROM ${quoteIdent(t.schema)}.${quoteIdent(t.name)}`)).getRows();
        t.rows = Number(rows[0]![0]);
        if (t.rows !== t.expectedRows) r.problems.push(`${r.entry}: ${t.schema}.${t.name} has ${t.rows} rows, the manifest says ${t.expectedRows}`);
      } catch (err) {
        r.problems.push(`${r.entry}: reading ${t.schema}.${t.name} failed: ${duckdbMessage(err)}`);
      }
      progress?.advance(t.expectedRows);
    }
  } finally {
    con.closeSync();
    instance.closeSync();
  }
  r.checks.open = r.problems.length ? "failed" : "ok";
  if (r.problems.length) r.ok = false;
}

export async function verifyBackup(
  ref: ArchiveRef,
  opts: { quick?: boolean; tempParent?: string; progress?: ProgressSink; keys?: KeyLookup } = {},
): Promise<VerifyResult> {
  const quick = opts.quick ?? false;
  const run = async (dir: string | null): Promise<VerifyResult> => {
    const scan = await scanArchive(ref, {
      blocks: !quick,
      sink: dir ? async (f) => fileSink(join(dir, f.entry)) : undefined,
      progress: opts.progress,
      phase: `verifying ${ref.name}`,
    });
    const databases = (scan.manifest?.databases ?? []).map((db) => judgeDatabase(scan, db, !quick));
    if (dir) for (const r of databases) if (r.ok) await openAndRead(join(dir, r.entry), r, scan.manifest!.databases.find((d) => d.entry === r.entry)!, opts.keys ?? NO_KEYS, opts.progress);
    const ok = scan.manifest !== null && scan.problems.length === 0 && databases.every((d) => d.ok);
    return { archive: ref.path, name: ref.name, ok, quick, problems: scan.problems, manifest: scan.manifest, databases };
  };
  return quick ? run(null) : withTempDir(run, opts.tempParent);
}
