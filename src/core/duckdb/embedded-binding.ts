// Stands in for @duckdb/node-bindings inside the compiled binary (scripts/build.ts redirects the
// import here). The native addon and libduckdb are embedded as file assets; a .node file can only
// be loaded from a real file, and it finds libduckdb through RUNPATH=$ORIGIN, so both are written
// into a per-user cache folder named by their content hash, then loaded from there.
import { closeSync, lstatSync, existsSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";

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
  // A relative path would put a cache below every working directory; the XDG spec says to ignore it.
  if (xdg && isAbsolute(xdg)) roots.push(join(xdg, "duckbak"));
  let home = "";
  try {
    home = process.env.HOME || homedir();
  } catch {
    // no home folder for this user
  }
  if (home && isAbsolute(home)) roots.push(join(home, ".cache", "duckbak"));
  return roots;
}

/**
 * No usable home or cache folder (missing, read-only, noexec): a folder in the temp dir that only
 * this user can write, reused across runs. A name held by anything else (another user's folder, a
 * symlink, a folder others can write) is skipped for the next one: a fresh random folder at each
 * start would leave a copy of the library behind at each start, for each process.
 */
function privateTempRoot(): string {
  const uid = process.getuid?.() ?? 0;
  for (let i = 0; i < 10; i++) {
    const root = join(tmpdir(), i === 0 ? `duckbak-${uid}` : `duckbak-${uid}-${i}`);
    try {
      mkdirSync(root, { mode: 0o700 });
    } catch {
      // exists already: checked below
    }
    const st = lstatSync(root, { throwIfNoEntry: false });
    if (st?.isDirectory() && st.uid === uid && (st.mode & 0o077) === 0) return root;
  }
  throw new Error(`no private folder of duckbak's can be made in ${tmpdir()}`);
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
  const roots = cacheRoots();
  const errors: string[] = [];
  // The next place is tried when a folder cannot be written, and also when the library cannot be
  // loaded from it: a cache on a noexec mount is written fine, then fails in dlopen.
  for (let i = 0; i <= roots.length; i++) {
    let root = roots[i] ?? tmpdir();
    try {
      root = roots[i] ?? privateTempRoot();
      const mod = { exports: {} as unknown };
      process.dlopen(mod, join(extractInto(root, key, files), addon));
      return mod.exports;
    } catch (err) {
      errors.push(`${root}: ${(err as Error).message}`);
    }
  }
  throw new Error(`cannot load DuckDB's native library:\n  ${errors.join("\n  ")}`);
}
