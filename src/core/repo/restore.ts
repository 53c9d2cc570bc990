// restore --repo: one snapshot's databases, through the same checked commit as archive restore
// (restore.ts: temp names, sha256 against the recorded value, DuckDB open, .bak, stale WAL).
import { CodecPool } from "../archive/codec-pool.ts";
import { fileSink } from "../extract.ts";
import { NOTHING_RESTORED, restoreDatabases, selectDatabases, type RestoreOptions, type RestoredDatabase } from "../restore.ts";
import { BlobIndex } from "./index-file.ts";
import { lockRepository } from "./locks.ts";
import { readFileBlobs } from "./read.ts";
import { RepositoryDamagedError, type Repository } from "./repository.ts";
import { loadSnapshot, loadSnapshots, resolveSnapshot, type RepoDatabase } from "./snapshots.ts";

export interface RepoRestoreResult {
  snapshot: string;
  databases: RestoredDatabase[];
}

export async function restoreRepoSnapshot(repo: Repository, ref: string, opts: RestoreOptions & { lockWaitSeconds?: number } = {}): Promise<RepoRestoreResult> {
  // Shared: garbage collection (exclusive) cannot delete a pack while it is being read.
  const lock = await lockRepository(repo, { exclusive: false, command: "restore", waitSeconds: opts.lockWaitSeconds });
  const pool = new CodecPool();
  try {
    const snap = resolveSnapshot(await loadSnapshots(repo), ref, repo.location);
    const index = await BlobIndex.load(repo);
    const dbs = selectDatabases(await loadSnapshot(repo, snap.id), opts.only);
    // Every chunk must be indexed before anything is written.
    for (const db of dbs)
      for (const f of db.files)
        for (const c of f.chunks)
          if (!index.blobs.has(c))
            throw new RepositoryDamagedError(repo.location, `snapshot ${snap.short} ${f.name}: chunk ${c.slice(0, 12)}… is in no index file; ${NOTHING_RESTORED}`);
    const source = `${repo.location} snapshot ${snap.short}`;
    const databases = await restoreDatabases(dbs, source, opts, async (plans) => {
      for (const p of plans) {
        for (const f of (p.db as RepoDatabase).files) {
          const sink = fileSink(p.temps.get(f.entry)!, p.target);
          try {
            await readFileBlobs(repo, index, pool, f, `snapshot ${snap.short} ${f.name}`, (c) => sink.write(c), false);
          } finally {
            await sink.close();
          }
        }
      }
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
