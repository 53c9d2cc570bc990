// stats --repo: what the repository stores against what its snapshots hold.
import { BlobIndex } from "./index-file.ts";
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

export async function repositoryStats(repo: Repository): Promise<RepoStats> {
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
  const index = await BlobIndex.load(repo);
  const snaps = await loadSnapshots(repo);
  // Which blobs are chunk lists: the ones snapshot files name.
  const lists = new IdSet();
  let listBlobs = 0;
  let listBytes = 0;
  for (const s of snaps)
    for (const db of (await loadSnapshot(repo, s.id)).databases)
      for (const id of db.files.flatMap((f) => f.lists ?? [])) {
        const loc = lists.has(id) ? undefined : index.get(id);
        lists.add(id);
        if (!loc) continue;
        listBlobs++;
        listBytes += loc.raw;
      }
  const logicalBytes = snaps.reduce((n, s) => n + s.snapshot.stats.logical_bytes, 0);
  return {
    snapshots: snaps.length,
    storedBytes,
    packs,
    packBytes,
    blobs: index.size - listBlobs,
    uniqueBytes: index.rawBytes() - listBytes,
    listBlobs,
    listBytes,
    logicalBytes,
    dedupRatio: storedBytes ? logicalBytes / storedBytes : 0,
  };
}
