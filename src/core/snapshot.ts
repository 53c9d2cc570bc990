// Lock-safe capture of databases' file sets: a holder process keeps DuckDB's read lock on every
// database for the whole copy, so no writer can run or checkpoint meanwhile, and a database that
// a writer holds is refused (or waited for) instead of being copied torn.
//
// A database with before_backup / after_backup hooks is captured on its own, first: its before
// hook runs, its lock is taken (without loading DuckDB where possible), its files are copied into
// a private folder, the lock is released and its after hook runs; then the copy is opened for the
// manifest's row counts, and the archive or repository is written from it. So the application is
// paused for the length of a file copy only, not for counting rows, compression of other
// databases, upload or cleanup.
import { copyFile, mkdir, readdir, realpath, rm, stat, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import type { Stats } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { childEnv } from "./child-env.ts";
import { DatabaseLockedError, DuckbakError, fsError } from "./errors.ts";
import { hotCopy, unsafeSkips } from "./hot/copy.ts";
import { COPY_CHECK_COMMAND, HOLDER_COMMAND, LOCK_HOLDER_COMMAND, type HolderResult, type HolderTable } from "./duckdb/holder.ts";
import { checkDatabaseFile, duckdbMessage, isKeyError, parseLockHolder, readDuckDBHeader } from "./duckdb/open.ts";
import { EncryptionKeyError, NO_KEYS, missingKeyError, type KeyLookup } from "./keys.ts";
import { databaseNameProblem, isWalFile } from "./naming.ts";
import { tempPath } from "./fsutil.ts";
import { selfCommand } from "./self.ts";
import type { FileRole } from "./manifest.ts";
import type { DuckDBFileHeader } from "./duckdb/header.ts";
import { DEFAULT_HOOK_TIMEOUT_SECONDS, type DatabaseSettings } from "./config.ts";
import { withHooks, type HookRun } from "./hooks.ts";

export interface SnapshotFile {
  role: FileRole;
  /** Where to read it: the database's own file, or its private copy. */
  path: string;
  /** File name beside the database: `x.duckdb`, `x.duckdb.wal`. */
  name: string;
  size: number;
  mtime: Date;
  /** Permission bits (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
}

export interface DatabaseSnapshot {
  /** The path as given (absolute). */
  path: string;
  /** The file read: `path` with symbolic links resolved. */
  realPath?: string;
  files: SnapshotFile[];
  readerVersion: string;
  tables: HolderTable[];
  /** The main file's header (read under the lock, so it matches the copy). */
  header: DuckDBFileHeader;
  /** For a database captured between hooks: how long the lock-holding copy took (the application's pause). */
  pausedMs?: number;
  /**
   * "read-lock": copied under DuckDB's read lock; "crash-consistent": a verified hot copy;
   * "raw-lock": DuckDB could not open it (rawReason), the same fcntl lock was taken without it.
   */
  consistency: "read-lock" | "crash-consistent" | "raw-lock";
  /** Why the embedded DuckDB could not open it, for a raw-lock copy. */
  rawReason?: string;
  /** For a hot copy: attempts made, and why the failed ones were rejected. */
  hot?: { attempts: number; rejected: string[]; walBytesKept: number; walBytesDropped: number };
}

export interface SnapshotOptions {
  /** Seconds to wait for a database whose lock a writer holds. */
  waitSeconds?: number;
  /** Each database's hooks (and other settings); none by default. */
  settings?: (path: string) => Omit<DatabaseSettings, "path">;
  hookTimeoutSeconds?: number;
  /** DUCKBAK_BACKUP for hooks: the archive or snapshot being made. */
  backup?: string;
  /** Where private copies are made (default: the system's temporary folder). */
  tempDir?: string;
  /** Every hook that ran, for the log. */
  onHook?: (run: HookRun) => void;
  /** Retries of a hot copy after the first attempt (databases with `hot`). */
  hotRetries?: number;
  /** Keys of encrypted databases. */
  keys?: KeyLookup;
}

export interface SnapshotSet {
  snapshots: DatabaseSnapshot[];
  failures: { path: string; error: DuckbakError }[];
  /** Ends the holder process, which releases every lock, and removes private copies. */
  release(): Promise<void>;
}

interface Held {
  results: HolderResult[];
  release(): Promise<void>;
}

/**
 * Starts a holder process on `paths` and reads its report; the locks stay until `release`. Keys of
 * encrypted databases go to it on its stdin, never in its argv (which `ps` shows).
 */
async function holdDatabases(paths: string[], waitSeconds: number, keys: Map<string, string>, lockOnly = false): Promise<Held> {
  const proc = Bun.spawn(selfCommand([lockOnly ? LOCK_HOLDER_COMMAND : HOLDER_COMMAND, String(Math.round(waitSeconds * 1000)), ...paths]), {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
    env: childEnv(),
  });
  // Drained from the start: a helper that writes more than a pipe holds must not block.
  const stderr = new Response(proc.stderr).text();
  proc.stdin.write(JSON.stringify(Object.fromEntries(paths.flatMap((p) => (keys.has(p) ? [[p, keys.get(p)!]] : [])))) + "\n");
  proc.stdin.flush();
  const release = async () => {
    try {
      proc.stdin.end();
    } catch {
      // already closed
    }
    await proc.exited;
  };
  try {
    return { results: await readReport(proc, stderr), release };
  } catch (err) {
    await release();
    throw err;
  }
}

function holderFailure(r: Extract<HolderResult, { ok: false }>, waitSeconds: number): DuckbakError {
  if (r.locked) return new DatabaseLockedError(r.path, parseLockHolder(r.error), waitSeconds);
  if (isKeyError(r.error)) return new EncryptionKeyError(`${r.path}: ${duckdbMessage(r.error)}`);
  return new DuckbakError(`${r.path}: cannot open with DuckDB ${r.embedded}: ${duckdbMessage(r.error)}`);
}

/** A holder's lock: DuckDB's own, or the raw fcntl lock on a file DuckDB could not open. */
function lockConsistency(r: Extract<HolderResult, { ok: true }>): Pick<DatabaseSnapshot, "consistency" | "rawReason"> {
  return r.rawReason === undefined ? { consistency: "read-lock" } : { consistency: "raw-lock", rawReason: r.rawReason };
}

const asError = (err: unknown, path: string) => (err instanceof DuckbakError ? err : fsError(err, path, "read"));

/** Copies a file set into `dir`, keeping names and modification times. */
async function copyFiles(files: SnapshotFile[], dir: string): Promise<SnapshotFile[]> {
  await mkdir(dir, { mode: 0o700 });
  const copies: SnapshotFile[] = [];
  for (const f of files) {
    const to = join(dir, f.name);
    await copyFile(f.path, to).catch((err) => {
      throw fsError(err, f.path, "copy");
    });
    await utimes(to, f.mtime, f.mtime);
    const size = (await stat(to)).size;
    // Under the lock nothing may change a file; a size that did is a bug worth stopping for.
    if (size !== f.size) throw new DuckbakError(`${f.path}: changed size while locked (${f.size} -> ${size}); not backed up`);
    copies.push({ ...f, path: to });
  }
  return copies;
}

/**
 * Opens a private copy in a process of its own: `hot`, a hot copy, every column of every table
 * read; `describe`, a copy taken under the lock, row counts (a file DuckDB cannot open gets the
 * holder's raw-lock fallback). The key of an encrypted copy goes on stdin.
 */
async function openCopy(path: string, copy: string, mode: "hot" | "describe", key?: string): Promise<HolderResult> {
  const check = Bun.spawn(selfCommand([COPY_CHECK_COMMAND, mode, copy]), { stdin: "pipe", stdout: "pipe", stderr: "pipe", env: childEnv() });
  check.stdin.write(JSON.stringify(key === undefined ? {} : { key }) + "\n");
  check.stdin.end();
  const [out, err] = await Promise.all([new Response(check.stdout).text(), new Response(check.stderr).text(), check.exited]);
  try {
    return { ...(JSON.parse(out.trim().split("\n").pop()!) as HolderResult), path };
  } catch {
    throw new DuckbakError(`${path}: the ${mode === "hot" ? "hot " : ""}copy could not be checked: ${err.trim().split("\n").pop() || "the check process failed"}; not backed up`);
  }
}

/** A hot copy of a database a writer holds (hot/copy.ts), not yet opened: see checkHotCopy. */
async function takeHotCopy(path: string, dir: string, opts: SnapshotOptions): Promise<DatabaseSnapshot> {
  await mkdir(dir, { mode: 0o700 });
  const copy = await hotCopy(path, dir, opts.hotRetries);
  const main = copy.files[0]!;
  const files: SnapshotFile[] = [];
  for (const [i, f] of copy.files.entries()) {
    const source = await stat(f.source).catch(() => null);
    files.push({
      role: i === 0 ? "main" : "wal",
      path: f.path,
      name: f.name,
      size: f.size,
      mtime: f.mtime,
      mode: (source?.mode ?? 0o600) & 0o7777,
      uid: source?.uid ?? process.getuid?.() ?? 0,
      gid: source?.gid ?? process.getgid?.() ?? 0,
    });
  }
  return {
    path,
    files,
    readerVersion: "",
    tables: [],
    header: await readDuckDBHeader(main.path),
    consistency: "crash-consistent",
    hot: { attempts: copy.attempts, rejected: copy.rejected, walBytesKept: copy.walBytesKept, walBytesDropped: copy.walBytesDropped },
  };
}

/** Opens a hot copy by DuckDB in a process of its own and reads every column of every table, before anything may use it. */
async function checkHotCopy(snap: DatabaseSnapshot): Promise<DatabaseSnapshot> {
  if (unsafeSkips().has("open")) return { ...snap, readerVersion: "unchecked" };
  const r = await openCopy(snap.path, snap.files[0]!.path, "hot");
  if (!r.ok) throw new DuckbakError(`${snap.path}: the hot copy does not open in DuckDB: ${duckdbMessage(r.error)}; not backed up`);
  return { ...snap, readerVersion: r.readerVersion, tables: r.tables };
}

/**
 * One database between its hooks: locked (or, with `hot`, hot-copied), copied into `dir`, released;
 * then, the application back, the copy is opened for the manifest's reader version and row counts
 * (the same bytes as under the lock). The lock is taken without loading DuckDB where possible, so
 * the pause is the holder's start and the file copy.
 */
async function captureDatabase(
  path: string,
  dir: string,
  settings: Omit<DatabaseSettings, "path">,
  keys: Map<string, string>,
  opts: SnapshotOptions,
): Promise<DatabaseSnapshot> {
  const waitSeconds = opts.waitSeconds ?? 0;
  const hooks = {
    beforeBackup: settings.beforeBackup,
    afterBackup: settings.afterBackup,
    timeoutSeconds: opts.hookTimeoutSeconds ?? DEFAULT_HOOK_TIMEOUT_SECONDS,
  };
  const taken = await withHooks(hooks, path, opts.backup ?? "", opts.onHook ?? (() => {}), async (): Promise<DatabaseSnapshot> => {
    const started = performance.now();
    const held = await holdDatabases([path], waitSeconds, keys, true);
    try {
      const r = held.results[0]!;
      if (!r.ok && r.locked && settings.hot) {
        await held.release();
        return { ...(await takeHotCopy(path, dir, opts)), pausedMs: Math.round(performance.now() - started) };
      }
      if (!r.ok) throw holderFailure(r, waitSeconds);
      const header = await readDuckDBHeader(path);
      const files = await copyFiles(await fileSet(path), dir);
      const pausedMs = Math.round(performance.now() - started);
      return { path, files, readerVersion: "", tables: [], header, pausedMs, consistency: "read-lock" };
    } finally {
      await held.release();
    }
  });
  if (taken.consistency === "crash-consistent") return checkHotCopy(taken);
  const r = await openCopy(path, taken.files[0]!.path, "describe", keys.get(path));
  if (!r.ok) throw holderFailure(r, 0);
  return { ...taken, readerVersion: r.readerVersion, tables: r.tables, ...lockConsistency(r) };
}

/**
 * Locks every database that passes the pre-checks, waiting up to `waitSeconds` for locks held by
 * writers. Databases that fail are reported in `failures`; the others stay locked (or, with hooks,
 * copied) until `release`.
 */
export async function acquireSnapshots(dbPaths: string[], opts: SnapshotOptions = {}): Promise<SnapshotSet> {
  const failures: SnapshotSet["failures"] = [];
  const plain: string[] = [];
  const captured: { path: string; settings: Omit<DatabaseSettings, "path"> }[] = [];
  const order = dbPaths.map((d) => resolve(d));
  // A database given through a symbolic link is read at its real path: DuckDB, and so its WAL
  // (`<real>.wal`), live there. It is still reported and recorded under the path given.
  const given = new Map<string, string>();
  const keys = new Map<string, string>();
  for (const p of order) {
    try {
      const nameProblem = databaseNameProblem(basename(p));
      // Refused here, not at restore: verify and restore would reject the archive's entries.
      if (nameProblem) throw new DuckbakError(`${JSON.stringify(p).slice(1, -1)}: its file name ${nameProblem}, which an archive cannot hold; rename the file`);
      const real = await realpath(p).catch(() => p);
      const twin = given.get(real);
      if (twin !== undefined) throw new DuckbakError(`${p}: the same database file as ${twin} (both are ${real}); backed up once`);
      given.set(real, p);
      await checkDatabaseFile(real);
      if ((await readDuckDBHeader(real)).encrypted) {
        const key = await (opts.keys ?? NO_KEYS)(p);
        if (key === null) throw missingKeyError(p);
        keys.set(real, key);
      }
      const settings = opts.settings?.(p) ?? {};
      if (settings.beforeBackup || settings.afterBackup) captured.push({ path: real, settings });
      else plain.push(real);
    } catch (err) {
      failures.push({ path: p, error: asError(err, p) });
    }
  }
  const snapshots: DatabaseSnapshot[] = [];
  let copies: string | null = null;
  let nextCopy = 0;
  // Private folders for copies, under one temporary name that the next run's
  // removeStaleTemporaries clears after a crash.
  const copyDir = async () => {
    if (!copies) {
      copies = tempPath(join(opts.tempDir ?? tmpdir(), "copies"));
      await mkdir(copies, { mode: 0o700 });
    }
    return join(copies, String(nextCopy++));
  };
  let held: Held | null = null;
  const release = async () => {
    await held?.release();
    if (copies) await rm(copies, { recursive: true, force: true });
  };
  try {
    // Hooked databases first, one at a time, while no other lock is held.
    for (const { path, settings } of captured) {
      try {
        snapshots.push(await captureDatabase(path, await copyDir(), settings, keys, opts));
      } catch (err) {
        failures.push({ path, error: asError(err, path) });
      }
    }
    if (plain.length > 0) {
      const waitSeconds = opts.waitSeconds ?? 0;
      held = await holdDatabases(plain, waitSeconds, keys);
      for (const r of held.results) {
        if (!r.ok && r.locked && opts.settings?.(given.get(r.path) ?? r.path).hot) {
          try {
            snapshots.push(await checkHotCopy(await takeHotCopy(r.path, await copyDir(), opts)));
          } catch (err) {
            failures.push({ path: r.path, error: asError(err, r.path) });
          }
          continue;
        }
        if (!r.ok) {
          failures.push({ path: r.path, error: holderFailure(r, waitSeconds) });
          continue;
        }
        // Read under the lock: the header and file set cannot change until release.
        try {
          const header = await readDuckDBHeader(r.path);
          snapshots.push({ path: r.path, files: await fileSet(r.path), readerVersion: r.readerVersion, tables: r.tables, header, ...lockConsistency(r) });
        } catch (err) {
          failures.push({ path: r.path, error: asError(err, r.path) });
        }
      }
    }
  } catch (err) {
    await release();
    throw err;
  }
  for (const snap of snapshots) {
    const path = given.get(snap.path) ?? snap.path;
    const [realBase, base] = [basename(snap.path), basename(path)];
    // Side files are named after the database as given: `link.duckdb.wal` beside `link.duckdb`.
    if (realBase !== base) snap.files = snap.files.map((f) => ({ ...f, name: base + f.name.slice(realBase.length) }));
    snap.realPath = snap.path;
    snap.path = path;
  }
  for (const f of failures) f.path = given.get(f.path) ?? f.path;
  const rank = (p: string) => order.indexOf(p);
  snapshots.sort((a, b) => rank(a.path) - rank(b.path));
  failures.sort((a, b) => rank(a.path) - rank(b.path));
  return { snapshots, failures, release };
}

async function readReport(proc: Bun.Subprocess<"pipe", "pipe", "pipe">, stderr: Promise<string>): Promise<HolderResult[]> {
  const reader = proc.stdout.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (!text.includes("\n")) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  reader.releaseLock();
  try {
    return JSON.parse(text.split("\n")[0]!) as HolderResult[];
  } catch {
    proc.kill();
    const last = (await stderr).trim().split("\n").pop() ?? "";
    throw new DuckbakError(`snapshot helper failed: ${last || `exit code ${await proc.exited}`}`);
  }
}

/** The main file and its `<db>.wal*` side files, as they are while the lock is held. */
async function fileSet(path: string): Promise<SnapshotFile[]> {
  const dir = dirname(path);
  const base = basename(path);
  const main = await stat(path);
  const meta = (st: Stats) => ({ size: st.size, mtime: st.mtime, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid });
  const files: SnapshotFile[] = [{ role: "main", path, name: base, ...meta(main) }];
  const names = (await readdir(dir)).filter((n) => isWalFile(n, base)).sort();
  for (const name of names) {
    const p = join(dir, name);
    const st = await stat(p).catch(() => null);
    if (st?.isFile()) files.push({ role: "wal", path: p, name, ...meta(st) });
  }
  return files;
}
