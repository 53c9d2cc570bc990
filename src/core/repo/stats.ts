// stats --repo: what the repository stores against what its snapshots hold.
import { BlobIndex } from "./index-file.ts";
import { loadSnapshots } from "./snapshots.ts";
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
  const uniqueBytes = index.rawBytes();
  const snaps = await loadSnapshots(repo);
  const logicalBytes = snaps.reduce((n, s) => n + s.snapshot.stats.logical_bytes, 0);
  return {
    snapshots: snaps.length,
    storedBytes,
    packs,
    packBytes,
    blobs: index.size,
    uniqueBytes,
    logicalBytes,
    dedupRatio: storedBytes ? logicalBytes / storedBytes : 0,
  };
}
