// backup --repo: the same lock-safe capture as archive backup (snapshot holder, WAL files), then
// each file cut into chunks aligned to DuckDB's layout, each chunk's id computed and, when the
// repository does not have it yet, sealed (zstd + AES-GCM) by the codec workers and packed.
// Upload order makes a snapshot visible only once everything it names exists: packs, then index
// files, then the snapshot file.
import { closeSync, openSync, readSync } from "node:fs";
import { basename, resolve } from "node:path";
import { hostname } from "node:os";
import { DuckbakError, UsageError, fsError } from "../errors.ts";
import { acquireSnapshots, type DatabaseSnapshot, type SnapshotFile, type SnapshotOptions, type SnapshotSet } from "../snapshot.ts";
import { describeSnapshot, sourceBlockCheck, type BackupEvent, type DatabaseBackupResult } from "../backup.ts";
import { assignEntryNames } from "../naming.ts";
import { BLOCKS_START } from "../duckdb/header.ts";
import { CodecPool, SlabRing, type JobResult, type Span } from "../archive/codec-pool.ts";
import { FileDigest, SUM_BYTES, blobId } from "../crypto/seal.ts";
import type { CheckedBlocks } from "../duckdb/blocks.ts";
import { DUCKBAK_VERSION } from "../version.ts";
import { BlobIndex, IndexWriter, indexBytes, missingFrom, storedPacks, type DeadPack } from "./index-file.ts";
import { IdSet } from "./id-table.ts";
import { PackWriter } from "./pack.ts";
import { ListWriter, type ChunkLists } from "./lists.ts";
import { lockRepository, type HeldRepoLock } from "./locks.ts";
import { SumCache } from "./sum-cache.ts";
import { SNAPSHOT_FORMAT, SNAPSHOT_VERSION, shortId, type RepoDatabase, type RepoSnapshot } from "./snapshots.ts";
import { pausePoint } from "../pause.ts";
import type { KeyLookup } from "../keys.ts";
import type { BlobKeys } from "./blob.ts";
import { Repository, type RepoConfig } from "./repository.ts";

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
  /** Index files up to this many bytes are loaded whole (WHOLE_INDEX_BYTES); above, chunks are looked up a window at a time. */
  wholeIndexBytes?: number;
  /** Chunks per lookup window (BACKUP_WINDOW_CHUNKS). */
  windowChunks?: number;
  /** New blobs remembered before they are stored, indexed and forgotten (HELD_NEW_BLOBS). */
  heldNewBlobs?: number;
  /** Hash every chunk, not trusting the sum cache's record of the last backup (it is rewritten). */
  rehash?: boolean;
}

export interface RepoBackupResult {
  /** The snapshot written, or null when no database could be backed up. */
  snapshot: string | null;
  snapshotData: RepoSnapshot | null;
  databases: DatabaseBackupResult[];
  /** Bytes whose SHA-256 was computed: the others were unchanged since the user's last backup (see sum-cache.ts). */
  hashedBytes: number;
}

/**
 * Chunk boundaries of a file: the main file's 12 KiB header region, then one chunk per block
 * (blocks larger than `maxChunk` in `maxChunk` pieces); side files (WAL) fixed-size from offset 0,
 * so a WAL that only grew keeps its old full chunks.
 */
export function* chunkRanges(file: Pick<SnapshotFile, "role" | "size">, blockSize: number, maxChunk: number, sideChunk: number): Generator<[number, number]> {
  let start = 0;
  if (file.role === "main") {
    const head = Math.min(BLOCKS_START, file.size);
    if (head > 0) yield [0, head];
    start = head;
  }
  const step = file.role === "main" ? Math.min(blockSize, maxChunk) : sideChunk;
  for (let o = start; o < file.size; o += step) yield [o, Math.min(step, file.size - o)];
}

/** A slab: consecutive chunks of a file read with one call and handed to a worker as one job. */
const SLAB_BYTES = 2 << 20;

interface Slab {
  start: number;
  length: number;
  /** Its chunks' ranges in the file. */
  ranges: [number, number][];
}

/** Groups chunk ranges into slabs of at most `limit` bytes (at least one chunk each), as they come: nothing is held per chunk of the file. */
function* slabsOf(ranges: Iterable<[number, number]>, limit: number): Generator<Slab> {
  let cur: Slab | null = null;
  for (const r of ranges) {
    if (cur && cur.length + r[1] > limit) {
      yield cur;
      cur = null;
    }
    cur ??= { start: r[0], length: 0, ranges: [] };
    cur.ranges.push(r);
    cur.length += r[1];
  }
  if (cur) yield cur;
}

/**
 * With an index too large to hold (see openTarget), chunks whose membership is looked up at once:
 * ~160 bytes each while they wait (id, range, SHA-256), ~40 MiB.
 */
const BACKUP_WINDOW_CHUNKS = 1 << 18;
/** Index files up to this size are loaded whole for a backup (~57 bytes a blob: ~20 MiB for 16 MiB of files). */
const WHOLE_INDEX_BYTES = 16 << 20;
/**
 * New blobs remembered (the run's own deduplication, ~57 bytes each) before they are stored and
 * indexed and forgotten (the whole index dropped too: lookups by window from then on), so that a
 * first backup of a very large database stays bounded as well.
 */
const HELD_NEW_BLOBS = 1 << 18;

/** What a chunk needs after its SHA-256: its id, whether the repository has it, where to pack it. */
interface Sink {
  keys: BlobKeys;
  packer: PackWriter;
  /** The whole index; null when it is too large to hold: chunks are then looked up a window at a time. */
  index: BlobIndex | null;
  /** The index's entries for `ids` only. */
  lookup(ids: Iterable<string>): Promise<BlobIndex>;
  /** Stores every blob added so far and writes their index files: lookups find them from then on. */
  persist(): Promise<void>;
}

/**
 * Chunks whose membership waits: read before the repository was open and locked (their ids wait
 * for its key), or looked up a window at a time.
 */
interface Deferred {
  ranges: [number, number][];
  /** The worker's result: SHA-256s, and ids when the key was known (see idsFor). */
  hashed: JobResult;
}

class FileChunker {
  newBlobs = 0;
  /** Bytes whose SHA-256 was computed (the others' were known from the sum cache). */
  hashedBytes = 0;
  /** New blobs of this run not yet findable through the index (see HELD_NEW_BLOBS). */
  private seen = new IdSet();
  private readonly windowChunks: number;
  private readonly heldNewBlobs: number;
  /** `seen` as it is at each call (it is replaced when its blobs are persisted). */
  private readonly seenNow = { has: (id: string) => this.seen.has(id), add: (id: string) => this.seen.add(id) };
  private readonly ring: SlabRing;
  /** The sink once known; until then workers compute only the chunks' SHA-256s. */
  private ready: Sink | null = null;
  private readonly sink: Promise<Sink>;
  constructor(
    private readonly config: RepoConfig,
    private readonly pool: CodecPool,
    sink: Sink | Promise<Sink>,
    /** Aborted when what is being read may no longer be locked, or the repository cannot be used. */
    private readonly signal: AbortSignal = new AbortController().signal,
    private readonly limits: Pick<RepoBackupOptions, "windowChunks" | "heldNewBlobs" | "rehash"> = {},
  ) {
    this.windowChunks = limits.windowChunks ?? BACKUP_WINDOW_CHUNKS;
    this.heldNewBlobs = limits.heldNewBlobs ?? HELD_NEW_BLOBS;
    if (sink instanceof Promise) sink.then((s) => (this.ready = s), () => {});
    else this.ready = sink;
    this.sink = Promise.resolve(sink);
    this.ring = new SlabRing(2 * pool.size + 2, Math.max(SLAB_BYTES, config.max_chunk_bytes, config.side_chunk_bytes, BLOCKS_START));
  }

  /**
   * Reads `file` (of the database at `database`) once, a slab at a time into shared memory, where
   * a worker computes the slab's chunks' SHA-256s and ids (and, for a main file, DuckDB's block
   * checksums); chunks the repository lacks are then sealed and packed. A chunk unchanged since
   * the user's last backup is not hashed again (sum-cache.ts). The file's digest is
   * computed from the chunks' SHA-256s in file order, so every byte is hashed at most once, on
   * all workers. `observe` sees the bytes in file order (the source's block check), with the
   * workers' checksum verdicts.
   *
   * Reading starts before the repository is open (its key derived from the password): slabs read
   * until then get only their SHA-256s and are let go; once it is open, their ids are computed
   * and the few chunks it lacks are read again (the file is still locked) to be sealed. Without a
   * whole index (a large repository, or after forget()), chunks wait likewise, a window at a time.
   */
  async add(
    database: string,
    file: SnapshotFile,
    blockSize: number,
    progress: (bytes: number) => void,
    observe?: (chunk: Uint8Array, checked: CheckedBlocks | undefined) => void,
  ): Promise<ChunkLists & { chunks_sha256: string }> {
    const ranges = chunkRanges(file, blockSize, this.config.max_chunk_bytes, this.config.side_chunk_bytes);
    let waiting = 0;
    // The chunks' ids go into list blobs in file order (never all held at once), once the repository is ready.
    let lists: ListWriter | null = null;
    let chunkLists: ChunkLists;
    let listed: Promise<void> = Promise.resolve();
    const inflight = new Set<Promise<void>>();
    const deferred: Deferred[] = [];
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
    const cache = await SumCache.open(database, file.name, this.limits.rehash ?? false);
    try {
      for (const slab of slabsOf(ranges, this.ring.bytes)) {
        // A window of chunks waits to be looked up: done before reading on (at most one window held).
        if (waiting >= this.windowChunks || this.seen.size >= this.heldNewBlobs) {
          await this.drain(inflight, () => failure);
          await listed;
          waiting = 0;
          await this.catchUp(fd, file, deferred.splice(0), lists);
          if (this.seen.size >= this.heldNewBlobs) await this.forget();
        }
        if (this.signal.aborted) failure ??= this.signal.reason;
        if (failure) break;
        const whole = await this.ring.take();
        const buf = whole.subarray(0, slab.length);
        try {
          readFully(fd, buf, slab.start, file);
        } catch (err) {
          this.ring.give(whole);
          throw err;
        }
        const spans = slab.ranges.map(([o, l]): Span => [o - slab.start, l]);
        const blocks = observe && blockSize > 0 ? { first: firstBlockAt(slab.start, blockSize), size: blockSize } : undefined;
        const prior = cache?.prior(slab.ranges);
        const hashed = this.pool.run({ op: "ids", keys: this.ready?.keys, spans, blocks, seeds: cache?.seeds, prior }, buf);
        const observed = (inOrder = inOrder.then(async () => {
          const r = await hashed;
          digest.update(r.sums!);
          cache?.record(slab.ranges, r.prints!, r.sums!);
          this.hashedBytes += r.hashedBytes!;
          observe?.(buf, blocks && { size: blocks.size, bad: new Set(r.badBlocks) });
        }));
        observed.catch(() => {}); // awaited by its job; a failure surfaces there
        listed = listed.then(async () => {
          const [r, sink] = await Promise.all([hashed, this.sink]);
          lists ??= new ListWriter(sink.keys, sink.packer, () => this.ready?.index ? (id) => this.ready!.index!.has(id) : null, this.seenNow);
          await lists.add(idsFor(r, sink.keys));
        });
        listed.catch(() => {}); // awaited below
        const job = hashed.then(async (r) => {
          const sink = this.ready;
          if (sink?.index) {
            const ids = idsFor(r, sink.keys);
            // Not `this.newBlobs += await …`: that reads the count before the await, losing other jobs' additions.
            const added = await packNew(this.pool, sink.keys, sink.packer, buf, spans, ids, sink.index, this.seen);
            this.newBlobs += added;
          } else deferred.push({ ranges: slab.ranges, hashed: r });
          await observed;
        });
        if (!this.ready?.index) waiting += slab.ranges.length;
        this.track(inflight, job, (err) => (failure ??= err), () => this.ring.give(whole));
        progress(slab.start + slab.length);
      }
      await this.drain(inflight, () => failure);
      await listed;
      // The chunks are packed before the file's last list (a list goes after what it names); without a
      // whole index that list waits for the last window's lookup, and is stored after its chunks there.
      if (deferred.length > 0 && (await this.sink, this.ready!.index)) await this.catchUp(fd, file, deferred.splice(0), lists);
      const written = lists as ListWriter | null; // (set in the callbacks above)
      chunkLists = written ? await written.finish() : { chunk_count: 0, lists: [] };
      if (deferred.length > 0 || written?.waiting) await this.catchUp(fd, file, deferred, written);
      await cache?.finish();
    } catch (err) {
      await Promise.allSettled(inflight);
      await cache?.abort();
      throw err;
    } finally {
      closeSync(fd);
    }
    return { chunks_sha256: digest.digest(), ...chunkLists };
  }

  /**
   * Stores the new blobs and indexes them, then forgets them and the whole index: from here on
   * chunks are looked up a window at a time (the index files, this run's included, scanned).
   */
  private async forget(): Promise<void> {
    const sink = await this.sink;
    await sink.persist();
    this.ready = { ...sink, index: null };
    this.seen = new IdSet();
  }

  /** Waits for every job in `inflight`; throws the first failure. */
  private async drain(inflight: Set<Promise<void>>, failure: () => unknown): Promise<void> {
    await Promise.all(inflight);
    if (failure()) throw failure();
  }

  /** Runs `job` in `inflight`; `done` (freeing its slab) once it has settled, `fail` with its error. */
  private track(inflight: Set<Promise<void>>, job: Promise<void>, fail: (err: unknown) => void, done: () => void): void {
    const tracked: Promise<void> = job.then(
      () => void inflight.delete(tracked),
      (err) => {
        inflight.delete(tracked);
        fail(err);
      },
    );
    void tracked.then(done);
    inflight.add(tracked);
  }

  /**
   * Chunks whose membership waited (read before the repository was ready, or a window of them):
   * their ids, looked up; the ones the repository lacks are read again and packed, and so are the
   * list blobs that waited with them.
   */
  private async catchUp(fd: number, file: SnapshotFile, deferred: Deferred[], lists: ListWriter | null): Promise<void> {
    await this.sink;
    const sink = this.ready!; // without its whole index once forget() has run
    // The file may have been let go meanwhile (the repository lock had to be waited for).
    if (this.signal.aborted) throw this.signal.reason;
    const ids = deferred.map((d) => idsFor(d.hashed, sink.keys));
    const index = sink.index ?? (await sink.lookup([...ids.flat(), ...(lists?.waitingIds() ?? [])]));
    const fresh: { range: [number, number]; id: string }[] = [];
    deferred.forEach((d, j) =>
      ids[j]!.forEach((id, k) => {
        if (!index.has(id) && !this.seen.has(id)) fresh.push({ range: d.ranges[k]!, id });
      }),
    );
    const inflight = new Set<Promise<void>>();
    let failure: unknown = null;
    try {
      for (let i = 0; i < fresh.length && !failure; ) {
        const whole = await this.ring.take();
        const spans: Span[] = [];
        const freshIds: string[] = [];
        let at = 0;
        try {
          for (; i < fresh.length && (spans.length === 0 || at + fresh[i]!.range[1] <= whole.length); i++) {
            const [offset, length] = fresh[i]!.range;
            readFully(fd, whole.subarray(at, at + length), offset, file);
            spans.push([at, length]);
            freshIds.push(fresh[i]!.id);
            at += length;
          }
        } catch (err) {
          this.ring.give(whole);
          throw err;
        }
        const job = packNew(this.pool, sink.keys, sink.packer, whole, spans, freshIds, index, this.seen).then((n) => void (this.newBlobs += n));
        this.track(inflight, job, (err) => (failure ??= err), () => this.ring.give(whole));
      }
      await this.drain(inflight, () => failure);
    } catch (err) {
      await Promise.allSettled(inflight);
      throw err;
    }
    await lists?.settle((id) => index.has(id));
  }
}

/** Fills `buf` from `fd` at `position`. Synchronous: this thread only reads and hands out slabs; a page-cache read of 2 MiB takes well under a millisecond, less than a trip through the I/O thread pool. */
function readFully(fd: number, buf: Uint8Array, position: number, file: SnapshotFile): void {
  for (let got = 0; got < buf.length; ) {
    const n = readSync(fd, buf, got, buf.length - got, position + got);
    if (n === 0) throw new DuckbakError(`${file.path}: file shrank while being read (locked copy expected ${file.size} bytes)`);
    got += n;
  }
}

/**
 * A slab's blob ids: the worker's, or (it ran before the key was known) made here from its
 * chunks' SHA-256s (SUM_BYTES each), once: kept on the result for the list and the lookup alike.
 */
function idsFor(r: JobResult, keys: BlobKeys): string[] {
  if (!r.ids) {
    const ids: string[] = [];
    for (let o = 0; o < r.sums!.length; o += SUM_BYTES) ids.push(blobId(keys.id, r.sums!.subarray(o, o + SUM_BYTES)));
    r.ids = ids;
  }
  return r.ids;
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

/** A repository being opened: its config first (chunk sizes: reading can start), then its key. */
export interface RepositoryOpening {
  location: string;
  config: Promise<RepoConfig>;
  repository: Promise<Repository>;
}

/** The repository open and locked, its index loaded: where new chunks go. */
interface Target extends Sink {
  repo: Repository;
  lock: HeldRepoLock;
  indexer: IndexWriter;
}

/** Why an early reading was given up: the repository lock had to be waited for. */
class CaptureDropped extends Error {}

/**
 * A snapshot of `opts.databases`. Given a repository still being opened, the databases are
 * captured and read meanwhile (see FileChunker.add).
 */
export async function createRepoSnapshot(opening: Repository | RepositoryOpening, opts: RepoBackupOptions): Promise<RepoBackupResult> {
  const now = opts.now ?? new Date();
  const databases = [...new Set(opts.databases.map((d) => resolve(d)))];
  if (databases.length === 0) throw new UsageError("no databases to back up");
  const emit = opts.onEvent ?? (() => {});
  const location = opening.location;
  const capture = () =>
    acquireSnapshots(databases, {
      waitSeconds: opts.waitSeconds,
      settings: opts.settings,
      hookTimeoutSeconds: opts.hookTimeoutSeconds,
      hotRetries: opts.hotRetries,
      backup: location,
      onHook: (run) => emit({ type: "hook", run }),
      keys: opts.keys,
    });
  // The capture and the reading begin while the repository is still being opened (its key derived
  // from the password): not where hooks would stop an application before the password is known
  // to be right, and given up when the repository lock must be waited for (no database stays
  // locked meanwhile) or the repository cannot be opened.
  const hooks = databases.some((d) => {
    const s = opts.settings?.(d);
    return Boolean(s?.beforeBackup || s?.afterBackup);
  });
  let early = opening instanceof Repository || hooks ? null : capture();
  early?.catch(() => {}); // awaited below, or released
  const abort = new AbortController();
  const dropEarly = (why: unknown) => {
    abort.abort(why);
    void early?.then((s) => s.release(), () => {});
    early = null;
  };
  const opened = openTarget(opening, opts, () => dropEarly(new CaptureDropped()));
  opened.catch((err) => dropEarly(err));
  // The workers load while the key is derived.
  const pool = new CodecPool().start();
  let target: Target | null = null;
  let set: SnapshotSet | null = null;
  try {
    const config = opening instanceof Repository ? opening.config : await opening.config;
    let read: DatabasesRead | null = null;
    const first = early;
    if (first) {
      const s = await first;
      if (!abort.signal.aborted) {
        set = s;
        try {
          read = await readDatabases(set, new FileChunker(config, pool, opened, abort.signal, opts), emit, abort.signal);
        } catch (err) {
          if (!abort.signal.aborted) throw err;
        }
      }
      // Let go by dropEarly: read again under the repository lock.
      if (abort.signal.aborted) [set, read] = [null, null];
    }
    target = await opened;
    if (!set || !read) {
      set = await capture();
      read = await readDatabases(set, new FileChunker(config, pool, target, undefined, opts), emit);
    }
    const { described, results, failed, newBlobs, hashedBytes } = read;
    const { repo, indexer, packer } = target;
    let snapshotId: string | null = null;
    let snapshot: RepoSnapshot | null = null;
    try {
      // Every byte is read: writers may go on while the packs are finished (the holder's exit is
      // awaited in `finally`).
      set.release().catch(() => {});
      await packer.finish();
      await indexer.finish();
      // Blobs of databases that failed midway are indexed too, so the next backup reuses them.
      if (described.length > 0) {
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
            chunks: described.reduce((n, d) => n + d.files.reduce((m, f) => m + f.chunk_count, 0), 0),
            new_blobs: newBlobs,
            added_bytes: packer.storedBytes,
          },
        };
        snapshotId = await repo.putJson("snapshots", snapshot);
      }
    } catch (err) {
      if (!(err instanceof DuckbakError) && !(err as NodeJS.ErrnoException)?.code) throw err;
      const error = err instanceof DuckbakError ? err : fsError(err, repo.location, "backup");
      for (const s of set.snapshots) {
        failed.set(s.path, error);
        results.delete(s.path);
      }
      snapshot = null;
    }
    return {
      snapshot: snapshotId,
      snapshotData: snapshot,
      hashedBytes,
      databases: databases.map((p) => results.get(p) ?? { path: p, ok: false, error: failed.get(p)! }),
    };
  } finally {
    pool.close();
    await set?.release();
    await (target ? target.lock.release() : opened.then((t) => t.lock.release(), () => {}));
  }
}

/** Opens `opening` (when it is not open yet), takes the shared repository lock and loads the index. */
async function openTarget(opening: Repository | RepositoryOpening, opts: RepoBackupOptions, onWait: () => void): Promise<Target> {
  const repo = await (opening instanceof Repository ? opening : opening.repository);
  const lock = await lockRepository(repo, {
    exclusive: false,
    command: "backup",
    waitSeconds: opts.lockWaitSeconds,
    onWait: (holder) => {
      onWait();
      opts.onLockWait?.(holder);
    },
  });
  try {
    // A chunk whose pack is lost (or cut short) is stored again: this snapshot then restores.
    const missing = missingFrom(await storedPacks(repo));
    const own = new Set<string>(); // packs this run stored (after the listing)
    const dead: DeadPack = (pack, size) => missing(pack, size) && !own.has(pack);
    // Memory stays bounded whatever the repository's size: a large index is looked up a window of chunks at a time.
    const index = (await indexBytes(repo)) <= (opts.wholeIndexBytes ?? WHOLE_INDEX_BYTES) ? await BlobIndex.load(repo, undefined, dead) : null;
    // Each index file is written as it fills: the new blobs' entries are not all held to the end.
    const indexer = new IndexWriter(repo);
    const lookup = (ids: Iterable<string>) => BlobIndex.load(repo, ids, dead);
    const packer = new PackWriter(repo, 2, {
      add: (pack) => {
        own.add(pack.id);
        indexer.add(pack);
      },
    });
    const persist = async () => {
      await packer.flush();
      await indexer.finish();
    };
    return { repo, lock, index, lookup, persist, indexer, keys: repo.blobKeys, packer };
  } catch (err) {
    await lock.release();
    throw err;
  }
}

interface DatabasesRead {
  described: RepoDatabase[];
  results: Map<string, DatabaseBackupResult>;
  failed: Map<string, DuckbakError>;
  newBlobs: number;
  hashedBytes: number;
}

/**
 * Every captured database through `chunker`; one that fails is recorded and the others go on.
 * When `signal` is aborted, what it was aborted with is thrown instead.
 */
async function readDatabases(set: SnapshotSet, chunker: FileChunker, emit: (e: BackupEvent) => void, signal?: AbortSignal): Promise<DatabasesRead> {
  const failed = new Map(set.failures.map((f) => [f.path, f.error]));
  const results = new Map<string, DatabaseBackupResult>();
  const described: RepoDatabase[] = [];
  const entries = assignEntryNames(set.snapshots.map((s) => basename(s.path)));
  for (const f of set.failures) emit({ type: "database-failed", path: f.path, error: f.error });
  for (const [i, snap] of set.snapshots.entries()) {
    try {
      described.push(await backupDatabase(snap, entries[i]!, chunker, emit, results));
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (!(err instanceof DuckbakError) && !(err as NodeJS.ErrnoException)?.code) throw err;
      const error = err instanceof DuckbakError ? err : fsError(err, snap.path, "read");
      failed.set(snap.path, error);
      emit({ type: "database-failed", path: snap.path, error });
    }
  }
  return { described, results, failed, newBlobs: chunker.newBlobs, hashedBytes: chunker.hashedBytes };
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
    files.push(await chunker.add(snap.realPath ?? snap.path, file, blockSize, (n) => emit({ type: "progress", path: snap.path, bytes: before + n }), observe));
    before += file.size;
  }
  const { sourceBlocks, sourceDamage } = check.finish();
  const base = describeSnapshot(snap, entry);
  const durationMs = Math.round(performance.now() - started);
  results.set(snap.path, { path: snap.path, ok: true, entry, bytes: total, durationMs, pausedMs: snap.pausedMs, sourceDamage, rawReason: snap.rawReason });
  emit({ type: "database-done", path: snap.path, bytes: total, durationMs });
  return { ...base, files: base.files.map(({ sha256: _, ...f }, j) => ({ ...f, ...files[j]! })), source_blocks: sourceBlocks };
}

export { shortId };
