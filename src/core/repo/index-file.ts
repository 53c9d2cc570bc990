// The index: which pack holds each blob, where. Each backup (and each garbage collection) adds
// index files of its own; the repository's index is the union of all of them. In memory only ids
// and locations are kept, in a compact table (id-table.ts: ~53–59 bytes per blob), never blob
// contents; commands that read some snapshots keep only the entries of the chunks those name.
import { IdTable } from "./id-table.ts";
import type { Repository } from "./repository.ts";
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
  /** pack id -> its number, size, index files that name it. */
  readonly packs = new Map<string, { n: number; size: number; indexFiles: Set<string> }>();
  readonly files: string[] = [];
  /** Entries of each pack, grouped by blobsIn (built on first use). */
  private grouped: { order: Uint32Array; starts: Uint32Array } | null = null;

  /** `wanted`: keep only these blobs' locations (the chunks of the snapshots a command reads); all when absent. */
  constructor(wanted?: Iterable<string>) {
    this.filtered = wanted !== undefined;
    if (wanted) for (const id of wanted) this.table.insert(id);
  }

  /** Blobs with a location. */
  get size(): number {
    return this.located;
  }

  /** Bytes held by the blob table (for the benchmarks' bytes per blob). */
  get memoryBytes(): number {
    return this.table.memoryBytes;
  }

  has(id: string): boolean {
    const e = this.table.lookup(id);
    return e >= 0 && this.table.field(e, PACK) !== 0;
  }

  get(id: string): BlobLocation | undefined {
    const e = this.table.lookup(id);
    return e >= 0 && this.table.field(e, PACK) !== 0 ? this.location(e) : undefined;
  }

  /** Every located blob, in the order the index files listed them. */
  *entries(): IterableIterator<[string, BlobLocation]> {
    for (let e = 0; e < this.table.size; e++) if (this.table.field(e, PACK) !== 0) yield [this.table.id(e), this.location(e)];
  }

  /** The located blobs whose (first) location is in `pack`. */
  blobsIn(pack: string): [string, BlobLocation][] {
    const n = this.packs.get(pack)?.n;
    if (n === undefined) return [];
    const g = (this.grouped ??= this.group());
    const out: [string, BlobLocation][] = [];
    for (let i = g.starts[n]!; i < g.starts[n + 1]!; i++) out.push([this.table.id(g.order[i]!), this.location(g.order[i]!)]);
    return out;
  }

  add(pack: PackInfo, indexFile: string | null): void {
    this.addPack(indexEntry(pack), indexFile);
  }

  /** The packs of one index file; a blob already located keeps its first location. */
  addFile(id: string, file: IndexFile): void {
    this.files.push(id);
    for (const p of file.packs) this.addPack(p, id);
  }

  private addPack(pack: IndexFile["packs"][number], indexFile: string | null): void {
    let p = this.packs.get(pack.id);
    if (!p) {
      p = { n: this.packIds.length, size: pack.size, indexFiles: new Set() };
      this.packs.set(pack.id, p);
      this.packIds.push(pack.id);
    }
    if (indexFile) p.indexFiles.add(indexFile);
    this.grouped = null;
    for (const [id, offset, length, raw] of pack.blobs) {
      let e: number;
      if (this.filtered) {
        e = this.table.lookup(id);
        if (e < 0) continue;
      } else {
        e = this.table.insert(id);
        if (e >= 0) continue;
        e = ~e;
      }
      if (this.table.field(e, PACK) !== 0) continue;
      this.table.setField(e, PACK, p.n + 1);
      this.table.setField(e, OFFSET, offset);
      this.table.setField(e, LENGTH, length);
      this.table.setField(e, RAW, raw);
      this.located++;
    }
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

  /** The repository's index; with `wanted`, only those blobs' locations. */
  static async load(repo: Repository, wanted?: Iterable<string>): Promise<BlobIndex> {
    const index = new BlobIndex(wanted);
    for (const id of await repo.listIds("index")) index.addFile(id, await repo.getJsonChecked<IndexFile>(`index/${id}`));
    return index;
  }
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
