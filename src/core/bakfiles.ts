// The `<file>.bak.<YYYYMMDD_HHMMSS>[_n]` copies restore keeps of the files it replaces: found beside
// the databases, listed by `status`, removed by `cleanup --bak-older-than` once they are old.
import { readdir, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fsError, type DuckbakError } from "./errors.ts";
import { fsyncDir } from "./fsutil.ts";
import { isWalFile } from "./naming.ts";
import type { BackupInfo } from "./list.ts";

export interface BakFile {
  path: string;
  /** The file it was a copy of (`x.duckdb`, `x.duckdb.wal`), in the same folder. */
  of: string;
  /** When restore set it aside: the UTC stamp in its name. */
  createdAt: Date;
  sizeBytes: number;
}

/** `x.duckdb.bak.20240115_120000_2` -> of `x.duckdb`, that instant; null for any other name. */
export function parseBakName(name: string): { of: string; createdAt: Date } | null {
  const m = /^(.+)\.bak\.(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})(?:_\d+)?$/.exec(name);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(2).map(Number) as [number, number, number, number, number, number];
  const createdAt = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  return Number.isNaN(createdAt.getTime()) ? null : { of: m[1]!, createdAt };
}

/** The databases whose folders hold .bak files to look at: those configured and those in the backups. */
export function bakSearchDatabases(backups: BackupInfo[], configured: string[]): string[] {
  return [...new Set([...configured, ...backups.flatMap((b) => b.manifest?.databases.map((d) => d.original_path) ?? [])])];
}

/** .bak files of `databases` (and of their WAL files), oldest first. */
export async function findBakFiles(databases: string[]): Promise<BakFile[]> {
  const byDir = new Map<string, Set<string>>();
  for (const db of databases) byDir.set(dirname(db), (byDir.get(dirname(db)) ?? new Set()).add(basename(db)));
  const out: BakFile[] = [];
  for (const [dir, bases] of byDir) {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const parsed = parseBakName(name);
      if (!parsed || ![...bases].some((b) => parsed.of === b || isWalFile(parsed.of, b))) continue;
      const st = await stat(join(dir, name)).catch(() => null);
      if (st?.isFile()) out.push({ path: join(dir, name), of: join(dir, parsed.of), createdAt: parsed.createdAt, sizeBytes: st.size });
    }
  }
  return out.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.path.localeCompare(b.path));
}

export interface BakCleanup {
  /** Removed (in a dry run: to be removed). */
  removed: BakFile[];
  errors: DuckbakError[];
}

/** Removes the .bak files set aside more than `olderThanMs` before `now`. */
export async function removeOldBakFiles(files: BakFile[], olderThanMs: number, now: Date, dryRun: boolean): Promise<BakCleanup> {
  const old = files.filter((f) => now.getTime() - f.createdAt.getTime() > olderThanMs);
  if (dryRun) return { removed: old, errors: [] };
  const removed: BakFile[] = [];
  const errors: DuckbakError[] = [];
  for (const f of old) {
    try {
      await unlink(f.path);
      removed.push(f);
    } catch (err) {
      errors.push(fsError(err, f.path, "delete"));
    }
  }
  for (const dir of new Set(removed.map((f) => dirname(f.path)))) fsyncDir(dir);
  return { removed, errors };
}
