// The index: which pack holds each blob, where. Each backup (and each garbage collection) adds
// index files of its own; the repository's index is the union of all of them. In memory only ids
// and locations are kept, in a compact table (id-table.ts: ~57 bytes per blob), never blob
// contents; commands that read some snapshots keep only the entries of the chunks those name.
import { BufferChurn } from "../archive/codec-pool.ts";
import { ALL_IDS, IdPart, IdTable, isBlobId } from "./id-table.ts";
import { decodeJson, packOfKey, RepositoryDamagedError, type Repository } from "./repository.ts";
import type { PackInfo } from "./pack.ts";

export interface IndexFile {
  format: "duckbak-index";
  version: 1;
  packs: { id: string; size: number; blobs: [id: string, offset: number, length: number, raw: number][] }[];
}

export interface BlobLocation {
  pack: string;
  offset: number;
  length: number;
  raw: number;
}

/** Bounds on one index file (written and read whole): packs, and blobs (a pack with more goes alone). */
const PACKS_PER_INDEX_FILE = 256;
const BLOBS_PER_INDEX_FILE = 1 << 16;

/** The table's fields per blob: its pack's number + 1 (0: wanted, not found yet), offset, length, raw. */
const PACK = 0;
const OFFSET = 1;
const LENGTH = 2;
const RAW = 3;

export class BlobIndex {
  private readonly table = new IdTable(4);
  private readonly packIds: string[] = [];
  private readonly filtered: boolean;
  private located = 0;
  /** The number + 1 of the pack being added. */
  private current = 0;
  /** pack id -> its number (in the table's pack field), size, and how many blobs it lists (in any part). */
  readonly packs = new Map<string, { n: number; size: number; blobs: number }>();
  /** The entry of the pack being added. */
  private listing = { n: 0, size: 0, blobs: 0 };
  /** Entries of each pack, grouped by blobsIn (built on first use). */
  private grouped: { order: Uint32Array; starts: Uint32Array } | null = null;

  /**
   * `wanted`: keep only these blobs' locations (the chunks of the snapshots a command reads); all
   * when absent. `part`: only the blobs whose ids are in that part of the id space.
   */
  constructor(
    wanted?: Iterable<string>,
    private readonly part: IdPart = ALL_IDS,
    /** Packs whose blobs are passed over as if no index file named them (see DeadPack). */
    private readonly dead?: DeadPack,
  ) {
    this.filtered = wanted !== undefined;
    // A malformed id (a damaged snapshot) is simply never located.
    if (wanted) for (const id of wanted) if (isBlobId(id)) this.table.insert(id);
  }

  /** Blobs with a location. */
  get size(): number {
    return this.located;
  }

  /** Bytes held by the blob table (for the benchmarks' bytes per blob). */
  get memoryBytes(): number {
    return this.table.memoryBytes;
  }

  /** Adds a blob to a filtered index's wanted ones. */
  want(id: string): void {
    if (isBlobId(id)) this.table.insert(id);
  }

  /** want() of the id written as 64 hex digits at `at` in `text`. */
  wantText(text: Uint8Array, at: number): void {
    this.table.insertText(text, at);
  }

  /** want() of each 32-byte raw id in `ids`. */
  wantRaw(ids: Uint8Array): void {
    for (let at = 0; at + 32 <= ids.length; at += 32) this.table.insertRaw(ids, at);
  }

  /** has() of the raw id at `at` in `bytes`. */
  hasRaw(bytes: Uint8Array, at: number): boolean {
    const e = this.table.lookupRaw(bytes, at);
    return e >= 0 && this.table.field(e, PACK) !== 0;
  }

  /** The pack holding the raw id at `at` in `bytes` (no object made), or undefined. */
  packOfRaw(bytes: Uint8Array, at: number): string | undefined {
    const e = this.table.lookupRaw(bytes, at);
    return e >= 0 && this.table.field(e, PACK) !== 0 ? this.packIds[this.table.field(e, PACK) - 1] : undefined;
  }

  has(id: string): boolean {
    const e = this.table.lookup(id);
    return e >= 0 && this.table.field(e, PACK) !== 0;
  }

  get(id: string): BlobLocation | undefined {
    const e = this.table.lookup(id);
    return e >= 0 && this.table.field(e, PACK) !== 0 ? this.location(e) : undefined;
  }

  /** Plain bytes of the located blobs. */
  rawBytes(): number {
    let n = 0;
    for (let e = 0; e < this.table.size; e++) if (this.table.field(e, PACK) !== 0) n += this.table.field(e, RAW);
    return n;
  }

  /** The located blobs whose (first) location is in `pack`, one at a time. */
  *blobsIn(pack: string): Generator<[string, BlobLocation]> {
    const n = this.packs.get(pack)?.n;
    if (n === undefined) return;
    const g = (this.grouped ??= this.group());
    for (let i = g.starts[n]!; i < g.starts[n + 1]!; i++) yield [this.table.id(g.order[i]!), this.location(g.order[i]!)];
  }

  /** A pack just stored (its index file not yet written: copy.ts passes null). */
  add(pack: PackInfo, _indexFile?: null): void {
    if (!this.startPack(pack.id, pack.size, false)) return;
    this.listing.blobs = pack.blobs.length;
    for (const b of pack.blobs) if (this.part.has(b.id)) this.locate(this.filtered ? this.table.lookup(b.id) : this.table.insert(b.id), b.offset, b.length, b.raw);
  }

  /** The packs of one index file (parsed); a blob already located keeps its first location. */
  addFile(file: IndexFile): void {
    for (const p of file.packs) {
      if (!this.startPack(p.id, p.size)) continue;
      this.listing.blobs = p.blobs.length;
      for (const [b, offset, length, raw] of p.blobs) if (this.part.has(b)) this.locate(this.filtered ? this.table.lookup(b) : this.table.insert(b), offset, length, raw);
    }
  }

  /** addFile of the repository's index file `id`, scanned rather than parsed. */
  async loadFile(repo: Repository, id: string): Promise<void> {
    const t = this.table;
    await scanIndexFile(repo, id, {
      pack: (pack, size) => this.startPack(pack, size),
      blob: (text, at, offset, length, raw) => {
        this.listing.blobs++;
        if (this.part.hasText(text, at)) this.locate(this.filtered ? t.lookupText(text, at) : t.insertText(text, at), offset, length, raw);
      },
    });
  }

  /** Registers a pack, which the next `locate` calls are in; false when its blobs are already located, or are not to be (a dead pack an index file names). */
  private startPack(id: string, size: number, named = true): boolean {
    let p = this.packs.get(id);
    const known = p !== undefined;
    if (!p) {
      p = { n: this.packIds.length, size, blobs: 0 };
      this.packs.set(id, p);
      this.packIds.push(id);
    }
    this.current = p.n + 1;
    this.listing = p;
    this.grouped = null;
    // A pack's content never changes (its name is its hash): listed again, it adds nothing.
    return !known && !(named && this.dead?.(id, size));
  }

  /** `e`: the table's answer for the blob (an entry, ~entry when just added, -1 when not wanted). */
  private locate(e: number, offset: number, length: number, raw: number): void {
    if (e === -1 && this.filtered) return;
    if (e < 0) e = ~e;
    const t = this.table;
    if (t.field(e, PACK) !== 0) return;
    t.setField(e, PACK, this.current);
    t.setField(e, OFFSET, offset);
    t.setField(e, LENGTH, length);
    t.setField(e, RAW, raw);
    this.located++;
  }

  private location(e: number): BlobLocation {
    const t = this.table;
    return { pack: this.packIds[t.field(e, PACK) - 1]!, offset: t.field(e, OFFSET), length: t.field(e, LENGTH), raw: t.field(e, RAW) };
  }

  /** Located entries sorted by pack (a counting sort): 4 bytes per blob. */
  private group(): { order: Uint32Array; starts: Uint32Array } {
    const t = this.table;
    const starts = new Uint32Array(this.packIds.length + 1);
    for (let e = 0; e < t.size; e++) {
      const p = t.field(e, PACK);
      if (p) starts[p]!++;
    }
    for (let i = 1; i < starts.length; i++) starts[i]! += starts[i - 1]!;
    const next = starts.slice(0, -1);
    const order = new Uint32Array(this.located);
    for (let e = 0; e < t.size; e++) {
      const p = t.field(e, PACK);
      if (p) order[next[p - 1]!++] = e;
    }
    return { order, starts };
  }

  /** The repository's index; with `wanted`, only those blobs' locations; without the blobs of `dead` packs. */
  static async load(repo: Repository, wanted?: Iterable<string>, dead?: DeadPack): Promise<BlobIndex> {
    const index = new BlobIndex(wanted, ALL_IDS, dead);
    await index.loadAll(repo);
    return index;
  }

  /** Every index file of the repository (or those of `files`), loaded; given `onDamaged`, one that cannot be read is reported there and skipped. */
  async loadAll(repo: Repository, onDamaged?: (err: RepositoryDamagedError) => void, files?: string[]): Promise<void> {
    for (const id of files ?? (await repo.listIds("index"))) {
      try {
        await this.loadFile(repo, id);
      } catch (err) {
        if (!onDamaged || !(err instanceof RepositoryDamagedError)) throw err;
        onDamaged(err);
      }
    }
  }
}

/**
 * Whether a pack an index file names is gone from the store, or not whole there (a lost or cut
 * pack). Backup and restore pass such packs over: a backup stores their chunks again, so its
 * snapshot restores, and a restore reads the new copies (verify still reports the old snapshots
 * that need the lost ones).
 */
export type DeadPack = (pack: string, size: number) => boolean;

/** DeadPack of a listing (storedPacks): a pack not there, or not of its indexed size. */
export const missingFrom = (stored: Map<string, number>): DeadPack => (pack, size) => stored.get(pack) !== size;

/** The packs in the store, with their sizes: one listing of data/ (files of other names passed over). */
export async function storedPacks(repo: Repository): Promise<Map<string, number>> {
  const stored = new Map<string, number>();
  for await (const e of repo.store.list("data/")) {
    const pack = packOfKey(e.key);
    if (pack) stored.set(pack, e.size);
  }
  return stored;
}

/** The size of the repository's index files together: whether an index is small enough to hold whole. */
export async function indexBytes(repo: Repository): Promise<number> {
  return (await listIndexFiles(repo)).bytes;
}

/** The index files (files of other names passed over) and their size together. */
async function listIndexFiles(repo: Repository): Promise<{ files: string[]; bytes: number }> {
  const files: string[] = [];
  let bytes = 0;
  for await (const e of repo.store.list("index/")) {
    const id = e.key.slice("index/".length);
    if (!isBlobId(id)) continue;
    files.push(id);
    bytes += e.size;
  }
  return { files, bytes };
}

/**
 * Bytes of index files (~40 per blob) whose ids the whole-repository commands (stats, verify,
 * cleanup) hold at once: ~850,000 blobs, ~50 MiB of tables. Above, they go through the index in
 * passes, one part of the id space each (each pass scans every index file).
 */
export const PASS_INDEX_BYTES = 32 << 20;

/**
 * The repository's index files as listed once (every pass reads the same ones), and the parts of
 * the id space to take their blobs in: one part (every blob at once) up to `passBytes` of index
 * files, else one more per `passBytes`, so that each pass holds at most ~`passBytes` worth of ids.
 */
export class IndexParts {
  readonly parts: IdPart[];

  private constructor(
    private readonly repo: Repository,
    readonly files: string[],
    private readonly bytes: number,
    private readonly passBytes: number,
    share = 1,
  ) {
    const n = IndexParts.count(bytes * share, passBytes);
    this.parts = Array.from({ length: n }, (_, i) => new IdPart(i, n));
  }

  private static count(bytes: number, passBytes: number): number {
    return Math.min(65536, Math.max(1, Math.ceil(bytes / passBytes)));
  }

  static async of(repo: Repository, passBytes = PASS_INDEX_BYTES): Promise<IndexParts> {
    const { files, bytes } = await listIndexFiles(repo);
    return new IndexParts(repo, files, bytes, passBytes);
  }

  /** The same index files, in parts for passes that hold only `share` (0–1) of the index's blobs (cleanup: the used ones). */
  holding(share: number): IndexParts {
    return new IndexParts(this.repo, this.files, this.bytes, this.passBytes, Math.min(1, share));
  }

  /** `pass` for each part in turn, the last one's memory freed before the next. */
  async each(pass: (part: IdPart) => Promise<void>): Promise<void> {
    for (const [n, part] of this.parts.entries()) {
      if (n > 0) Bun.gc(true);
      await pass(part);
    }
  }

  /** The locations of the blobs in `part`; given `onDamaged`, an index file that cannot be read is reported there and skipped. */
  async index(part: IdPart, onDamaged?: (err: RepositoryDamagedError) => void): Promise<BlobIndex> {
    const index = new BlobIndex(undefined, part);
    await index.loadAll(this.repo, onDamaged, this.files);
    return index;
  }

  /**
   * The locations of the blobs that `packs` list (each blob's first location, which may be in
   * another pack): what reading those packs whole needs, whichever parts their blobs are in.
   */
  async ofPacks(packs: Set<string>, onDamaged?: (err: RepositoryDamagedError) => void): Promise<BlobIndex> {
    const index = new BlobIndex([]);
    for (const id of this.files) {
      try {
        await scanIndexFile(this.repo, id, { pack: (p) => packs.has(p), blob: (text, at) => index.wantText(text, at) });
      } catch (err) {
        if (!onDamaged || !(err instanceof RepositoryDamagedError)) throw err;
      }
    }
    await index.loadAll(this.repo, onDamaged, this.files);
    return index;
  }

  /**
   * For going through the packs of `order` in that order without holding every blob: the ofPacks
   * index of the group of consecutive packs that holds `pack`, each group listing at most a pass's
   * worth of blobs (`packs`: every pack of the index, with how many blobs each lists).
   */
  groups(packs: BlobIndex["packs"], order: string[], onDamaged?: (err: RepositoryDamagedError) => void): (pack: string) => Promise<BlobIndex> {
    let limit = 0;
    for (const p of packs.values()) limit += p.blobs;
    limit = Math.ceil(limit / IndexParts.count(this.bytes, this.passBytes));
    let next = 0;
    let group = new Set<string>();
    let index: Promise<BlobIndex> | null = null;
    return (pack) => {
      if (!group.has(pack)) {
        group = new Set();
        for (let n = 0; next < order.length && (group.size === 0 || n + packs.get(order[next]!)!.blobs <= limit); next++) {
          group.add(order[next]!);
          n += packs.get(order[next]!)!.blobs;
        }
        index = this.ofPacks(group, onDamaged);
      }
      return index!;
    };
  }
}

/** A parsed index file's garbage per blob: its JSON text, the text as a string, the parsed arrays. */
const PARSED_BYTES_PER_BLOB = 250;
// Loops read index files one after another: the engine's collector, paced by its own small heap,
// lets the dead ones pile up; collected every 16 MiB of them instead.
const churn = new BufferChurn();

/** One index file, parsed (cleanup's passes that rewrite or repack packs; the others scan). */
export async function readIndexFile(repo: Repository, id: string): Promise<IndexFile> {
  const file = await repo.getJsonChecked<IndexFile>(`index/${id}`);
  churn.drop(file.packs.reduce((n, p) => n + p.blobs.length, 0) * PARSED_BYTES_PER_BLOB);
  return file;
}

/** What a scan of an index file reports: each pack (false: skip its blobs), then its blobs. */
export interface IndexScan {
  pack(id: string, size: number): boolean;
  /** The blob's id is the 64 hex digits at `at` in `text`. */
  blob(text: Uint8Array, at: number, offset: number, length: number, raw: number): void;
}

/**
 * Reads one index file into `scan` without an object per blob: its JSON text, laid out as
 * writeIndexFiles writes it, is scanned in place (parsing a 65,536-blob file would leave ~40 MiB
 * to collect); a text laid out otherwise is parsed.
 */
export async function scanIndexFile(repo: Repository, id: string, scan: IndexScan): Promise<void> {
  const key = `index/${id}`;
  const text = await repo.getTextChecked(key);
  if (scanText(text, null)) scanText(text, scan);
  else {
    let file: IndexFile;
    try {
      file = decodeJson(text);
      if (!Array.isArray(file.packs)) throw new Error("no packs");
    } catch (err) {
      throw new RepositoryDamagedError(repo.location, `${key}: cannot be read (${(err as Error).message})`);
    }
    for (const p of file.packs) {
      if (!scan.pack(p.id, p.size)) continue;
      for (const [b, offset, length, raw] of p.blobs) {
        if (!isBlobId(b)) throw new RepositoryDamagedError(repo.location, `${key}: cannot be read (${JSON.stringify(String(b).slice(0, 80))} is not a blob id)`);
        scan.blob(Buffer.from(b, "latin1"), 0, offset, length, raw);
      }
    }
  }
  churn.drop(3 * text.length);
}

const ascii = (s: string) => new TextEncoder().encode(s);
const HEAD = ascii('{"format":"duckbak-index","version":1,"packs":[');
const PACK_ID = ascii('{"id":"');
const PACK_SIZE = ascii('","size":');
const PACK_BLOBS = ascii(',"blobs":[');
const BLOB_ID = ascii('["');
const BLOB_OFFSET = ascii('",');
const [COMMA, CLOSE_ARRAY, CLOSE_OBJECT] = [44, 93, 125];

/** Scans JSON.stringify's layout of an IndexFile; false (maybe after reporting some of it) when `text` is laid out otherwise. */
function scanText(text: Uint8Array, scan: IndexScan | null): boolean {
  let at = 0;
  const literal = (l: Uint8Array) => {
    if (at + l.length > text.length) return false;
    for (let i = 0; i < l.length; i++) if (text[at + i] !== l[i]) return false;
    at += l.length;
    return true;
  };
  const byte = (b: number) => text[at] === b && (at++, true);
  const int = () => {
    let n = 0;
    const start = at;
    while (at < text.length && text[at]! >= 48 && text[at]! <= 57 && at - start < 16) n = n * 10 + text[at++]! - 48;
    return at > start && (at - start === 1 || text[start] !== 48) ? n : -1;
  };
  const hex64 = () => {
    const start = at;
    if (at + 64 > text.length) return -1;
    for (; at < start + 64; at++) if (!((text[at]! >= 48 && text[at]! <= 57) || (text[at]! >= 97 && text[at]! <= 102))) return -1;
    return start;
  };
  if (!literal(HEAD)) return false;
  if (!byte(CLOSE_ARRAY)) {
    do {
      if (!literal(PACK_ID)) return false;
      const id = hex64();
      if (id < 0 || !literal(PACK_SIZE)) return false;
      const size = int();
      if (size < 0 || !literal(PACK_BLOBS)) return false;
      const wanted = scan ? scan.pack(Buffer.from(text.buffer, text.byteOffset + id, 64).toString("latin1"), size) : false;
      if (!byte(CLOSE_ARRAY)) {
        do {
          if (!literal(BLOB_ID)) return false;
          const blob = hex64();
          if (blob < 0 || !literal(BLOB_OFFSET)) return false;
          const offset = int();
          if (offset < 0 || !byte(COMMA)) return false;
          const length = int();
          if (length < 0 || !byte(COMMA)) return false;
          const raw = int();
          if (raw < 0 || !byte(CLOSE_ARRAY)) return false;
          if (wanted) scan!.blob(text, blob, offset, length, raw);
        } while (byte(COMMA));
        if (!byte(CLOSE_ARRAY)) return false;
      }
      if (!byte(CLOSE_OBJECT)) return false;
    } while (byte(COMMA));
    if (!byte(CLOSE_ARRAY)) return false;
  }
  return byte(CLOSE_OBJECT) && at === text.length;
}

/**
 * Index entries of stored packs, written out an index file at a time as one fills (a backup of a
 * big database then never holds all its new blobs' entries); `finish` writes the rest. An index
 * file may appear before the snapshot that uses its packs: as after a killed backup, the next one
 * reuses them, or cleanup deletes them.
 */
export class IndexWriter {
  private pending: IndexFile["packs"] = [];
  private blobs = 0;
  private writing: Promise<void> = Promise.resolve();
  private failure: unknown = null;

  constructor(private readonly repo: Repository) {}

  add(pack: PackInfo): void {
    this.addEntry(indexEntry(pack));
  }

  addEntry(pack: IndexFile["packs"][number]): void {
    this.pending.push(pack);
    this.blobs += pack.blobs.length;
    if (this.pending.length >= PACKS_PER_INDEX_FILE || this.blobs >= BLOBS_PER_INDEX_FILE) this.flush();
  }

  async finish(): Promise<void> {
    this.flush();
    await this.writing;
    if (this.failure) throw this.failure;
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    const packs = this.pending;
    this.pending = [];
    this.blobs = 0;
    this.writing = this.writing.then(() => (this.failure ? undefined : writeIndexFilesRaw(this.repo, packs).then(() => {}, (err) => void (this.failure = err))));
  }
}

function indexEntry(p: PackInfo): IndexFile["packs"][number] {
  return { id: p.id, size: p.size, blobs: p.blobs.map((b): IndexFile["packs"][number]["blobs"][number] => [b.id, b.offset, b.length, b.raw]) };
}

/** Writes index files naming `packs` (already stored); returns their ids. */
export async function writeIndexFiles(repo: Repository, packs: PackInfo[]): Promise<string[]> {
  return writeIndexFilesRaw(repo, packs.map(indexEntry));
}

async function writeIndexFilesRaw(repo: Repository, packs: IndexFile["packs"]): Promise<string[]> {
  const ids: string[] = [];
  for (const group of indexFileGroups(packs)) ids.push(await repo.putJson("index", { format: "duckbak-index", version: 1, packs: group } satisfies IndexFile));
  return ids;
}

/** `packs` cut into index files: each at most PACKS_PER_INDEX_FILE packs and BLOBS_PER_INDEX_FILE blobs (or one pack). */
export function indexFileGroups<P extends { blobs: unknown[] }>(packs: P[]): P[][] {
  const out: P[][] = [];
  for (let i = 0; i < packs.length; ) {
    let j = i;
    let blobs = 0;
    while (j < packs.length && j - i < PACKS_PER_INDEX_FILE && (j === i || blobs + packs[j]!.blobs.length <= BLOBS_PER_INDEX_FILE)) blobs += packs[j++]!.blobs.length;
    out.push(packs.slice(i, j));
    i = j;
  }
  return out;
}
