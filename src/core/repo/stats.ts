// stats --repo: what the repository stores against what its snapshots hold.
import { IndexParts } from "./index-file.ts";
import { loadSnapshot, loadSnapshots } from "./snapshots.ts";
import { IdSet } from "./id-table.ts";
import type { Repository } from "./repository.ts";

export interface RepoStats {
  snapshots: number;
  /** Bytes of every object in the store (packs, index, snapshots, keys, locks). */
  storedBytes: number;
  packs: number;
  packBytes: number;
  /** Distinct chunks and their plain size. */
  blobs: number;
  uniqueBytes: number;
  /** Distinct chunk lists (list blobs: files' chunk ids) and their plain size. */
  listBlobs: number;
  listBytes: number;
  /** Sum of the databases' file sizes over all snapshots: what full copies would take. */
  logicalBytes: number;
  /** logicalBytes / storedBytes. */
  dedupRatio: number;
}

export interface RepoStatsOptions {
  /** Bytes of index files whose ids one pass holds (PASS_INDEX_BYTES; more: passes over parts of the id space). */
  passIndexBytes?: number;
}

export async function repositoryStats(repo: Repository, opts: RepoStatsOptions = {}): Promise<RepoStats> {
  let storedBytes = 0;
  let packs = 0;
  let packBytes = 0;
  for await (const e of repo.store.list("")) {
    storedBytes += e.size;
    if (e.key.startsWith("data/")) {
      packs++;
      packBytes += e.size;
    }
  }
  const snaps = await loadSnapshots(repo);
  // Which blobs are chunk lists: the ones snapshot files name (one per 8,192 chunks: held).
  const lists = new IdSet();
  for (const s of snaps) for (const db of (await loadSnapshot(repo, s.id)).databases) for (const id of db.files.flatMap((f) => f.lists ?? [])) lists.add(id);
  let blobs = 0;
  let rawBytes = 0;
  let listBlobs = 0;
  let listBytes = 0;
  const parts = await IndexParts.of(repo, opts.passIndexBytes);
  await parts.each(async (part) => {
    const index = await parts.index(part);
    blobs += index.size;
    rawBytes += index.rawBytes();
    for (let e = 0; e < lists.size; e++) {
      const loc = index.get(lists.id(e));
      if (!loc) continue;
      listBlobs++;
      listBytes += loc.raw;
    }
  });
  const logicalBytes = snaps.reduce((n, s) => n + s.snapshot.stats.logical_bytes, 0);
  return {
    snapshots: snaps.length,
    storedBytes,
    packs,
    packBytes,
    blobs: blobs - listBlobs,
    uniqueBytes: rawBytes - listBytes,
    listBlobs,
    listBytes,
    logicalBytes,
    dedupRatio: storedBytes ? logicalBytes / storedBytes : 0,
  };
}
