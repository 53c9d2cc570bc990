// cleanup --repo: forget the snapshots the retention policy drops, then garbage-collect. Under the
// repository's exclusive lock, so no backup runs meanwhile (a backup holds a shared lock from
// before it reads the index until its snapshot is written). Order, so that a kill at any instant
// leaves a repository that verifies: snapshot files deleted; index files that name dead packs
// replaced (new file written first, then the old one deleted); then the dead packs deleted, with
// the packs no index names (left by killed backups). A pack is deleted only when none of its
// blobs is used by a remaining snapshot, or when its used blobs were repacked (repack.ts) into
// new packs that an index file written before the deletes names.
import { protectLastOfEachDatabase } from "../cleanup.ts";
import { DuckbakError, fsError } from "../errors.ts";
import { planRetention, validatePolicy, type RetentionPolicy } from "../retention.ts";
import { writeIndexFiles, writeIndexFilesRaw, type IndexFile } from "./index-file.ts";
import type { PackInfo } from "./pack.ts";
import type { ProgressSink } from "../progress.ts";
import { choosePacksToRepack, repackBlobs, type PackUse } from "./repack.ts";
import { lockRepository, type RepoLockInfo } from "./locks.ts";
import { packKey, type Repository } from "./repository.ts";
import { loadSnapshot, loadSnapshots, type SnapshotInfo } from "./snapshots.ts";
import { pausePoint } from "../pause.ts";

export interface RepoCleanupOptions {
  policy: RetentionPolicy;
  dryRun?: boolean;
  now?: Date;
  timeZone?: string;
  lockWaitSeconds?: number;
  onLockWait?: (holder: RepoLockInfo) => void;
  /** Repack partly used packs until at most this fraction of the pack bytes is unused (default DEFAULT_MAX_UNUSED; 1 = never). */
  maxUnused?: number;
  /** Repacking (bytes of the packs read), then deleting (bytes of the packs deleted). */
  progress?: ProgressSink;
}

/** cleanup --max-unused's default: 10% of the pack bytes may be blobs no snapshot uses. */
export const DEFAULT_MAX_UNUSED = 0.1;

export interface RepoCleanupResult {
  policy: RetentionPolicy;
  dryRun: boolean;
  kept: { snapshot: SnapshotInfo; reasons: string[] }[];
  /** Snapshots forgotten (dry run: to be forgotten), newest first. */
  forgotten: SnapshotInfo[];
  /** Packs deleted (dry run: unused packs to be deleted), repacked ones included. */
  packsDeleted: number;
  /** Partly used packs whose used blobs were copied into `packsWritten` new packs (dry run: to be repacked). */
  packsRepacked: number;
  packsWritten: number;
  blobsRepacked: number;
  /** Bytes deleted less bytes written (dry run: an estimate). */
  bytesFreed: number;
  indexFilesRewritten: number;
  errors: DuckbakError[];
}

export async function cleanupRepository(repo: Repository, opts: RepoCleanupOptions): Promise<RepoCleanupResult> {
  validatePolicy(opts.policy);
  const dryRun = opts.dryRun ?? false;
  // A dry run changes nothing: it neither waits for nor blocks a backup.
  const lock = dryRun ? null : await lockRepository(repo, { exclusive: true, command: "cleanup", waitSeconds: opts.lockWaitSeconds, onWait: opts.onLockWait });
  try {
    const snaps = await loadSnapshots(repo);
    const byId = new Map(snaps.map((s) => [s.id, s]));
    const plan = planRetention(snaps.map((s) => ({ name: s.id, timestamp: s.timestamp })), opts.policy, opts.now ?? new Date(), { timeZone: opts.timeZone });
    protectLastOfEachDatabase(plan, snaps.map((s) => ({ name: s.id, databases: s.snapshot.databases })));
    const forgotten = plan.remove.map((r) => byId.get(r.name)!);
    const kept = plan.keep.map((k) => ({ snapshot: byId.get(k.backup.name)!, reasons: k.reasons }));
    const errors: DuckbakError[] = [];
    const gone = new Set(forgotten.map((s) => s.id));
    if (!dryRun) {
      for (const s of forgotten) {
        try {
          await repo.store.delete(`snapshots/${s.id}`);
        } catch (err) {
          gone.delete(s.id);
          errors.push(err instanceof DuckbakError ? err : fsError(err, `snapshots/${s.id}`, "delete"));
        }
      }
      await pausePoint("repo:after-forget");
    }
    // What the remaining snapshots use: a snapshot whose deletion failed still counts.
    const used = new Set<string>();
    for (const s of snaps) {
      if (gone.has(s.id)) continue;
      for (const db of (await loadSnapshot(repo, s.id)).databases) for (const f of db.files) for (const c of f.chunks) used.add(c);
    }

    const gc = await collect(repo, used, dryRun, opts.maxUnused ?? DEFAULT_MAX_UNUSED, opts.progress);
    return { policy: opts.policy, dryRun, kept, forgotten, ...gc, errors: [...errors, ...gc.errors] };
  } finally {
    await lock?.release();
  }
}

async function collect(repo: Repository, used: Set<string>, dryRun: boolean, maxUnused: number, progress?: ProgressSink) {
  const stored = new Map<string, number>();
  for await (const e of repo.store.list("data/")) stored.set(e.key.slice(e.key.lastIndexOf("/") + 1), e.size);
  // Pass 1: how much of each pack the remaining snapshots use (ids only, no blob lists kept). A
  // used blob stored in several packs (a repack killed before its old index went) counts in one.
  const use = new Map<string, PackUse>();
  const home = new Map<string, string>();
  const twice = new Map<string, { packs: string[]; length: number }>();
  const indexIds = await repo.listIds("index");
  for (const id of indexIds) {
    const file = await repo.getJsonChecked<IndexFile>(`index/${id}`);
    for (const p of file.packs) {
      if (use.has(p.id)) continue; // listed by several index files: counted once
      const u: PackUse = { size: p.size, usedBytes: 0, unusedBytes: 0 };
      use.set(p.id, u);
      for (const [b, , length] of p.blobs) {
        if (!used.has(b)) u.unusedBytes += length;
        else {
          u.usedBytes += length;
          if (!home.has(b)) home.set(b, p.id);
          else {
            const t = twice.get(b) ?? { packs: [], length };
            t.packs.push(p.id);
            twice.set(b, t);
          }
        }
      }
    }
  }
  // The copy that counts: in a pack that is stored whole, the one most used; the others are unused.
  const whole = (p: string) => stored.get(p) === use.get(p)!.size;
  const share = (p: string) => use.get(p)!.usedBytes / use.get(p)!.size;
  for (const [b, t] of twice) {
    const all = [home.get(b)!, ...t.packs];
    const best = all.reduce((x, y) => (whole(y) && (!whole(x) || share(y) > share(x)) ? y : x));
    home.set(b, best);
    for (const p of all) {
      if (p === best) continue;
      use.get(p)!.usedBytes -= t.length;
      use.get(p)!.unusedBytes += t.length;
    }
  }
  // A pack none of whose blobs counts as used is dead.
  const dead = new Set([...use].filter(([, u]) => u.usedBytes === 0).map(([p]) => p));
  const orphans = [...stored.keys()].filter((p) => !use.has(p));
  const live = new Map([...use].filter(([p, u]) => u.usedBytes > 0 && stored.get(p) === u.size));
  const chosen = new Set(choosePacksToRepack(live, maxUnused));

  const doomed = [...dead].filter((p) => stored.has(p)).concat(orphans);
  let bytesFreed = doomed.reduce((n, p) => n + (stored.get(p) ?? 0), 0);
  let written: PackInfo[] = [];
  let blobsRepacked = 0;
  const errors: DuckbakError[] = [];
  let repacked: string[] = [...chosen];
  if (dryRun) {
    // Estimated: the new packs hold the used bytes of these.
    doomed.push(...repacked);
    bytesFreed += repacked.reduce((n, p) => n + use.get(p)!.unusedBytes, 0);
  } else if (chosen.size) {
    // Pass 2: the chosen packs' entries; a used blob is copied when its counting copy is in one of them.
    const sources: IndexFile["packs"] = [];
    for (const id of indexIds)
      for (const p of (await repo.getJsonChecked<IndexFile>(`index/${id}`)).packs)
        if (chosen.has(p.id) && !sources.some((x) => x.id === p.id)) sources.push(p);
    const r = await repackBlobs(repo, sources, (b) => chosen.has(home.get(b) ?? ""), progress);
    repacked = r.repacked;
    written = r.written;
    blobsRepacked = r.blobs;
    errors.push(...r.errors);
    await pausePoint("repo:after-repack");
    doomed.push(...repacked);
    bytesFreed += repacked.reduce((n, p) => n + use.get(p)!.size, 0) - written.reduce((n, p) => n + p.size, 0);
  }
  // Index files that name a pack about to go (or a dead one already gone): replaced by files with their other packs.
  const going = new Set([...doomed, ...dead]);
  const stale: string[] = [];
  const replacements: IndexFile["packs"] = [];
  for (const id of indexIds) {
    const file = await repo.getJsonChecked<IndexFile>(`index/${id}`);
    if (!file.packs.some((p) => going.has(p.id))) continue;
    stale.push(id);
    if (!dryRun) replacements.push(...file.packs.filter((p) => !going.has(p.id)));
  }
  if (!dryRun && (stale.length || doomed.length || written.length)) {
    // The new packs' entries first: until the old index files go, their blobs are listed twice.
    await writeIndexFiles(repo, written);
    await writeIndexFilesRaw(repo, replacements);
    await pausePoint("repo:after-new-index");
    for (const id of stale) await repo.store.delete(`index/${id}`);
    await pausePoint("repo:before-pack-delete");
    progress?.start(doomed.reduce((n, p) => n + (stored.get(p) ?? 0), 0), "deleting packs");
    for (const [i, p] of doomed.entries()) {
      await repo.store.delete(packKey(p));
      progress?.advance(stored.get(p) ?? 0);
      if (i === 0) await pausePoint("repo:after-first-pack-delete");
    }
  }
  return {
    packsDeleted: doomed.length,
    packsRepacked: repacked.length,
    packsWritten: written.length,
    blobsRepacked,
    bytesFreed,
    indexFilesRewritten: stale.length,
    errors,
  };
}
