// Stands in for @duckdb/node-bindings inside the compiled binary (scripts/build.ts redirects the
// import here). The native addon and DuckDB's library are embedded as file assets; a .node file can
// only be loaded from a real file, and it finds the library beside itself (Linux: RUNPATH=$ORIGIN,
// macOS: @loader_path, Windows: Bun loads addons with LOAD_WITH_ALTERED_SEARCH_PATH, so DLLs are
// searched in the addon's folder first), so both are written into a per-user cache folder named by
// their content hash (src/platform/native.ts says where, per OS), then loaded from there.
import { closeSync, lstatSync, existsSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, renameSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { privateFolderUsable, privateTempNames, userCacheRoots, type Platform } from "../../platform/native.ts";

export interface EmbeddedFile {
  name: string;
  /** Path inside the binary's embedded file system. */
  asset: string;
  /** `fileHash` of the content, computed at build time. */
  hash: string;
}

const HASH_CHUNK = 1024 * 1024;

/** Reads up to `buf.length` bytes at `pos`; fewer only at the end of the file. */
function readFull(fd: number, buf: Uint8Array, pos: number): number {
  let n = 0;
  for (let r: number; n < buf.length && (r = readSync(fd, buf, n, buf.length - n, pos + n)) > 0; ) n += r;
  return n;
}

/**
 * Bun.hash (wyhash) chained over 1 MiB chunks. Every start checks the 70 MB library with it, in
 * each process that loads DuckDB: hashing it whole would hold it in memory (+70 MB RSS) to do so.
 */
export function fileHash(path: string): string {
  const fd = openSync(path, "r");
  const buf = new Uint8Array(HASH_CHUNK);
  let hash: number | bigint = 0;
  try {
    for (let pos = 0, n: number; (n = readFull(fd, buf, pos)) > 0; pos += n) hash = Bun.hash(buf.subarray(0, n), hash);
  } finally {
    closeSync(fd);
  }
  return hash.toString(16);
}

function isIntact(dir: string, files: EmbeddedFile[]): boolean {
  try {
    return files.every((f) => fileHash(join(dir, f.name)) === f.hash);
  } catch {
    return false;
  }
}

/**
 * No usable home or cache folder (missing, read-only, noexec): a folder in the temp dir that only
 * this user can write, reused across runs. A name held by anything else (another user's folder, a
 * symlink, a folder others can write) is skipped for the next one, which is reused in turn: a
 * random folder leaves a copy of the library behind at each start, so it is the last resort.
 */
function privateTempRoot(platform: Platform): string {
  const uid = process.getuid?.();
  for (const name of privateTempNames(platform, uid)) {
    const root = join(tmpdir(), name);
    try {
      mkdirSync(root, { mode: 0o700 });
    } catch {
      // exists already: checked below
    }
    const st = lstatSync(root, { throwIfNoEntry: false });
    if (st && privateFolderUsable(platform, { isDirectory: st.isDirectory(), isSymbolicLink: st.isSymbolicLink(), uid: st.uid, mode: st.mode }, uid ?? 0)) return root;
  }
  return mkdtempSync(join(tmpdir(), "duckbak-"));
}

/** Writes the files into `<root>/<key>` atomically (a temp folder renamed into place). */
function extractInto(root: string, key: string, files: EmbeddedFile[]): string {
  const dir = join(root, key);
  if (existsSync(dir) && isIntact(dir, files)) return dir;
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const staging = mkdtempSync(join(root, `.${key}.tmp-`));
  try {
    for (const f of files) {
      const fd = openSync(join(staging, f.name), "w", 0o755);
      try {
        writeSync(fd, readFileSync(f.asset));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    try {
      renameSync(staging, dir);
    } catch {
      // Lost a race with another first run, or a damaged folder is in the way.
      if (isIntact(dir, files)) return dir;
      rmSync(dir, { recursive: true, force: true });
      renameSync(staging, dir);
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  if (!isIntact(dir, files)) throw new Error(`${dir}: extracted DuckDB library does not match its checksum`);
  return dir;
}

export function loadEmbeddedBinding(files: EmbeddedFile[], addon: string): unknown {
  const key = Bun.hash(files.map((f) => `${f.name}:${f.hash}`).join(",")).toString(16);
  const platform = process.platform as Platform;
  const roots = userCacheRoots();
  const errors: string[] = [];
  // The next place is tried when a folder cannot be written, and also when the library cannot be
  // loaded from it: a cache on a noexec mount is written fine, then fails in dlopen.
  for (let i = 0; i <= roots.length; i++) {
    let root = roots[i] ?? tmpdir();
    try {
      root = roots[i] ?? privateTempRoot(platform);
      const mod = { exports: {} as unknown };
      process.dlopen(mod, join(extractInto(root, key, files), addon));
      return mod.exports;
    } catch (err) {
      errors.push(`${root}: ${(err as Error).message}`);
    }
  }
  throw new Error(`cannot load DuckDB's native library:\n  ${errors.join("\n  ")}`);
}
