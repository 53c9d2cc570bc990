// backup --repo: the same lock-safe capture as archive backup (snapshot holder, WAL files), then
// each file cut into chunks aligned to DuckDB's layout, each chunk's id computed and, when the
// repository does not have it yet, sealed (zstd + AES-GCM) by the codec workers and packed.
// Upload order makes a snapshot visible only once everything it names exists: packs, then index
// files, then the snapshot file.
import { closeSync, openSync, readSync } from "node:fs";
import { basename, resolve } from "node:path";
import { hostname } from "node:os";
import { DuckbakError, UsageError, fsError } from "../errors.ts";
import { acquireSnapshots, describedSnapshot, type DatabaseSnapshot, type SnapshotFile, type SnapshotOptions } from "../snapshot.ts";
import { describeSnapshot, sourceBlockCheck, type BackupEvent, type DatabaseBackupResult } from "../backup.ts";
import { assignEntryNames } from "../naming.ts";
import { BLOCKS_START } from "../duckdb/header.ts";
import { CodecPool, SlabRing, type Span } from "../archive/codec-pool.ts";
import { FileDigest } from "../crypto/seal.ts";
import type { CheckedBlocks } from "../duckdb/blocks.ts";
import { DUCKBAK_VERSION } from "../version.ts";
import { BlobIndex, IndexWriter } from "./index-file.ts";
import { IdSet } from "./id-table.ts";
import { PackWriter } from "./pack.ts";
import { lockRepository } from "./locks.ts";
import { SNAPSHOT_FORMAT, SNAPSHOT_VERSION, shortId, type RepoDatabase, type RepoSnapshot } from "./snapshots.ts";
import { pausePoint } from "../pause.ts";
import type { KeyLookup } from "../keys.ts";
import type { BlobKeys } from "./blob.ts";
import { Repository } from "./repository.ts";

export interface RepoBackupOptions {
  databases: string[];
  waitSeconds?: number;
  /** Each database's hooks; see SnapshotOptions. */
  settings?: SnapshotOptions["settings"];
  hookTimeoutSeconds?: number;
  hotRetries?: number;
  lockWaitSeconds?: number;
  /** Keys of encrypted databases. */
  keys?: KeyLookup;
  now?: Date;
  onEvent?: (e: BackupEvent) => void;
  onLockWait?: (holder: { command: string; pid: number; host: string }) => void;
}

export interface RepoBackupResult {
  /** The snapshot written, or null when no database could be backed up. */
  snapshot: string | null;
  snapshotData: RepoSnapshot | null;
  databases: DatabaseBackupResult[];
}

/**
 * Chunk boundaries of a file: the main file's 12 KiB header region, then one chunk per block
 * (blocks larger than `maxChunk` in `maxChunk` pieces); side files (WAL) fixed-size from offset 0,
 * so a WAL that only grew keeps its old full chunks.
 */
export function chunkRanges(file: Pick<SnapshotFile, "role" | "size">, blockSize: number, maxChunk: number, sideChunk: number): [number, number][] {
  const out: [number, number][] = [];
  let start = 0;
  if (file.role === "main") {
    const head = Math.min(BLOCKS_START, file.size);
    if (head > 0) out.push([0, head]);
    start = head;
  }
  const step = file.role === "main" ? Math.min(blockSize, maxChunk) : sideChunk;
  for (let o = start; o < file.size; o += step) out.push([o, Math.min(step, file.size - o)]);
  return out;
}

/** A slab: consecutive chunks of a file read with one call and handed to a worker as one job. */
const SLAB_BYTES = 2 << 20;

/** Groups a file's chunk ranges into slabs of at most `limit` bytes (at least one chunk each). */
function slabsOf(ranges: [number, number][], limit: number): { start: number; length: number; first: number; count: number }[] {
  const out = [];
  for (let i = 0; i < ranges.length; ) {
    const start = ranges[i]![0];
    let j = i;
    let length = 0;
    while (j < ranges.length && (j === i || length + ranges[j]![1] <= limit)) length += ranges[j++]![1];
    out.push({ start, length, first: i, count: j - i });
    i = j;
  }
  return out;
}

class FileChunker {
  newBlobs = 0;
  private readonly seen = new IdSet();
  private readonly ring: SlabRing;
  constructor(
    private readonly repo: Repository,
    private readonly index: BlobIndex,
    private readonly pool: CodecPool,
    private readonly packer: PackWriter,
  ) {
    const cfg = repo.config;
    this.ring = new SlabRing(2 * pool.size + 2, Math.max(SLAB_BYTES, cfg.max_chunk_bytes, cfg.side_chunk_bytes, BLOCKS_START));
  }

  /**
   * Reads `file` once, a slab at a time into shared memory, where a worker computes the slab's
   * chunks' SHA-256s and ids (and, for a main file, DuckDB's block checksums); chunks the
   * repository lacks are then sealed and packed. The file's digest is computed from the chunks'
   * SHA-256s in file order, so every byte is hashed once, on all workers. `observe` sees the bytes
   * in file order (the source's block check), with the workers' checksum verdicts.
   */
  async add(
    file: SnapshotFile,
    blockSize: number,
    progress: (bytes: number) => void,
    observe?: (chunk: Uint8Array, checked: CheckedBlocks | undefined) => void,
  ): Promise<{ chunks_sha256: string; chunks: string[] }> {
    const cfg = this.repo.config;
    const ranges = chunkRanges(file, blockSize, cfg.max_chunk_bytes, cfg.side_chunk_bytes);
    const chunks = new Array<string>(ranges.length);
    const keys = this.repo.blobKeys;
    const inflight = new Set<Promise<void>>();
    let failure: unknown = null;
    const digest = new FileDigest();
    // The digest and the block check must see slabs in file order; the workers may finish them in any order.
    let inOrder: Promise<void> = Promise.resolve();
    let fd: number;
    try {
      fd = openSync(file.path, "r");
    } catch (err) {
      throw fsError(err, file.path, "read");
    }
    try {
      for (const slab of slabsOf(ranges, this.ring.bytes)) {
        if (failure) break;
        const whole = await this.ring.take();
        const buf = whole.subarray(0, slab.length);
        let got = 0;
        try {
          while (got < slab.length) {
            // Synchronous: this thread only reads and hands out slabs; a page-cache read of 2 MiB
            // takes well under a millisecond, less than a trip through the I/O thread pool.
            const bytesRead = readSync(fd, buf, got, slab.length - got, slab.start + got);
            if (bytesRead === 0) throw new DuckbakError(`${file.path}: file shrank while being read (locked copy expected ${file.size} bytes)`);
            got += bytesRead;
          }
        } catch (err) {
          this.ring.give(whole);
          throw err;
        }
        const spans = ranges.slice(slab.first, slab.first + slab.count).map(([o, l]): Span => [o - slab.start, l]);
        const blocks = observe && blockSize > 0 ? { first: firstBlockAt(slab.start, blockSize), size: blockSize } : undefined;
        const ids = this.pool.run({ op: "ids", keys, spans, blocks }, buf);
        const observed = (inOrder = inOrder.then(async () => {
          const r = await ids;
          digest.update(r.sums!);
          observe?.(buf, blocks && { size: blocks.size, bad: new Set(r.badBlocks) });
        }));
        observed.catch(() => {}); // awaited by its job; a failure surfaces there
        const job = ids.then(async (r) => {
          r.ids!.forEach((id, k) => (chunks[slab.first + k] = id));
          this.newBlobs += await packNew(this.pool, keys, this.packer, buf, spans, r.ids!, this.index, this.seen);
          await observed;
        });
        const tracked: Promise<void> = job.then(
          () => void inflight.delete(tracked),
          (err) => {
            inflight.delete(tracked);
            failure ??= err;
          },
        );
        // The slab is free again once its chunks are sealed and the block check has seen it.
        void tracked.then(() => this.ring.give(whole));
        inflight.add(tracked);
        progress(slab.start + slab.length);
      }
      await Promise.all(inflight);
      if (failure) throw failure;
    } catch (err) {
      await Promise.allSettled(inflight);
      throw err;
    } finally {
      closeSync(fd);
    }
    return { chunks_sha256: digest.digest(), chunks };
  }
}

/**
 * Seals and packs the chunks (`spans` of `data`, with their `ids`) that neither `index` nor `seen`
 * has, adding them to `seen`; returns how many. One worker job seals them all.
 */
export async function packNew(
  pool: CodecPool,
  keys: BlobKeys,
  packer: PackWriter,
  data: Uint8Array,
  spans: Span[],
  ids: string[],
  index: BlobIndex,
  seen: { has(id: string): boolean; add(id: string): unknown },
): Promise<number> {
  const fresh: Span[] = [];
  const freshIds: string[] = [];
  ids.forEach((id, k) => {
    if (index.has(id) || seen.has(id)) return;
    seen.add(id);
    fresh.push(spans[k]!);
    freshIds.push(id);
  });
  if (fresh.length === 0) return 0;
  const sealed = await pool.run({ op: "seal-spans", keys, spans: fresh }, data);
  for (const [k, part] of sealed.parts!.entries()) await packer.add(freshIds[k]!, part, fresh[k]![1]);
  return fresh.length;
}

/** Offset, within a slab starting at file offset `start`, of the first block boundary in it. */
function firstBlockAt(start: number, blockSize: number): number {
  return start <= BLOCKS_START ? BLOCKS_START - start : (blockSize - ((start - BLOCKS_START) % blockSize)) % blockSize;
}

/**
 * A snapshot of `opts.databases`. Given a repository still being opened (`location` and the
 * promise of it), the databases' capture starts meanwhile.
 */
export async function createRepoSnapshot(
  opening: Repository | { location: string; repository: Promise<Repository> },
  opts: RepoBackupOptions,
): Promise<RepoBackupResult> {
  const now = opts.now ?? new Date();
  const databases = [...new Set(opts.databases.map((d) => resolve(d)))];
  if (databases.length === 0) throw new UsageError("no databases to back up");
  const emit = opts.onEvent ?? (() => {});
  const capture = (location: string) =>
    acquireSnapshots(databases, {
      waitSeconds: opts.waitSeconds,
      settings: opts.settings,
      hookTimeoutSeconds: opts.hookTimeoutSeconds,
      hotRetries: opts.hotRetries,
      backup: location,
      onHook: (run) => emit({ type: "hook", run }),
      keys: opts.keys,
      // Row counts are needed only for the snapshot file: DuckDB loads while the files are read.
      describeLater: true,
    });
  // The capture (the lock holder starting, loading DuckDB) begins while the repository is still
  // being opened (its key derived from the password): not where hooks would stop an application
  // before the password is known to be right, and given up when the repository lock must be
  // waited for (no database stays locked meanwhile).
  const hooks = databases.some((d) => {
    const s = opts.settings?.(d);
    return Boolean(s?.beforeBackup || s?.afterBackup);
  });
  let early = opening instanceof Repository || hooks ? null : capture(opening.location);
  early?.catch(() => {}); // awaited below, or released
  const dropEarly = () => {
    void early?.then((s) => s.release(), () => {});
    early = null;
  };
  // The workers load while the key is derived.
  const pool = new CodecPool().start();
  let repo: Repository;
  let lock;
  try {
    repo = await (opening instanceof Repository ? opening : opening.repository);
    lock = await lockRepository(repo, {
      exclusive: false,
      command: "backup",
      waitSeconds: opts.lockWaitSeconds,
      onWait: (holder) => {
        dropEarly();
        opts.onLockWait?.(holder);
      },
    });
  } catch (err) {
    dropEarly();
    pool.close();
    throw err;
  }
  try {
    const index = await BlobIndex.load(repo);
    const set = await (early ?? capture(repo.location));
    const failed = new Map(set.failures.map((f) => [f.path, f.error]));
    for (const f of set.failures) emit({ type: "database-failed", path: f.path, error: f.error });
    const results = new Map<string, DatabaseBackupResult>();
    const described: RepoDatabase[] = [];
    // Each index file is written as it fills: the new blobs' entries are not all held to the end.
    const indexer = new IndexWriter(repo);
    const packer = new PackWriter(repo, 2, indexer);
    const chunker = new FileChunker(repo, index, pool, packer);
    let snapshotId: string | null = null;
    let snapshot: RepoSnapshot | null = null;
    try {
      const entries = assignEntryNames(set.snapshots.map((s) => basename(s.path)));
      for (const [i, snap] of set.snapshots.entries()) {
        try {
          described.push(await backupDatabase(snap, entries[i]!, chunker, emit, results));
        } catch (err) {
          if (!(err instanceof DuckbakError) && !(err as NodeJS.ErrnoException)?.code) throw err;
          const error = err instanceof DuckbakError ? err : fsError(err, snap.path, "read");
          failed.set(snap.path, error);
          emit({ type: "database-failed", path: snap.path, error });
        }
      }
      // Every byte is read: writers may go on while the packs are finished (the holder's exit is
      // awaited in `finally`).
      set.release().catch(() => {});
      await packer.finish();
      if (described.length > 0) {
        await indexer.finish();
        await pausePoint("repo:after-index");
        snapshot = {
          format: SNAPSHOT_FORMAT,
          version: SNAPSHOT_VERSION,
          timestamp: now.toISOString(),
          host: hostname(),
          duckbak_version: DUCKBAK_VERSION,
          databases: described,
          failed: [...failed].map(([path, error]) => ({ path, error: error.message })),
          stats: {
            logical_bytes: described.reduce((n, d) => n + d.files.reduce((m, f) => m + f.size_bytes, 0), 0),
            chunks: described.reduce((n, d) => n + d.files.reduce((m, f) => m + f.chunks.length, 0), 0),
            new_blobs: chunker.newBlobs,
            added_bytes: packer.storedBytes,
          },
        };
        snapshotId = await repo.putJson("snapshots", snapshot);
      } else {
        // Blobs of databases that failed midway: indexed, so the next backup reuses them.
        await indexer.finish();
      }
    } catch (err) {
      if (!(err instanceof DuckbakError) && !(err as NodeJS.ErrnoException)?.code) throw err;
      const error = err instanceof DuckbakError ? err : fsError(err, repo.location, "backup");
      for (const s of set.snapshots) {
        failed.set(s.path, error);
        results.delete(s.path);
      }
      snapshot = null;
    } finally {
      await set.release();
    }
    return {
      snapshot: snapshotId,
      snapshotData: snapshot,
      databases: databases.map((p) => results.get(p) ?? { path: p, ok: false, error: failed.get(p)! }),
    };
  } finally {
    pool.close();
    await lock.release();
  }
}

async function backupDatabase(
  snap: DatabaseSnapshot,
  entry: string,
  chunker: FileChunker,
  emit: (e: BackupEvent) => void,
  results: Map<string, DatabaseBackupResult>,
): Promise<RepoDatabase> {
  const started = performance.now();
  const total = snap.files.reduce((n, f) => n + f.size, 0);
  emit({ type: "database-start", path: snap.path, bytes: total });
  const blockSize = snap.header.active?.blockAllocSize ?? 262144;
  let before = 0;
  const files: Awaited<ReturnType<FileChunker["add"]>>[] = [];
  const check = sourceBlockCheck(snap);
  for (const file of snap.files) {
    const observe = file.role === "main" ? check.push : undefined;
    files.push(await chunker.add(file, blockSize, (n) => emit({ type: "progress", path: snap.path, bytes: before + n }), observe));
    before += file.size;
  }
  const { sourceBlocks, sourceDamage } = check.finish();
  const base = describeSnapshot(await describedSnapshot(snap), entry);
  const durationMs = Math.round(performance.now() - started);
  results.set(snap.path, { path: snap.path, ok: true, entry, bytes: total, durationMs, pausedMs: snap.pausedMs, sourceDamage, rawReason: snap.rawReason });
  emit({ type: "database-done", path: snap.path, bytes: total, durationMs });
  return { ...base, files: base.files.map(({ sha256: _, ...f }, j) => ({ ...f, ...files[j]! })), source_blocks: sourceBlocks };
}

export { shortId };
