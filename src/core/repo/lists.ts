// Chunk lists: a file's chunk ids in order are kept out of the snapshot file, in list blobs of
// LIST_IDS raw 32-byte ids each (the last one holds the rest), stored like chunks (sealed, packed,
// indexed, deduplicated: an unchanged file yields the same list blobs, so an incremental snapshot
// adds almost nothing). The snapshot file names each file's list blobs and its number of chunks.
// Readers fetch a file's lists one at a time; those that need the chunks' index entries (restore,
// one snapshot's verify, ls/sql) load them a window of chunks at a time (SnapshotChunks), so
// memory is bounded by the window, not by the database's size.
import { blobId, chunkSum, SUM_BYTES } from "../crypto/seal.ts";
import { StoreNotFoundError } from "../store/store.ts";
import { DuckbakError } from "../errors.ts";
import { BufferChurn } from "../archive/codec-pool.ts";
import { BlobError, openBlob, sealBlob, type BlobKeys } from "./blob.ts";
import { BlobIndex, type BlobLocation, type DeadPack } from "./index-file.ts";
import { ALL_IDS, isBlobId } from "./id-table.ts";
import { packKey, RepositoryDamagedError, type Repository } from "./repository.ts";
import type { PackWriter } from "./pack.ts";

/** Ids per list blob (256 KiB of raw ids): 2 GiB of 256 KiB chunks. */
export const LIST_IDS = 8192;
export const ID_BYTES = 32;

/** What a snapshot file records of a file's chunks. */
export interface ChunkLists {
  chunk_count: number;
  /** Blob ids of the file's list blobs, in order. */
  lists: string[];
}

/** Hex id of the `i`-th raw id in `ids`. */
export const idAt = (ids: Uint8Array, i: number): string => Buffer.from(ids.buffer, ids.byteOffset + i * ID_BYTES, ID_BYTES).toString("hex");

/** Chunks in list `i` of a file of `count` chunks. */
export const listLength = (count: number, i: number): number => Math.min(LIST_IDS, count - i * LIST_IDS);

/** A file's list record, checked: as many lists as its count needs, each a blob id. */
export function checkLists(f: Partial<ChunkLists>): string | null {
  if (!Number.isSafeInteger(f.chunk_count) || f.chunk_count! < 0 || !Array.isArray(f.lists)) return "no chunk lists recorded";
  if (f.lists.length !== Math.ceil(f.chunk_count! / LIST_IDS)) return `${f.lists.length} chunk lists recorded for ${f.chunk_count} chunks`;
  if (!f.lists.every(isBlobId)) return "a chunk list is not named by a blob id";
  return null;
}

/**
 * Collects a file's chunk ids in order and stores them as list blobs: sealed on this thread (one
 * 256 KiB list per 2 GiB of data), packed unless `known` or `seen` has them already. Without
 * `known` (an index too large to hold), finished lists wait for `settle` with their window's lookup.
 */
export class ListWriter {
  private readonly buf = new Uint8Array(LIST_IDS * ID_BYTES);
  private n = 0;
  private count = 0;
  private readonly lists: string[] = [];
  /** List blobs packed (new to the repository). */
  newBlobs = 0;
  /** Lists waiting for `settle`. */
  private held: { id: string; plain: Uint8Array }[] = [];

  constructor(
    private readonly keys: BlobKeys,
    private readonly packer: PackWriter,
    /** What the repository has, asked when a list is finished; null: the list waits for `settle`. */
    private readonly known: () => ((id: string) => boolean) | null,
    private readonly seen: { has(id: string): boolean; add(id: string): unknown },
  ) {}

  /** Lists waiting for `settle`. */
  get waiting(): number {
    return this.held.length;
  }

  waitingIds(): string[] {
    return this.held.map((h) => h.id);
  }

  /** Packs the waiting lists that `known` (their window's lookup) does not have. */
  async settle(known: (id: string) => boolean): Promise<void> {
    for (const { id, plain } of this.held.splice(0)) await this.store(id, plain, known);
  }

  /** The next chunks' ids, in file order. */
  async add(ids: Iterable<string>): Promise<void> {
    for (const id of ids) {
      Buffer.from(this.buf.buffer, this.buf.byteOffset + this.n * ID_BYTES, ID_BYTES).write(id, "hex");
      this.n++;
      this.count++;
      if (this.n === LIST_IDS) await this.flush();
    }
  }

  async finish(): Promise<ChunkLists> {
    if (this.n) await this.flush();
    return { chunk_count: this.count, lists: this.lists };
  }

  private async flush(): Promise<void> {
    const plain = this.buf.slice(0, this.n * ID_BYTES);
    this.n = 0;
    const sum = new Uint8Array(SUM_BYTES);
    chunkSum(plain, sum);
    const id = blobId(this.keys.id, sum);
    this.lists.push(id);
    const known = this.known();
    if (known) await this.store(id, plain, known);
    else this.held.push({ id, plain });
  }

  private async store(id: string, plain: Uint8Array, known: (id: string) => boolean): Promise<void> {
    if (known(id) || this.seen.has(id)) return;
    this.seen.add(id);
    this.newBlobs++;
    await this.packer.add(id, sealBlob(this.keys, plain), plain.length);
  }
}

/** List blob `id` at `loc`, opened and checked against its id: `expect` raw ids. */
export async function readList(repo: Repository, loc: BlobLocation, id: string, expect: number, what: string): Promise<Uint8Array> {
  const key = packKey(loc.pack);
  // Named as read.ts names chunks' blobs: a list is a blob like them.
  const damaged = (why: string) => new RepositoryDamagedError(repo.location, `${what}: pack ${key}: blob ${id.slice(0, 12)}…: ${why}`);
  let sealed: Uint8Array;
  try {
    sealed = await repo.store.getRange(key, loc.offset, loc.length);
  } catch (err) {
    if (err instanceof StoreNotFoundError) throw new RepositoryDamagedError(repo.location, `${what}: pack ${key} is missing`);
    if (err instanceof DuckbakError) throw new RepositoryDamagedError(repo.location, `${what}: pack ${key}: ${err.message.replace(/^.*?: /, "")}`);
    throw err;
  }
  // The index's plain length, checked before anything is allocated for it.
  if (loc.raw !== expect * ID_BYTES) throw damaged(`a chunk list of ${loc.raw / ID_BYTES} ids, ${expect} expected`);
  const ids = new Uint8Array(loc.raw);
  try {
    openBlob(repo.blobKeys, sealed, id, ids);
  } catch (err) {
    if (err instanceof BlobError) throw damaged(err.message);
    throw err;
  }
  return ids;
}

/**
 * A file's chunk ids, one list blob at a time (raw ids), its lists located by `index` (one that
 * holds them: the whole repository's, or SnapshotChunks' list index).
 */
export async function* fileLists(repo: Repository, index: { get(id: string): BlobLocation | undefined }, file: ChunkLists, what: string): AsyncGenerator<Uint8Array> {
  const bad = checkLists(file);
  if (bad) throw new RepositoryDamagedError(repo.location, `${what}: ${bad}`);
  for (const [i, id] of file.lists.entries()) {
    const loc = index.get(id);
    if (!loc) throw new RepositoryDamagedError(repo.location, `${what}: chunk list ${id.slice(0, 12)}… is in no index file`);
    yield await readList(repo, loc, id, listLength(file.chunk_count, i), what);
  }
}

/** A file's chunks (id, location) in order, a list at a time. */
export type ChunkStream = AsyncIterable<Iterable<[string, BlobLocation]>>;

function* located(ids: Uint8Array, index: BlobIndex, unindexed: (id: string) => Error): Iterable<[string, BlobLocation]> {
  for (let i = 0; i < ids.length / ID_BYTES; i++) {
    const id = idAt(ids, i);
    const loc = index.get(id);
    if (!loc) throw unindexed(id);
    yield [id, loc];
  }
}

const inNoIndexFile = (repo: Repository, what: string) => (id: string) => new RepositoryDamagedError(repo.location, `${what}: chunk ${id.slice(0, 12)}… is in no index file`);

/** The chunks of the raw ids `ids` located by `index` (one that has them all). */
export function locatedChunks(repo: Repository, ids: Uint8Array, index: BlobIndex, what: string): Iterable<[string, BlobLocation]> {
  return located(ids, index, inNoIndexFile(repo, what));
}

/** A file's chunks located by `index` (one that holds the whole repository's entries). */
export async function* indexedChunks(repo: Repository, index: BlobIndex, file: ChunkLists, what: string): ChunkStream {
  for await (const ids of fileLists(repo, index, file, what)) yield located(ids, index, inNoIndexFile(repo, what));
}

/** What reading one chunk leaves to collect: its id as a string, its location, its place in a range. */
const GARBAGE_PER_CHUNK = 400;
// The engine's collector, paced by its own small heap, lets that pile up (hundreds of MiB over
// millions of chunks): collected every 16 MiB of it instead.
const churn = new BufferChurn();

/**
 * Chunks whose index entries are loaded at once: ~90 bytes each (the raw ids and the table),
 * ~23 MiB: 64 GiB of 256 KiB blocks, 4 GiB of 16 KiB ones, in one window (more cost one more scan of the index each).
 */
export const WINDOW_CHUNKS = 1 << 18;

interface Unit {
  file: number;
  list: number;
  count: number;
}

export interface ChunkWindow {
  /** Locations of the window's chunks and of every list blob of the files. */
  index: BlobIndex;
  units: { file: number; list: number; ids: Uint8Array }[];
}

/**
 * The chunks of some files of a snapshot, with their index entries a window at a time: at most
 * WINDOW_CHUNKS chunks (whole lists; a window is cut at list boundaries). Opening it scans the
 * index for the files' list blobs; each window read scans it for that window's chunks (a snapshot
 * of less than WINDOW_CHUNKS chunks, 64 GiB of 256 KiB blocks, is one window: two scans).
 */
export class SnapshotChunks {
  private current: { n: number; window: ChunkWindow; checked: boolean } | null = null;
  private constructor(
    private readonly repo: Repository,
    readonly files: (ChunkLists & { label: string })[],
    private readonly lists: BlobIndex,
    /** Units of each window. */
    readonly windows: Unit[][],
    private readonly onDamagedIndex?: (err: RepositoryDamagedError) => void,
    private readonly dead?: DeadPack,
  ) {}

  /**
   * `files`: each with the label its errors name (snapshot, database, file). Given
   * `onDamagedIndex`, an index file that cannot be read is reported there and skipped; given
   * `dead`, the copies of blobs in those packs are passed over (restore: a backup stored them again).
   */
  static async open(repo: Repository, files: (ChunkLists & { label: string })[], onDamagedIndex?: (err: RepositoryDamagedError) => void, windowChunks = WINDOW_CHUNKS, dead?: DeadPack): Promise<SnapshotChunks> {
    const windows: Unit[][] = [];
    let w: Unit[] = [];
    let n = 0;
    for (const [k, f] of files.entries()) {
      const bad = checkLists(f);
      if (bad) throw new RepositoryDamagedError(repo.location, `${f.label}: ${bad}`);
      for (let i = 0; i < f.lists.length; i++) {
        const count = listLength(f.chunk_count, i);
        if (w.length && n + count > windowChunks) {
          windows.push(w);
          w = [];
          n = 0;
        }
        w.push({ file: k, list: i, count });
        n += count;
      }
    }
    if (w.length) windows.push(w);
    const lists = new BlobIndex(files.flatMap((f) => f.lists), ALL_IDS, dead);
    await lists.loadAll(repo, onDamagedIndex);
    return new SnapshotChunks(repo, files, lists, windows, onDamagedIndex, dead);
  }

  /** Where a list blob is (undefined: in no index file). */
  listLocation(id: string): BlobLocation | undefined {
    return this.lists.get(id);
  }

  /**
   * Window `n`: its lists read, and the index entries of their chunks (and of the files' lists).
   * A list that cannot be read throws, or, given `onListError`, is reported and left out.
   */
  async window(n: number, onListError?: (file: number, list: number, err: RepositoryDamagedError) => void): Promise<ChunkWindow> {
    if (this.current?.n === n) return this.current.window;
    if (this.current) {
      // The last window's memory (and the garbage of reading it) is freed before the next one's is taken.
      this.current = null;
      Bun.gc(true);
    }
    const units: ChunkWindow["units"] = [];
    const index = new BlobIndex([], ALL_IDS, this.dead);
    for (const u of this.windows[n]!) {
      const f = this.files[u.file]!;
      const id = f.lists[u.list]!;
      try {
        const loc = this.lists.get(id);
        if (!loc) throw new RepositoryDamagedError(this.repo.location, `${f.label}: chunk list ${id.slice(0, 12)}… is in no index file`);
        const ids = await readList(this.repo, loc, id, u.count, f.label);
        churn.drop(2 * ids.length); // the sealed and the decrypted copies
        index.wantRaw(ids);
        units.push({ file: u.file, list: u.list, ids });
      } catch (err) {
        if (!onListError || !(err instanceof RepositoryDamagedError)) throw err;
        onListError(u.file, u.list, err);
      }
    }
    for (const f of this.files) for (const id of f.lists) index.want(id);
    await index.loadAll(this.repo, this.onDamagedIndex);
    const window = { index, units };
    this.current = { n, window, checked: false };
    return window;
  }

  /** Throws naming the first chunk of `window` that is in no index file. */
  checkIndexed(window: ChunkWindow, consequence: string): void {
    for (const u of window.units)
      for (let i = 0; i < u.ids.length / ID_BYTES; i++)
        if (!window.index.hasRaw(u.ids, i * ID_BYTES))
          throw new RepositoryDamagedError(this.repo.location, `${this.files[u.file]!.label}: chunk ${idAt(u.ids, i).slice(0, 12)}… is in no index file; ${consequence}`);
  }

  /** File `k`'s chunks in order with their locations, loading (and checking) windows as it goes. */
  async *chunks(k: number, consequence: string): ChunkStream {
    for (const [n, units] of this.windows.entries()) {
      if (!units.some((u) => u.file === k)) continue;
      await this.window(n);
      const current = this.current!;
      if (!current.checked) this.checkIndexed(current.window, consequence);
      current.checked = true;
      for (const u of current.window.units) {
        if (u.file !== k) continue;
        yield located(u.ids, current.window.index, inNoIndexFile(this.repo, this.files[k]!.label));
        churn.drop((u.ids.length / ID_BYTES) * GARBAGE_PER_CHUNK);
      }
    }
  }
}
