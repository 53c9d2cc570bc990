// restore --repo: one snapshot's databases, through the same checked commit as archive restore
// (restore.ts: temp names, sha256 against the recorded value, DuckDB open, .bak, stale WAL).
import { CodecPool } from "../archive/codec-pool.ts";
import type { EntrySink } from "../archive/reader.ts";
import { NOTHING_RESTORED, NoSuchDatabaseError, restoreDatabases, restoredWithDamage, selectDatabases, type RestoreOptions, type RestoredDatabase } from "../restore.ts";
import { recordedSourceDamage } from "../verify.ts";
import { UsageError } from "../errors.ts";
import { missingFrom, storedPacks } from "./index-file.ts";
import { SnapshotChunks } from "./lists.ts";
import { lockRepository, type HeldRepoLock } from "./locks.ts";
import { readFileBlobs } from "./read.ts";
import { RepositoryDamagedError, type Repository } from "./repository.ts";
import { findSnapshot, loadSnapshot, loadSnapshots, type RepoDatabase, type RepoFile, type SnapshotInfo } from "./snapshots.ts";

export interface RepoRestoreResult {
  snapshot: string;
  databases: RestoredDatabase[];
  /** As an archive's restore: a file this DuckDB cannot open, a source damaged when backed up. */
  warnings: string[];
}

export interface OpenedSnapshot {
  snap: SnapshotInfo;
  dbs: RepoDatabase[];
  /** The databases' files' chunks, a window of index entries at a time. */
  chunks: SnapshotChunks;
  consequence: string;
}

/**
 * The snapshot `ref` names and its databases that `only` selects, with their chunks' locations
 * (only theirs, a window at a time); the first window's chunks (all of them, below ~64 GiB of
 * 256 KiB blocks) are checked to be indexed before anything is written. Call under a shared lock.
 */
export async function openSnapshot(repo: Repository, ref: string, only: string[] | undefined, consequence = NOTHING_RESTORED): Promise<OpenedSnapshot> {
  const snap = await findSnapshot(repo, ref);
  let dbs: RepoDatabase[];
  try {
    dbs = selectDatabases(await loadSnapshot(repo, snap.id), only);
  } catch (err) {
    // `latest` without the database (it failed last night, say): point at the newest that has it.
    if (!(err instanceof NoSuchDatabaseError) || ref.toLowerCase() !== "latest") throw err;
    const has = (await loadSnapshots(repo, [])).find((s) => {
      try {
        return selectDatabases(s.snapshot, only).length > 0;
      } catch {
        return false;
      }
    });
    throw has ? new UsageError(`${err.message}; the newest snapshot that has it is ${has.short} (${has.snapshot.timestamp}): restore ${has.short} --only …`) : err;
  }
  const files = dbs.flatMap((d) => d.files.map((f) => ({ ...f, label: `snapshot ${snap.short} ${f.name}` })));
  // (A damaged repository's error is given the consequence by the callers.) Copies in lost packs
  // are passed over: a later backup may have stored those chunks again.
  const chunks = await SnapshotChunks.open(repo, files, undefined, undefined, missingFrom(await storedPacks(repo)));
  if (chunks.windows.length) chunks.checkIndexed(await chunks.window(0), consequence);
  return { snap, dbs, chunks, consequence };
}

/** Writes one file of the snapshot into `sink` (a new file's: closed at the end), checked against its digest. */
export async function writeSnapshotFile(repo: Repository, pool: CodecPool, o: OpenedSnapshot, f: RepoFile, sink: EntrySink, onBytes?: (n: number) => void): Promise<void> {
  try {
    const k = o.dbs.flatMap((d) => d.files).indexOf(f);
    await readFileBlobs(repo, o.chunks.chunks(k, o.consequence), pool, f, `snapshot ${o.snap.short} ${f.name}`, (c) => {
      onBytes?.(c.length);
      return sink.write(c);
    });
  } finally {
    await sink.close();
  }
}

/** `opening`: the repository, or its opening (the password's key being derived): the codec workers start meanwhile. */
export async function restoreRepoSnapshot(opening: Repository | Promise<Repository>, ref: string, opts: RestoreOptions & { lockWaitSeconds?: number } = {}): Promise<RepoRestoreResult> {
  const pool = new CodecPool().start();
  let repo: Repository;
  let lock: HeldRepoLock;
  try {
    repo = await opening;
    // Shared: garbage collection (exclusive) cannot delete a pack while it is being read.
    lock = await lockRepository(repo, { exclusive: false, command: "restore", waitSeconds: opts.lockWaitSeconds });
  } catch (err) {
    pool.close();
    throw err;
  }
  try {
    const opened = await openSnapshot(repo, ref, opts.only);
    const { snap, dbs } = opened;
    const source = `${repo.location} snapshot ${snap.short}`;
    // Restored byte for byte (its chunks are checked against their ids), with the damage it had.
    const warnings = dbs.flatMap((d) => recordedSourceDamage(d).slice(0, 1).map((p) => restoredWithDamage(d.name, p)));
    const databases = await restoreDatabases(dbs, source, opts, async (plans, sink) => {
      const total = plans.reduce((n, p) => n + p.db.files.reduce((m, f) => m + f.size_bytes, 0), 0);
      opts.progress?.start(total, `restoring snapshot ${snap.short}`);
      for (const p of plans)
        for (const f of p.db.files)
          await writeSnapshotFile(repo, pool, opened, f, sink(p.temps.get(f.entry)!, p.target), (n) => opts.progress?.advance(n));
    }, warnings);
    return { snapshot: snap.id, databases, warnings };
  } catch (err) {
    if (err instanceof RepositoryDamagedError && !err.message.includes(NOTHING_RESTORED))
      throw new RepositoryDamagedError(repo.location, `${err.message.slice(repo.location.length + 2)}; ${NOTHING_RESTORED}`);
    throw err;
  } finally {
    pool.close();
    await lock.release();
  }
}
