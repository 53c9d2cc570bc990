import { readdir, stat } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { existsSync, readdirSync } from "node:fs";
import { didYouMean } from "./suggest.ts";
import { fsError, DuckbakError, ArchiveNotFoundError } from "./errors.ts";
import { archiveExtension, COMPRESSIONS, parseArchiveName, type Compression } from "./naming.ts";
import { readArchiveManifest } from "./archive/reader.ts";
import type { Manifest } from "./manifest.ts";

export interface BackupInfo {
  /** The stem: what `verify` and `restore` take. */
  name: string;
  path: string;
  file: string;
  sizeBytes: number;
  compression: Compression;
  /** From the manifest; null when the archive could not be read. */
  createdAt: Date | null;
  manifest: Manifest | null;
  /** Why the archive could not be read, when it could not. */
  error: string | null;
}

/**
 * Every archive in `backupDir`, newest first by the manifest's timestamp (never by file name or
 * modification time); unreadable archives are listed, with their error, after the readable ones.
 * Files duckbak did not write are ignored.
 */
export async function listBackups(backupDir: string): Promise<BackupInfo[]> {
  const dir = resolve(backupDir);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw fsError(err, dir, "list");
  }
  const out: BackupInfo[] = [];
  for (const file of names) {
    const parsed = parseArchiveName(file);
    if (!parsed) continue;
    const path = join(dir, file);
    const st = await stat(path).catch(() => null);
    if (!st?.isFile()) continue;
    const info: BackupInfo = { name: parsed.stem, path, file, sizeBytes: st.size, compression: parsed.compression, createdAt: null, manifest: null, error: null };
    try {
      info.manifest = await readArchiveManifest(path, parsed.compression);
      info.createdAt = new Date(info.manifest.timestamp);
    } catch (err) {
      info.error = err instanceof DuckbakError ? err.message : String(err);
    }
    out.push(info);
  }
  return out.sort(
    (a, b) => (b.createdAt?.getTime() ?? -Infinity) - (a.createdAt?.getTime() ?? -Infinity) || b.name.localeCompare(a.name),
  );
}

export interface ArchiveRef {
  name: string;
  path: string;
  compression: Compression;
}

/** The archives named `<stem>.tar[.gz|.zst]` in `dir`. */
export function archivesOfStem(dir: string, stem: string): ArchiveRef[] {
  return COMPRESSIONS.map((c) => ({ name: stem, path: join(dir, stem + archiveExtension(c)), compression: c })).filter((m) => existsSync(m.path));
}

/**
 * What `verify NAME`, `restore NAME` and `diff NAME` accept: a name shown by `list` (looked up in
 * `backupDir`), or a path to an archive file.
 */
export function resolveBackupRef(ref: string, backupDir: string): ArchiveRef {
  const asFile = parseArchiveName(basename(ref));
  if (asFile && existsSync(ref)) return { name: asFile.stem, path: resolve(ref), compression: asFile.compression };
  const dir = resolve(backupDir);
  // The archive's file name as `ls` of the folder shows it (backup_x.tar.gz) names it too.
  if (asFile && basename(ref) === ref && existsSync(join(dir, ref))) return { name: asFile.stem, path: join(dir, ref), compression: asFile.compression };
  const matches = archivesOfStem(dir, ref);
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) throw new DuckbakError(`${ref}: ambiguous, several archives have that name: ${matches.map((m) => basename(m.path)).join(", ")}`);
  const names = (() => {
    try {
      return readdirSync(dir).flatMap((n) => parseArchiveName(n)?.stem ?? []);
    } catch {
      return [];
    }
  })();
  throw new ArchiveNotFoundError(ref, dir, didYouMean(ref, names));
}
