// Compact tables of blob ids, for the index and the other per-blob sets of the repository code.
// Each id (32 bytes; a hex string at the API) is stored once, as 8 u32 words in pages of a typed
// array, with `fields` u32 values beside it; an open-addressing hash table (linear probing, at most
// 3/4 full, doubled when it gets there) holds entry numbers. Per entry: 32 bytes of id, 4 per
// field, 5.3–10.7 bytes of hash slots; a Map of hex strings costs ~100–250 bytes per entry.

/** Entries per page: pages are allocated as entries arrive, never copied. */
const PAGE_BITS = 12;
const PAGE = 1 << PAGE_BITS;
const MASK = PAGE - 1;
const MIN_SLOTS = 1 << 8;

/** A blob id as the repository writes them: 64 lowercase hex digits. */
export const isBlobId = (id: unknown): id is string => typeof id === "string" && /^[0-9a-f]{64}$/.test(id);

/** Lowercase hex digit (ASCII) -> its value; 16 for anything else. */
const HEX = new Uint8Array(256).fill(16);
for (let i = 0; i < 16; i++) HEX["0123456789abcdef".charCodeAt(i)] = i;

export class IdTable {
  private readonly idPages: Uint32Array[] = [];
  private readonly fieldPages: Uint32Array[] = [];
  /** Entry number + 1; 0 is a free slot. */
  private slots = new Uint32Array(MIN_SLOTS);
  private shift = 32 - Math.log2(MIN_SLOTS);
  private count = 0;
  private readonly bytes = Buffer.alloc(32);
  /** The id being looked up, as the words the pages hold. */
  private readonly words = new Uint32Array(this.bytes.buffer, this.bytes.byteOffset, 8);

  constructor(readonly fields: number) {}

  get size(): number {
    return this.count;
  }

  /** Bytes held by the table's arrays. */
  get memoryBytes(): number {
    return this.slots.byteLength + this.idPages.length * PAGE * (32 + 4 * this.fields);
  }

  /** The entry of `id`, or -1. */
  lookup(id: string): number {
    return this.load(id) ? Math.max(this.find(), -1) : -1;
  }

  /** lookup of the id written as 64 lowercase hex digits at `at` in `text` (ASCII); -1 also when they are not. */
  lookupText(text: Uint8Array, at: number): number {
    return this.loadText(text, at) ? Math.max(this.find(), -1) : -1;
  }

  /** lookup of the id as 32 raw bytes at `at` in `bytes`. */
  lookupRaw(bytes: Uint8Array, at: number): number {
    this.loadRaw(bytes, at);
    return Math.max(this.find(), -1);
  }

  has(id: string): boolean {
    return this.lookup(id) >= 0;
  }

  /** The entry of `id`, added (its fields 0) when it was not there: then `~entry` (negative) is returned. */
  insert(id: string): number {
    if (!this.load(id)) throw new Error(`not a blob id: ${JSON.stringify(id.slice(0, 80))}`);
    return this.insertLoaded();
  }

  /** insert of the id at `at` in `text` (see lookupText). */
  insertText(text: Uint8Array, at: number): number {
    if (!this.loadText(text, at)) throw new Error(`not a blob id at byte ${at}`);
    return this.insertLoaded();
  }

  /** insert of the id as 32 raw bytes at `at` in `bytes`. */
  insertRaw(bytes: Uint8Array, at: number): number {
    this.loadRaw(bytes, at);
    return this.insertLoaded();
  }

  private insertLoaded(): number {
    const at = this.find();
    if (at >= 0) return at;
    if (this.count + 1 > (this.slots.length >>> 2) * 3) {
      this.grow();
      return this.insertLoaded();
    }
    const entry = this.count++;
    if ((entry & MASK) === 0) {
      this.idPages.push(new Uint32Array(PAGE * 8));
      if (this.fields) this.fieldPages.push(new Uint32Array(PAGE * this.fields));
    }
    this.idPages[entry >>> PAGE_BITS]!.set(this.words, (entry & MASK) * 8);
    this.slots[-1 - at] = entry + 1;
    return ~entry;
  }

  field(entry: number, k: number): number {
    return this.fieldPages[entry >>> PAGE_BITS]![(entry & MASK) * this.fields + k]!;
  }

  setField(entry: number, k: number, value: number): void {
    this.fieldPages[entry >>> PAGE_BITS]![(entry & MASK) * this.fields + k] = value;
  }

  /** The hex id of an entry (0 .. size-1). */
  id(entry: number): string {
    const page = this.idPages[entry >>> PAGE_BITS]!;
    const o = (entry & MASK) * 8;
    return Buffer.from(page.buffer, page.byteOffset + o * 4, 32).toString("hex");
  }

  /** Decodes `id` into `words`; false when it is not 64 hex digits. */
  private load(id: string): boolean {
    return id.length === 64 && this.bytes.write(id, 0, 32, "hex") === 32;
  }

  private loadRaw(bytes: Uint8Array, at: number): void {
    if (at + 32 > bytes.length) throw new Error(`no blob id at byte ${at}`);
    this.bytes.set(bytes.subarray(at, at + 32));
  }

  private loadText(text: Uint8Array, at: number): boolean {
    if (at + 64 > text.length) return false;
    for (let i = 0; i < 32; i++) {
      const hi = HEX[text[at + 2 * i]!]!;
      const lo = HEX[text[at + 2 * i + 1]!]!;
      if ((hi | lo) & 16) return false;
      this.bytes[i] = (hi << 4) | lo;
    }
    return true;
  }

  private slotOf(w0: number): number {
    // Ids are cryptographic hashes, but the mix keeps a table of crafted or sequential ids usable.
    return Math.imul(w0, 0x9e3779b1) >>> this.shift;
  }

  /** The entry whose id is `words`, or -1 - (the free slot where it would go). */
  private find(): number {
    const slots = this.slots;
    const mask = slots.length - 1;
    const w = this.words;
    for (let i = this.slotOf(w[0]!); ; i = (i + 1) & mask) {
      const e = slots[i]!;
      if (e === 0) return -1 - i;
      const page = this.idPages[(e - 1) >>> PAGE_BITS]!;
      const o = ((e - 1) & MASK) * 8;
      if (
        page[o] === w[0] &&
        page[o + 1] === w[1] &&
        page[o + 2] === w[2] &&
        page[o + 3] === w[3] &&
        page[o + 4] === w[4] &&
        page[o + 5] === w[5] &&
        page[o + 6] === w[6] &&
        page[o + 7] === w[7]
      )
        return e - 1;
    }
  }

  private grow(): void {
    const slots = new Uint32Array(this.slots.length * 2);
    this.slots = slots;
    this.shift--;
    const mask = slots.length - 1;
    for (let e = 0; e < this.count; e++) {
      let i = this.slotOf(this.idPages[e >>> PAGE_BITS]![(e & MASK) * 8]!);
      while (slots[i] !== 0) i = (i + 1) & mask;
      slots[i] = e + 1;
    }
  }
}

/** A set of blob ids (the Set<string> methods the repository code uses). */
export class IdSet extends IdTable {
  constructor() {
    super(0);
  }

  add(id: string): this {
    this.insert(id);
    return this;
  }
}

/**
 * One of `of` equal slices of the id space (by the id's first 16 bits): commands that would hold
 * every blob id of a large repository take the ids a slice at a time, in passes.
 */
export class IdPart {
  constructor(
    readonly n: number,
    readonly of: number,
  ) {}

  /** Whether the id whose first 16 bits are `top` is in this slice. */
  private holds(top: number): boolean {
    return Math.floor((top * this.of) / 65536) === this.n;
  }

  has(id: string): boolean {
    return this.of === 1 || this.holds(parseInt(id.slice(0, 4), 16));
  }

  /** has() of the id written as hex digits at `at` in `text` (ASCII). */
  hasText(text: Uint8Array, at: number): boolean {
    return this.of === 1 || this.holds((HEX[text[at]!]! << 12) | (HEX[text[at + 1]!]! << 8) | (HEX[text[at + 2]!]! << 4) | HEX[text[at + 3]!]!);
  }

  /** has() of the id as raw bytes at `at` in `bytes`. */
  hasRaw(bytes: Uint8Array, at: number): boolean {
    return this.of === 1 || this.holds((bytes[at]! << 8) | bytes[at + 1]!);
  }
}

/** The whole id space, in one part. */
export const ALL_IDS = new IdPart(0, 1);
