import { readdir, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fsError, DuckbakError } from "./errors.ts";
import { parseArchiveName, type Compression } from "./naming.ts";
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
