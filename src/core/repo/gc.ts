// cleanup --repo: forget the snapshots the retention policy drops, then garbage-collect. Under the
// repository's exclusive lock, so no backup runs meanwhile (a backup holds a shared lock from
// before it reads the index until its snapshot is written). Order, so that a kill at any instant
// leaves a repository that verifies: snapshot files deleted; index files that name dead packs
// replaced (new file written first, then the old one deleted); then the dead packs deleted, with
// the packs no index names (left by killed backups). A pack is deleted only when none of its
// blobs is used by a remaining snapshot; packs that are partly used are kept whole.
import { protectLastOfEachDatabase } from "../cleanup.ts";
import { DuckbakError, fsError } from "../errors.ts";
import { planRetention, validatePolicy, type RetentionPolicy } from "../retention.ts";
import { writeIndexFilesRaw, type IndexFile } from "./index-file.ts";
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
}

export interface RepoCleanupResult {
  policy: RetentionPolicy;
  dryRun: boolean;
  kept: { snapshot: SnapshotInfo; reasons: string[] }[];
  /** Snapshots forgotten (dry run: to be forgotten), newest first. */
  forgotten: SnapshotInfo[];
  /** Packs deleted (dry run: to be deleted) and their bytes. */
  packsDeleted: number;
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

    const gc = await collect(repo, used, dryRun);
    return { policy: opts.policy, dryRun, kept, forgotten, ...gc, errors };
  } finally {
    await lock?.release();
  }
}

async function collect(repo: Repository, used: Set<string>, dryRun: boolean) {
  const stored = new Map<string, number>();
  for await (const e of repo.store.list("data/")) stored.set(e.key.slice(e.key.lastIndexOf("/") + 1), e.size);
  const indexed = new Set<string>();
  const dead = new Set<string>();
  const stale: string[] = []; // index files naming a dead pack
  const indexIds = await repo.listIds("index");
  for (const id of indexIds) {
    const file = await repo.getJsonChecked<IndexFile>(`index/${id}`);
    let hasDead = false;
    for (const p of file.packs) {
      indexed.add(p.id);
      if (!p.blobs.some(([b]) => used.has(b))) {
        dead.add(p.id);
        hasDead = true;
      }
    }
    if (hasDead) stale.push(id);
  }
  // A pack named dead by one index file but live by another (a blob stored twice) stays.
  for (const id of indexIds) {
    if (!stale.includes(id)) continue;
    const file = await repo.getJsonChecked<IndexFile>(`index/${id}`);
    for (const p of file.packs) if (p.blobs.some(([b]) => used.has(b))) dead.delete(p.id);
  }
  const orphans = [...stored.keys()].filter((p) => !indexed.has(p));
  const doomed = [...dead].filter((p) => stored.has(p)).concat(orphans);
  const bytesFreed = doomed.reduce((n, p) => n + (stored.get(p) ?? 0), 0);
  if (!dryRun && (stale.length || doomed.length)) {
    const replacements: IndexFile["packs"] = [];
    for (const id of stale) {
      const file = await repo.getJsonChecked<IndexFile>(`index/${id}`);
      replacements.push(...file.packs.filter((p) => !dead.has(p.id)));
    }
    await writeIndexFilesRaw(repo, replacements);
    await pausePoint("repo:after-new-index");
    for (const id of stale) await repo.store.delete(`index/${id}`);
    await pausePoint("repo:before-pack-delete");
    for (const p of doomed) await repo.store.delete(packKey(p));
  }
  return { packsDeleted: doomed.length, bytesFreed, indexFilesRewritten: stale.length };
}
