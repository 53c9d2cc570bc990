// Stands in for @duckdb/node-bindings inside the compiled binary (scripts/build.ts redirects the
// import here). The native addon and libduckdb are embedded as file assets; a .node file can only
// be loaded from a real file, and it finds libduckdb through RUNPATH=$ORIGIN, so both are written
// into a per-user cache folder named by their content hash, then loaded from there.
import { closeSync, lstatSync, existsSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";

export interface EmbeddedFile {
  name: string;
  /** Path inside the binary's embedded file system. */
  asset: string;
  /** Hex digest (Bun.hash, wyhash) of the content, computed at build time. */
  hash: string;
}

function contentHash(bytes: Uint8Array): string {
  return Bun.hash(bytes).toString(16);
}

function isIntact(dir: string, files: EmbeddedFile[]): boolean {
  try {
    return files.every((f) => contentHash(readFileSync(join(dir, f.name))) === f.hash);
  } catch {
    return false;
  }
}

function cacheRoots(): string[] {
  const roots: string[] = [];
  const xdg = process.env.XDG_CACHE_HOME;
  if (xdg) roots.push(join(xdg, "duckbak"));
  let home = "";
  try {
    home = process.env.HOME || homedir();
  } catch {
    // no home folder for this user
  }
  if (home) roots.push(join(home, ".cache", "duckbak"));
  return roots;
}

/**
 * No usable home or cache folder (missing, read-only): a folder in the temp dir that only this
 * user can write, reused across runs; a fresh one when someone else's object has that name.
 */
function privateTempRoot(): string {
  const uid = process.getuid?.() ?? 0;
  const root = join(tmpdir(), `duckbak-${uid}`);
  try {
    mkdirSync(root, { mode: 0o700 });
  } catch {
    // exists already: checked below
  }
  const st = lstatSync(root, { throwIfNoEntry: false });
  if (st?.isDirectory() && st.uid === uid && (st.mode & 0o077) === 0) return root;
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
  const key = contentHash(new TextEncoder().encode(files.map((f) => `${f.name}:${f.hash}`).join(",")));
  let dir: string | null = null;
  const errors: string[] = [];
  for (const root of cacheRoots()) {
    try {
      dir = extractInto(root, key, files);
      break;
    } catch (err) {
      errors.push(`${root}: ${(err as Error).message}`);
    }
  }
  dir ??= extractInto(privateTempRoot(), key, files);
  const mod = { exports: {} as unknown };
  process.dlopen(mod, join(dir, addon));
  return mod.exports;
}
