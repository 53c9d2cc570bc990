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
import type { RemovedTemporary } from "../fsutil.ts";
import { planRetention, validatePolicy, type RetentionPolicy } from "../retention.ts";
import { IdSet, IdTable } from "./id-table.ts";
import { BlobIndex, IndexParts, IndexWriter, readIndexFile, scanIndexFile, storedPacks } from "./index-file.ts";
import { checkLists, ID_BYTES, listLength, readList } from "./lists.ts";
import type { ProgressSink } from "../progress.ts";
import { choosePacksToRepack, repackBlobs, type PackUse } from "./repack.ts";
import { lockRepository, type RepoLockInfo } from "./locks.ts";
import { packKey, RepositoryDamagedError, type Repository } from "./repository.ts";
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
  /** Bytes of index files whose ids one pass holds (PASS_INDEX_BYTES; more: passes over parts of the id space). */
  passIndexBytes?: number;
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
  /** Temporaries that killed runs left in the repository, removed (not in a dry run). */
  temporaries: RemovedTemporary[];
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
    const gc = await collect(repo, snaps.filter((s) => !gone.has(s.id)), dryRun, opts.maxUnused ?? DEFAULT_MAX_UNUSED, opts);
    // Under the exclusive lock no run of this host is writing: its temporaries are a dead run's.
    const temporaries = dryRun ? [] : ((await repo.store.removeStaleTemporaries?.()) ?? []);
    return { policy: opts.policy, dryRun, kept, forgotten, ...gc, errors: [...errors, ...gc.errors], temporaries };
  } finally {
    await lock?.release();
  }
}

/**
 * Where the chunk lists of `snaps` are: one scan of the index (snapshot files are read again
 * rather than held); and at most how many blobs they use (the lists and their lengths).
 */
async function listLocations(repo: Repository, snaps: SnapshotInfo[], files: string[]): Promise<{ lists: BlobIndex; most: number }> {
  const lists = new BlobIndex([]);
  const distinct = new IdSet();
  let most = 0;
  for (const s of snaps)
    for (const db of (await loadSnapshot(repo, s.id)).databases)
      for (const f of db.files)
        if (!checkLists(f))
          for (const [i, id] of f.lists.entries()) {
            if (distinct.has(id)) continue;
            distinct.add(id);
            lists.want(id);
            most += 1 + listLength(f.chunk_count, i);
          }
  await lists.loadAll(repo, undefined, files);
  return { lists, most };
}

/**
 * The blobs `snaps` use that `only` has (a part of the id space, or the blobs of some packs):
 * their chunk lists and the chunks those name (each list read once: files that did not change
 * share theirs). The field: the number + 1 of the pack whose copy counts (collect). A list that
 * cannot be read stops the collection: its chunks would look unused.
 */
async function usedBlobs(repo: Repository, snaps: SnapshotInfo[], lists: BlobIndex, only: { has(id: string): boolean; hasRaw(bytes: Uint8Array, at: number): boolean }): Promise<IdTable> {
  const used = new IdTable(1);
  const read = new IdSet();
  try {
    for (const s of snaps) {
      for (const db of (await loadSnapshot(repo, s.id)).databases) {
        for (const f of db.files) {
          const what = `snapshot ${s.short} ${db.name}: ${f.name}`;
          const bad = checkLists(f);
          if (bad) throw new RepositoryDamagedError(repo.location, `${what}: ${bad}`);
          for (const [i, id] of f.lists.entries()) {
            if (read.has(id)) continue;
            read.add(id);
            if (only.has(id)) used.insert(id);
            const loc = lists.get(id);
            if (!loc) throw new RepositoryDamagedError(repo.location, `${what}: chunk list ${id.slice(0, 12)}… is in no index file`);
            const ids = await readList(repo, loc, id, listLength(f.chunk_count, i), what);
            for (let at = 0; at < ids.length; at += ID_BYTES) if (only.hasRaw(ids, at)) used.insertRaw(ids, at);
          }
        }
      }
    }
  } catch (err) {
    if (err instanceof RepositoryDamagedError) throw new RepositoryDamagedError(repo.location, `${err.message.slice(repo.location.length + 2)}; no pack deleted (run verify)`);
    throw err;
  }
  return used;
}

async function collect(repo: Repository, snaps: SnapshotInfo[], dryRun: boolean, maxUnused: number, opts: Pick<RepoCleanupOptions, "progress" | "passIndexBytes">) {
  const { progress } = opts;
  const index = await IndexParts.of(repo, opts.passIndexBytes);
  const indexIds = index.files;
  const { lists, most } = await listLocations(repo, snaps, indexIds);
  // What a pass holds is the used blobs: passes as for that share of the index's blobs.
  let blobs = 0;
  for (const p of lists.packs.values()) blobs += p.blobs;
  const parts = index.holding(most / Math.max(1, blobs));
  const stored = await storedPacks(repo);
  // Pass 1: how much of each pack the remaining snapshots use (ids only, no blob lists kept), the
  // ids of one part of the id space at a time when the index is large. A used blob stored in
  // several packs (a repack killed before its old index went) counts in one.
  const use = new Map<string, PackUse>();
  const packNames: string[] = []; // by number - 1, the numbers in `used`
  const packNumber = new Map<string, number>();
  // used blob -> its first pack, its other packs, its place in the scan of the index
  const twice = new Map<string, { home: string; packs: string[]; length: number; at: number; best?: string }>();
  const packsIn = new Map<string, string[]>(); // index file -> the packs it names
  let usedAll = null as IdTable | null; // the used blobs, when they are taken in one pass
  await parts.each(async (part) => {
    const used = await usedBlobs(repo, snaps, lists, part);
    if (parts.parts.length === 1) usedAll = used;
    let u: PackUse;
    let at = 0;
    const counted = new Set<string>(); // listed by several index files: counted once
    for (const id of indexIds) {
      const names: string[] = [];
      packsIn.set(id, names);
      await scanIndexFile(repo, id, {
        pack: (pack, size) => {
          names.push(pack);
          if (counted.has(pack)) return false;
          counted.add(pack);
          if (!use.has(pack)) {
            use.set(pack, { size, usedBytes: 0, unusedBytes: 0 });
            packNumber.set(pack, packNames.push(pack));
          }
          u = use.get(pack)!;
          return true;
        },
        blob: (text, p, _offset, length) => {
          at++;
          if (!part.hasText(text, p)) return;
          const e = used.lookupText(text, p);
          if (e < 0) u.unusedBytes += length;
          else {
            u.usedBytes += length;
            if (used.field(e, 0) === 0) used.setField(e, 0, packNumber.get(names.at(-1)!)!);
            else {
              const id = used.id(e);
              const t = twice.get(id) ?? { home: packNames[used.field(e, 0) - 1]!, packs: [], length, at };
              t.packs.push(names.at(-1)!);
              twice.set(id, t);
            }
          }
        },
      });
    }
    // A used blob no index file names would look unused, and its pack be deleted: nothing is.
    for (let e = 0; e < used.size; e++)
      if (used.field(e, 0) === 0)
        throw new RepositoryDamagedError(repo.location, `chunk ${used.id(e).slice(0, 12)}… of a kept snapshot is in no index file; no pack deleted (run verify)`);
  });
  // The copy that counts: in a pack that is stored whole, the one most used; the others are
  // unused (decided in the order the index scan met them, each decision changing the next's shares).
  const whole = (p: string) => stored.get(p) === use.get(p)!.size;
  const share = (p: string) => use.get(p)!.usedBytes / use.get(p)!.size;
  for (const t of [...twice.values()].sort((a, b) => a.at - b.at)) {
    const all = [t.home, ...t.packs];
    const best = all.reduce((x, y) => (whole(y) && (!whole(x) || share(y) > share(x)) ? y : x));
    t.best = best;
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
  let packsWritten = 0;
  let blobsRepacked = 0;
  const errors: DuckbakError[] = [];
  let repacked: string[] = [...chosen];
  // Index files written as they fill: for the new packs, then for the packs of replaced index files.
  const indexer = new IndexWriter(repo);
  if (dryRun) {
    // Estimated: the new packs hold the used bytes of these.
    doomed.push(...repacked);
    bytesFreed += repacked.reduce((n, p) => n + use.get(p)!.unusedBytes, 0);
  } else if (chosen.size) {
    // Pass 2: the chosen packs' entries, an index file at a time; a used blob is copied (once)
    // when its counting copy is in one of them. Which of their blobs are used: taken in one pass,
    // the whole set; else the chosen packs go by groups (in the order below), and each group's
    // used blobs are found by reading the lists again.
    let used = usedAll;
    const groupOf = usedAll ? null : parts.groups(lists.packs, [...use.keys()].filter((p) => chosen.has(p)));
    let group: BlobIndex | null = null;
    async function* sources() {
      const seen = new Set<string>();
      for (const id of indexIds.filter((f) => packsIn.get(f)!.some((p) => chosen.has(p))))
        for (const p of (await readIndexFile(repo, id)).packs)
          if (chosen.has(p.id) && !seen.has(p.id)) {
            seen.add(p.id);
            const g = await groupOf?.(p.id);
            if (g && g !== group) {
              group = g;
              used = null;
              used = await usedBlobs(repo, snaps, lists, g);
            }
            yield p;
          }
    }
    const total = [...chosen].reduce((n, p) => n + use.get(p)!.size, 0);
    const copiedTwice = new Set<string>();
    const keep = (b: string) => {
      if (used!.lookup(b) < 0) return false;
      const t = twice.get(b);
      // Not in `twice`: its only copy is in the pack being repacked.
      if (!t) return true;
      if (!chosen.has(t.best!) || copiedTwice.has(b)) return false;
      copiedTwice.add(b);
      return true;
    };
    const r = await repackBlobs(repo, sources(), total, keep, indexer, progress);
    repacked = r.repacked;
    packsWritten = r.packsWritten;
    blobsRepacked = r.blobs;
    errors.push(...r.errors);
    await pausePoint("repo:after-repack");
    doomed.push(...repacked);
    bytesFreed += repacked.reduce((n, p) => n + use.get(p)!.size, 0) - r.bytesWritten;
  }
  // Index files that name a pack about to go (or a dead one already gone): replaced by files with their other packs.
  const going = new Set([...doomed, ...dead]);
  const stale = indexIds.filter((f) => packsIn.get(f)!.some((p) => going.has(p)));
  if (!dryRun) for (const id of stale) for (const p of (await readIndexFile(repo, id)).packs) if (!going.has(p.id)) indexer.addEntry(p);
  if (!dryRun && (stale.length || doomed.length || packsWritten)) {
    // Until the old index files go, the new packs' blobs are listed twice.
    await indexer.finish();
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
    packsWritten,
    blobsRepacked,
    bytesFreed,
    indexFilesRewritten: stale.length,
    errors,
  };
}
