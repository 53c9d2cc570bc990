// copy: snapshots from one repository to another (a local one to S3, typically). The two have
// their own master keys (and may have different passwords), so blob ids differ between them:
// every chunk of a copied snapshot is read and checked from the source, its id computed under the
// destination's key, and only the chunks the destination lacks are sealed and uploaded. As in a
// backup, the packs go first, then the index files, then the snapshot file, so an interrupted copy
// leaves the destination valid and the next copy re-uses what was uploaded (once indexed).
import { CodecPool, type Span } from "../archive/codec-pool.ts";
import { packNew } from "./backup.ts";
import { UsageError } from "../errors.ts";
import { BlobIndex, IndexWriter, PASS_INDEX_BYTES, indexBytes, writeIndexFiles } from "./index-file.ts";
import { lockRepository, type RepoLockInfo } from "./locks.ts";
import { PackWriter } from "./pack.ts";
import { pausePoint } from "../pause.ts";
import { checkFile, readBlobs, readFileBlobs } from "./read.ts";
import { ID_BYTES, idAt, indexedChunks, ListWriter, locatedChunks, SnapshotChunks, WINDOW_CHUNKS, type ChunkLists } from "./lists.ts";
import { FileDigest } from "../crypto/seal.ts";
import { IdSet } from "./id-table.ts";
import type { BlobLocation } from "./index-file.ts";
import type { Repository } from "./repository.ts";
import { loadSnapshot, loadSnapshots, resolveSnapshot, shortId, type RepoDatabase, type RepoSnapshot, type SnapshotHead, type SnapshotInfo } from "./snapshots.ts";

export interface CopyOptions {
  /** Snapshot refs (id, unique prefix, `latest`); all when empty. */
  snapshots?: string[];
  lockWaitSeconds?: number;
  onLockWait?: (holder: RepoLockInfo) => void;
  onSnapshot?: (e: CopiedSnapshot) => void;
  /** Each repository's index is held whole up to this many bytes of index files (WHOLE_COPY_INDEX_BYTES); above, on either side, snapshots are copied a window of chunks at a time. */
  wholeIndexBytes?: number;
  /** Chunks per window (lists.ts WINDOW_CHUNKS), and new blobs held before they are stored and indexed. */
  windowChunks?: number;
}

/** Copy holds two indexes: each whole up to half of what stats or verify hold in one pass. */
const WHOLE_COPY_INDEX_BYTES = PASS_INDEX_BYTES / 2;

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
  const whole = opts.wholeIndexBytes ?? WHOLE_COPY_INDEX_BYTES;
  // Memory stays bounded whatever the repositories' sizes: with a large index, neither is held.
  const windowed = (await indexBytes(src)) > whole || (await indexBytes(dst)) > whole;
  const srcIndex = windowed ? null : await BlobIndex.load(src);
  const dstIndex = windowed ? null : await BlobIndex.load(dst);
  const pool = new CodecPool();
  const out: CopiedSnapshot[] = [];
  try {
    for (const s of chosen) {
      const existing = present.get(identity(s.snapshot));
      const result: CopiedSnapshot = existing
        ? { source: s.id, target: existing, timestamp: s.snapshot.timestamp, copied: false, newBlobs: 0, uploadedBytes: 0 }
        : srcIndex && dstIndex
          ? await copyOne(src, dst, srcIndex, dstIndex, pool, s)
          : await copyWindowed(src, dst, pool, s, opts.windowChunks);
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
        const spans = spansOf(sizes);
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

const spansOf = (sizes: number[]): Span[] => {
  let at = 0;
  return sizes.map((n): Span => [(at += n) - n, n]);
};

/**
 * copyOne without holding either index: the snapshot's chunks a window at a time (lists.ts
 * SnapshotChunks: the source's locations of that window only); each window's chunks are read
 * and their destination ids made, the destination's index scanned for those ids (and for the
 * finished lists'), then the chunks it lacks read again, sealed and packed. Every `windowChunks`
 * new blobs, the packs and their index files are written and the new ids forgotten.
 */
async function copyWindowed(src: Repository, dst: Repository, pool: CodecPool, s: SnapshotInfo, windowChunks = WINDOW_CHUNKS): Promise<CopiedSnapshot> {
  const indexer = new IndexWriter(dst);
  const packer = new PackWriter(dst, 2, indexer);
  const keys = dst.blobKeys;
  let queued = new IdSet(); // new blobs packed since the last index files were written
  const seen = { has: (id: string) => queued.has(id), add: (id: string) => queued.add(id) };
  const snapshot = await loadSnapshot(src, s.id);
  const files = snapshot.databases.flatMap((db) => db.files.map((f) => ({ ...f, label: `snapshot ${shortId(s.id)}: ${db.name}: ${f.name}` })));
  const chunks = await SnapshotChunks.open(src, files, undefined, windowChunks);
  const read = files.map(() => ({ lists: new ListWriter(keys, packer, () => null, seen), digest: new FileDigest(), size: 0, done: null as ChunkLists | null }));
  const finish = async (k: number) => {
    checkFile(src, files[k]!, files[k]!.label, read[k]!.size, read[k]!.digest);
    read[k]!.done = await read[k]!.lists.finish();
  };
  const one = async function* (chunks: Iterable<[string, BlobLocation]>) {
    yield chunks;
  };
  let newBlobs = 0;
  for (const n of chunks.windows.keys()) {
    const w = await chunks.window(n);
    // The window's chunks read: their destination ids, the files' digests and lists.
    const ids = w.units.map((u) => new Uint8Array(u.ids.length));
    for (const [j, u] of w.units.entries()) {
      const r = read[u.file]!;
      let at = 0;
      await readBlobs(src, one(locatedChunks(src, u.ids, w.index, files[u.file]!.label)), pool, files[u.file]!.label, async (bytes, sizes, sums) => {
        r.digest.update(sums);
        r.size += bytes.length;
        const made = (await pool.run({ op: "ids", keys, spans: spansOf(sizes) }, bytes)).ids!;
        for (const id of made) at += Buffer.from(ids[j]!.buffer, ids[j]!.byteOffset + at, ID_BYTES).write(id, "hex");
        await r.lists.add(made);
      });
      if (u.list === files[u.file]!.lists.length - 1) await finish(u.file);
    }
    // What the destination has of them (and of the lists finished meanwhile): one scan of its index.
    const found = new BlobIndex([]);
    for (const raw of ids) found.wantRaw(raw);
    for (const r of read) for (const id of r.lists.waitingIds()) found.want(id);
    await found.loadAll(dst);
    // The chunks it lacks, read again and sealed under its key.
    for (const [j, u] of w.units.entries()) {
      const fresh: number[] = [];
      for (let i = 0; i < u.ids.length / ID_BYTES; i++) {
        const id = idAt(ids[j]!, i);
        if (found.has(id) || seen.has(id)) continue;
        seen.add(id);
        fresh.push(i);
      }
      if (fresh.length === 0) continue;
      newBlobs += fresh.length;
      let k = 0;
      const label = files[u.file]!.label;
      await readBlobs(src, one(fresh.map((i): [string, BlobLocation] => [idAt(u.ids, i), w.index.get(idAt(u.ids, i))!])), pool, label, async (bytes, sizes) => {
        const sealed = await pool.run({ op: "seal-spans", keys, spans: spansOf(sizes) }, bytes);
        for (const [m, part] of sealed.parts!.entries()) await packer.add(idAt(ids[j]!, fresh[k + m]!), part, sizes[m]!);
        k += sizes.length;
      });
    }
    for (const r of read) await r.lists.settle((id) => found.has(id));
    if (queued.size >= windowChunks) {
      await packer.flush();
      await pausePoint("copy:window-packed");
      await indexer.finish();
      await pausePoint("copy:window-indexed");
      queued = new IdSet();
    }
  }
  // Files of no chunk at all.
  for (const [k, r] of read.entries()) if (!r.done) await finish(k);
  await packer.finish();
  await indexer.finish();
  let k = 0;
  const databases: RepoDatabase[] = snapshot.databases.map((db) => ({ ...db, files: db.files.map((f) => ({ ...f, ...read[k++]!.done! })) }));
  const copied: RepoSnapshot = { ...s.snapshot, databases, stats: { ...s.snapshot.stats, new_blobs: newBlobs, added_bytes: packer.storedBytes } };
  const target = await dst.putJson("snapshots", copied);
  return { source: s.id, target, timestamp: s.snapshot.timestamp, copied: true, newBlobs, uploadedBytes: packer.storedBytes };
}
