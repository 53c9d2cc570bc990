// restore --repo: one snapshot's databases, through the same checked commit as archive restore
// (restore.ts: temp names, sha256 against the recorded value, DuckDB open, .bak, stale WAL).
import { CodecPool } from "../archive/codec-pool.ts";
import { fileSink } from "../extract.ts";
import { NOTHING_RESTORED, restoreDatabases, selectDatabases, type RestoreOptions, type RestoredDatabase } from "../restore.ts";
import { BlobIndex } from "./index-file.ts";
import { lockRepository } from "./locks.ts";
import { readFileBlobs } from "./read.ts";
import { RepositoryDamagedError, type Repository } from "./repository.ts";
import { chunksOf, loadSnapshot, loadSnapshots, resolveSnapshot, type RepoDatabase, type RepoFile, type SnapshotInfo } from "./snapshots.ts";

export interface RepoRestoreResult {
  snapshot: string;
  databases: RestoredDatabase[];
}

export interface OpenedSnapshot {
  snap: SnapshotInfo;
  index: BlobIndex;
  dbs: RepoDatabase[];
}

/**
 * The snapshot `ref` names and its databases that `only` selects, with their chunks' locations
 * (only theirs); every chunk is checked to be indexed before anything is written. Call under a
 * shared lock.
 */
export async function openSnapshot(repo: Repository, ref: string, only: string[] | undefined, consequence = NOTHING_RESTORED): Promise<OpenedSnapshot> {
  const snap = resolveSnapshot(await loadSnapshots(repo), ref, repo.location);
  const dbs = selectDatabases(await loadSnapshot(repo, snap.id), only);
  // Only the locations of the chunks these databases use.
  const index = await BlobIndex.load(repo, chunksOf(dbs));
  for (const db of dbs)
    for (const f of db.files)
      for (const c of f.chunks)
        if (!index.has(c))
          throw new RepositoryDamagedError(repo.location, `snapshot ${snap.short} ${f.name}: chunk ${c.slice(0, 12)}… is in no index file; ${consequence}`);
  return { snap, index, dbs };
}

/** Writes one file of the snapshot to `path` (a new file; `label` names it in errors), checked against its digest. */
export async function writeSnapshotFile(repo: Repository, pool: CodecPool, o: OpenedSnapshot, f: RepoFile, path: string, label: string, onBytes?: (n: number) => void): Promise<void> {
  const sink = fileSink(path, label);
  try {
    await readFileBlobs(repo, o.index, pool, f, `snapshot ${o.snap.short} ${f.name}`, (c) => {
      onBytes?.(c.length);
      return sink.write(c);
    });
  } finally {
    await sink.close();
  }
}

export async function restoreRepoSnapshot(repo: Repository, ref: string, opts: RestoreOptions & { lockWaitSeconds?: number } = {}): Promise<RepoRestoreResult> {
  // Shared: garbage collection (exclusive) cannot delete a pack while it is being read.
  const lock = await lockRepository(repo, { exclusive: false, command: "restore", waitSeconds: opts.lockWaitSeconds });
  const pool = new CodecPool();
  try {
    const opened = await openSnapshot(repo, ref, opts.only);
    const { snap, dbs } = opened;
    const source = `${repo.location} snapshot ${snap.short}`;
    const databases = await restoreDatabases(dbs, source, opts, async (plans) => {
      const total = plans.reduce((n, p) => n + p.db.files.reduce((m, f) => m + f.size_bytes, 0), 0);
      opts.progress?.start(total, `restoring snapshot ${snap.short}`);
      for (const p of plans)
        for (const f of p.db.files)
          await writeSnapshotFile(repo, pool, opened, f, p.temps.get(f.entry)!, p.target, (n) => opts.progress?.advance(n));
    });
    return { snapshot: snap.id, databases };
  } catch (err) {
    if (err instanceof RepositoryDamagedError && !err.message.includes(NOTHING_RESTORED))
      throw new RepositoryDamagedError(repo.location, `${err.message.slice(repo.location.length + 2)}; ${NOTHING_RESTORED}`);
    throw err;
  } finally {
    pool.close();
    await lock.release();
  }
}
