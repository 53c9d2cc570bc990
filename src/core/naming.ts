// Archive and entry naming: pure functions, no I/O.

export type Compression = "gzip" | "zstd" | "none";
export const COMPRESSIONS: readonly Compression[] = ["gzip", "zstd", "none"];

const EXTENSIONS: Record<Compression, string> = { gzip: ".tar.gz", zstd: ".tar.zst", none: ".tar" };
export const MANIFEST_NAME = "backup_metadata.json";

export function archiveExtension(c: Compression): string {
  return EXTENSIONS[c];
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** YYYYMMDD_HHMMSS in UTC, so that names sort the same on every host. */
export function utcStamp(at: Date): string {
  return (
    `${at.getUTCFullYear()}${pad(at.getUTCMonth() + 1)}${pad(at.getUTCDate())}` +
    `_${pad(at.getUTCHours())}${pad(at.getUTCMinutes())}${pad(at.getUTCSeconds())}`
  );
}

/** The seed's name: backup_YYYYMMDD_HHMMSS. */
export function defaultStem(at: Date): string {
  return `backup_${utcStamp(at)}`;
}

/**
 * DuckDB's files beside a database `x`: `x.wal`, and since v1.5 `x.wal.checkpoint` (commits made
 * during a checkpoint; a crash can leave it) and `x.wal.recovery` (written while recovering).
 */
export const WAL_SUFFIXES = [".wal", ".wal.checkpoint", ".wal.recovery"] as const;

/**
 * Whether `name` is one of DuckDB's WAL files of the database file `base`. Only DuckDB's own names
 * count: `x.duckdb.wal.old`, restore's `.bak.<timestamp>` copies and a database named
 * `x.duckdb.wal.y.duckdb` are never taken for a live WAL.
 */
export function isWalFile(name: string, base: string): boolean {
  return WAL_SUFFIXES.some((suffix) => name === base + suffix);
}

/** Stems tried in turn for a default name: a second backup in the same second gets `_2`, … */
export function* stemCandidates(stem: string): Generator<string> {
  yield stem;
  for (let i = 2; ; i++) yield `${stem}_${i}`;
}

/** Splits an archive file name into stem and compression; null for files duckbak did not write. */
export function parseArchiveName(file: string): { stem: string; compression: Compression } | null {
  if (file.startsWith(".")) return null;
  for (const c of COMPRESSIONS) {
    const ext = EXTENSIONS[c];
    if (file.endsWith(ext) && file.length > ext.length) return { stem: file.slice(0, -ext.length), compression: c };
  }
  return null;
}

/** A --name must be a plain file-name stem: it becomes part of a path in the backup folder. */
export function validateStem(stem: string): string | null {
  if (stem.length === 0) return "is empty";
  if (stem.length > 200) return "is longer than 200 characters";
  if (stem.startsWith(".")) return "must not start with a dot";
  if (/[/\\\0]/.test(stem)) return "must not contain a slash, a backslash or NUL";
  if (/[\x00-\x1f\x7f]/.test(stem)) return "must not contain control characters";
  if (parseArchiveName(stem) !== null) return "must not end in .tar, .tar.gz or .tar.zst (give the stem only)";
  return null;
}

/**
 * Entry names for a set of database files: the file name when it is unique, otherwise a numbered
 * prefix, so that `a/results.duckdb` and `b/results.duckdb` both fit at the archive root.
 */
export function assignEntryNames(baseNames: string[]): string[] {
  const taken = new Set<string>([MANIFEST_NAME]);
  return baseNames.map((base) => {
    let name = base;
    const names = (n: string) => [n, ...WAL_SUFFIXES.map((suffix) => n + suffix)];
    for (let i = 2; names(name).some((n) => taken.has(n)); i++) name = `${i}-${base}`;
    for (const n of names(name)) taken.add(n);
    return name;
  });
}

const CONTROL_NAMES: Record<string, string> = { "\n": "a newline", "\r": "a carriage return", "\t": "a tab" };

/**
 * Why `name` cannot be an archive entry, or null when it can. The one rule for both sides: backup
 * refuses a database whose file name breaks it (so it never writes an archive that verify and
 * restore would reject), and the reader refuses such entries: plain file names at the archive
 * root; anything with a path separator, `..`, a drive letter or a control character could point
 * a write outside its target, or is not a name every platform can give back.
 */
export function entryNameProblem(name: string): string | null {
  if (name.length === 0 || name === "." || name === "..") return "is not a file name";
  if (name.length > 255) return "is longer than 255 characters";
  const control = /[\x00-\x1f\x7f]/.exec(name);
  if (control) return `contains ${CONTROL_NAMES[control[0]] ?? `a control character (0x${control[0].charCodeAt(0).toString(16).padStart(2, "0")})`}`;
  const sep = /[/\\:]/.exec(name);
  if (sep) return `contains '${sep[0]}'`;
  return null;
}

export function isSafeEntryName(name: string): boolean {
  return entryNameProblem(name) === null;
}

/** Room for assignEntryNames' `<n>-` prefix and the longest WAL suffix, within the 255 a reader accepts. */
const MAX_DATABASE_NAME = 255 - 4 - Math.max(...WAL_SUFFIXES.map((s) => s.length));

/** Why a database file named `base` cannot be backed up (its entries would be refused), or null. */
export function databaseNameProblem(base: string): string | null {
  const problem = entryNameProblem(base);
  if (problem) return problem;
  return base.length > MAX_DATABASE_NAME ? `is longer than ${MAX_DATABASE_NAME} characters (its archive entries and WAL files need the rest)` : null;
}
