// Lock-safe capture of databases' file sets: a holder process keeps DuckDB's read lock on every
// database for the whole copy, so no writer can run or checkpoint meanwhile, and a database that
// a writer holds is refused (or waited for) instead of being copied torn.
import { readdir, stat } from "node:fs/promises";
import type { Stats } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { DatabaseLockedError, DuckbakError, fsError } from "./errors.ts";
import { HOLDER_COMMAND, type HolderResult, type HolderTable } from "./duckdb/holder.ts";
import { checkDatabaseFile, duckdbMessage, parseLockHolder, readDuckDBHeader } from "./duckdb/open.ts";
import { isWalFile } from "./naming.ts";
import { selfCommand } from "./self.ts";
import type { FileRole } from "./manifest.ts";
import type { DuckDBFileHeader } from "./duckdb/header.ts";

export interface SnapshotFile {
  role: FileRole;
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
  path: string;
  files: SnapshotFile[];
  readerVersion: string;
  tables: HolderTable[];
  /** The main file's header (read under the lock, so it matches the copy). */
  header: DuckDBFileHeader;
}

export interface SnapshotSet {
  snapshots: DatabaseSnapshot[];
  failures: { path: string; error: DuckbakError }[];
  /** Ends the holder process, which releases every lock. */
  release(): Promise<void>;
}


/**
 * Locks every database that passes the pre-checks, waiting up to `waitSeconds` for locks held by
 * writers. Databases that fail are reported in `failures`; the others stay locked until `release`.
 */
export async function acquireSnapshots(dbPaths: string[], opts: { waitSeconds?: number } = {}): Promise<SnapshotSet> {
  const failures: SnapshotSet["failures"] = [];
  const candidates: string[] = [];
  for (const p of dbPaths.map((d) => resolve(d))) {
    try {
      await checkDatabaseFile(p);
      candidates.push(p);
    } catch (err) {
      failures.push({ path: p, error: err instanceof DuckbakError ? err : fsError(err, p, "read") });
    }
  }
  if (candidates.length === 0) return { snapshots: [], failures, release: async () => {} };

  const waitSeconds = opts.waitSeconds ?? 0;
  const proc = Bun.spawn(selfCommand([HOLDER_COMMAND, String(Math.round(waitSeconds * 1000)), ...candidates]), {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  // Drained from the start: a helper that writes more than a pipe holds must not block.
  const stderr = new Response(proc.stderr).text();
  const release = async () => {
    try {
      proc.stdin.end();
    } catch {
      // already closed
    }
    await proc.exited;
  };
  try {
    const results = await readReport(proc, stderr);
    const snapshots: DatabaseSnapshot[] = [];
    for (const r of results) {
      if (!r.ok) {
        failures.push({
          path: r.path,
          error: r.locked
            ? new DatabaseLockedError(r.path, parseLockHolder(r.error), waitSeconds)
            : new DuckbakError(`${r.path}: cannot open with DuckDB: ${duckdbMessage(r.error)}`),
        });
        continue;
      }
      // Read under the lock: the header and file set cannot change until release.
      try {
        const header = await readDuckDBHeader(r.path);
        snapshots.push({ path: r.path, files: await fileSet(r.path), readerVersion: r.readerVersion, tables: r.tables, header });
      } catch (err) {
        failures.push({ path: r.path, error: err instanceof DuckbakError ? err : fsError(err, r.path, "read") });
      }
    }
    return { snapshots, failures, release };
  } catch (err) {
    await release();
    throw err;
  }
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
