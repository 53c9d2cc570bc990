// copy: snapshots from one repository to another (a local one to S3, typically). The two have
// their own master keys (and may have different passwords), so blob ids differ between them:
// every chunk of a copied snapshot is read and checked from the source, its id computed under the
// destination's key, and only the chunks the destination lacks are sealed and uploaded. As in a
// backup, the packs go first, then the index files, then the snapshot file, so an interrupted copy
// leaves the destination valid and the next copy re-uses what was uploaded (once indexed).
import { CodecPool, type Span } from "../archive/codec-pool.ts";
import { packNew } from "./backup.ts";
import { UsageError } from "../errors.ts";
import { BlobIndex, writeIndexFiles } from "./index-file.ts";
import { lockRepository, type RepoLockInfo } from "./locks.ts";
import { PackWriter } from "./pack.ts";
import { readFileBlobs } from "./read.ts";
import { indexedChunks, ListWriter } from "./lists.ts";
import type { Repository } from "./repository.ts";
import { loadSnapshot, loadSnapshots, resolveSnapshot, shortId, type RepoDatabase, type RepoSnapshot, type SnapshotHead, type SnapshotInfo } from "./snapshots.ts";

export interface CopyOptions {
  /** Snapshot refs (id, unique prefix, `latest`); all when empty. */
  snapshots?: string[];
  lockWaitSeconds?: number;
  onLockWait?: (holder: RepoLockInfo) => void;
  onSnapshot?: (e: CopiedSnapshot) => void;
}

export interface CopiedSnapshot {
  source: string;
  /** The snapshot's id in the destination (new or already there). */
  target: string;
  timestamp: string;
  /** False when the destination already had it (copied before). */
  copied: boolean;
  newBlobs: number;
  /** Bytes of packs and index files written to the destination. */
  uploadedBytes: number;
}

/** What makes two snapshots the same capture, whatever repository (and key) holds them. */
function identity(s: SnapshotHead): string {
  return JSON.stringify([s.timestamp, s.host, s.databases.map((d) => [d.original_path, d.files.map((f) => f.chunks_sha256)])]);
}

export async function copySnapshots(src: Repository, dst: Repository, opts: CopyOptions = {}): Promise<CopiedSnapshot[]> {
  if (src.config.id === dst.config.id) throw new UsageError(`${dst.location}: is the same repository as ${src.location}`);
  const lockOpts = { exclusive: false, command: "copy", waitSeconds: opts.lockWaitSeconds, onWait: opts.onLockWait };
  const srcLock = await lockRepository(src, lockOpts);
  try {
    const dstLock = await lockRepository(dst, lockOpts);
    try {
      return await copyLocked(src, dst, opts);
    } finally {
      await dstLock.release();
    }
  } finally {
    await srcLock.release();
  }
}

async function copyLocked(src: Repository, dst: Repository, opts: CopyOptions): Promise<CopiedSnapshot[]> {
  const all = await loadSnapshots(src);
  let chosen: SnapshotInfo[] = all;
  if (opts.snapshots?.length) {
    const picked = new Map<string, SnapshotInfo>();
    for (const ref of opts.snapshots) {
      const s = resolveSnapshot(all, ref, src.location);
      picked.set(s.id, s);
    }
    chosen = [...picked.values()];
  }
  // Oldest first: the destination's snapshots appear in the order they were taken.
  chosen = [...chosen].sort((a, b) => a.timestamp.getTime() - b.timestamp.getTime());
  const present = new Map((await loadSnapshots(dst)).map((s) => [identity(s.snapshot), s.id]));
  const srcIndex = await BlobIndex.load(src);
  const dstIndex = await BlobIndex.load(dst);
  const pool = new CodecPool();
  const out: CopiedSnapshot[] = [];
  try {
    for (const s of chosen) {
      const existing = present.get(identity(s.snapshot));
      const result: CopiedSnapshot = existing
        ? { source: s.id, target: existing, timestamp: s.snapshot.timestamp, copied: false, newBlobs: 0, uploadedBytes: 0 }
        : await copyOne(src, dst, srcIndex, dstIndex, pool, s);
      present.set(identity(s.snapshot), result.target);
      out.push(result);
      opts.onSnapshot?.(result);
    }
  } finally {
    pool.close();
  }
  return out;
}

async function copyOne(src: Repository, dst: Repository, srcIndex: BlobIndex, dstIndex: BlobIndex, pool: CodecPool, s: SnapshotInfo): Promise<CopiedSnapshot> {
  const packer = new PackWriter(dst);
  const keys = dst.blobKeys;
  const queued = new Set<string>();
  let newBlobs = 0;
  const databases: RepoDatabase[] = [];
  for (const db of (await loadSnapshot(src, s.id)).databases) {
    const files = [];
    for (const file of db.files) {
      // The chunks' destination ids go into the destination's own list blobs.
      const lists = new ListWriter(keys, packer, () => (id) => dstIndex.has(id), queued);
      const what = `snapshot ${shortId(s.id)}: ${db.name}: ${file.name}`;
      // Each range of chunks is id'd and, where the destination lacks them, sealed in place
      // before readFileBlobs reuses its slab.
      await readFileBlobs(src, indexedChunks(src, srcIndex, file, what), pool, file, what, async (bytes, sizes) => {
        const spans: Span[] = [];
        let at = 0;
        for (const n of sizes) {
          spans.push([at, n]);
          at += n;
        }
        const { ids } = await pool.run({ op: "ids", keys, spans }, bytes);
        newBlobs += await packNew(pool, keys, packer, bytes, spans, ids!, dstIndex, queued);
        await lists.add(ids!);
      });
      files.push({ ...file, ...(await lists.finish()) });
    }
    databases.push({ ...db, files });
  }
  const packs = await packer.finish();
  await writeIndexFiles(dst, packs);
  for (const p of packs) dstIndex.add(p, null);
  const snapshot: RepoSnapshot = { ...s.snapshot, databases, stats: { ...s.snapshot.stats, new_blobs: newBlobs, added_bytes: packer.storedBytes } };
  const target = await dst.putJson("snapshots", snapshot);
  return { source: s.id, target, timestamp: s.snapshot.timestamp, copied: true, newBlobs, uploadedBytes: packer.storedBytes };
}
