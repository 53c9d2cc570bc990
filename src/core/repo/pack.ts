// Packs: blobs (each sealed on its own) one after another, then a sealed header listing them
// (id, stored length, plain length) and the header's length as u32 LE. The header makes a pack
// self-describing, so verify can check a pack without the index. A pack's name is the sha256 of
// its bytes. Packs are written before the index files that name them.
import { RepositoryDamagedError, packKey, sha256Hex, type Repository } from "./repository.ts";
import { seal, unseal } from "../crypto/seal.ts";
import { BufferChurn } from "../archive/codec-pool.ts";
import { pausePoint } from "../pause.ts";
import type { IndexWriter } from "./index-file.ts";

export interface PackBlob {
  id: string;
  offset: number;
  length: number;
  raw: number;
}

export interface PackInfo {
  id: string;
  size: number;
  blobs: PackBlob[];
}

const ENTRY_BYTES = 32 + 4 + 4;

export function encodePackHeader(blobs: PackBlob[]): Uint8Array {
  const out = new Uint8Array(blobs.length * ENTRY_BYTES);
  const view = new DataView(out.buffer);
  blobs.forEach((b, i) => {
    out.set(Buffer.from(b.id, "hex"), i * ENTRY_BYTES);
    view.setUint32(i * ENTRY_BYTES + 32, b.length, true);
    view.setUint32(i * ENTRY_BYTES + 36, b.raw, true);
  });
  return out;
}

/** The blobs a pack says it holds, read from its trailer; throws RepositoryDamagedError. */
export function decodePack(repo: Repository, key: string, pack: Uint8Array): PackBlob[] {
  const bad = (why: string) => new RepositoryDamagedError(repo.location, `${key}: ${why}`);
  if (pack.length < 4) throw bad("truncated (no header)");
  const hlen = new DataView(pack.buffer, pack.byteOffset + pack.length - 4, 4).getUint32(0, true);
  if (hlen + 4 > pack.length) throw bad("truncated (header length past the start)");
  let header: Uint8Array;
  try {
    header = unseal(repo.blobKeys.encrypt, pack.subarray(pack.length - 4 - hlen, pack.length - 4));
  } catch (err) {
    throw bad(`header: ${(err as Error).message}`);
  }
  if (header.length % ENTRY_BYTES) throw bad("header has a partial entry");
  const view = new DataView(header.buffer, header.byteOffset, header.length);
  const blobs: PackBlob[] = [];
  let offset = 0;
  for (let o = 0; o < header.length; o += ENTRY_BYTES) {
    const length = view.getUint32(o + 32, true);
    blobs.push({ id: Buffer.from(header.subarray(o, o + 32)).toString("hex"), offset, length, raw: view.getUint32(o + 36, true) });
    offset += length;
  }
  if (offset !== pack.length - 4 - hlen) throw bad("blobs do not add up to the pack's size");
  return blobs;
}

/** Groups sealed blobs into packs and uploads them, keeping at most `maxUploads` packs in flight. */
export class PackWriter {
  private parts: Uint8Array[] = [];
  private blobs: PackBlob[] = [];
  private bytes = 0;
  private uploads = new Set<Promise<void>>();
  private failure: unknown = null;
  readonly written: PackInfo[] = [];
  storedBytes = 0;
  storedPacks = 0;
  private readonly churn = new BufferChurn();

  constructor(
    private readonly repo: Repository,
    private readonly maxUploads = 2,
    /** Given: each stored pack goes to it instead of `written`. */
    private readonly index?: Pick<IndexWriter, "add">,
  ) {}

  /**
   * Adds one sealed blob. Callers may add concurrently: adds are taken one at a time, so that at
   * most one full pack waits for an upload slot (memory stays bounded).
   */
  add(id: string, sealed: Uint8Array, raw: number): Promise<void> {
    const next = this.tail.then(() => this.addNow(id, sealed, raw));
    this.tail = next.catch(() => {});
    return next;
  }

  private tail: Promise<void> = Promise.resolve();

  private async addNow(id: string, sealed: Uint8Array, raw: number): Promise<void> {
    if (this.failure) throw this.failure;
    this.blobs.push({ id, offset: this.bytes, length: sealed.length, raw });
    this.parts.push(sealed);
    this.bytes += sealed.length;
    if (this.bytes >= this.repo.config.pack_bytes) await this.close();
  }

  private async close(): Promise<void> {
    if (this.blobs.length === 0) return;
    const header = seal(this.repo.blobKeys.encrypt, encodePackHeader(this.blobs));
    const pack = new Uint8Array(this.bytes + header.length + 4);
    let o = 0;
    for (const p of this.parts) {
      pack.set(p, o);
      o += p.length;
    }
    pack.set(header, o);
    new DataView(pack.buffer).setUint32(o + header.length, header.length, true);
    const info: PackInfo = { id: sha256Hex(pack), size: pack.length, blobs: this.blobs };
    this.parts = [];
    this.blobs = [];
    this.bytes = 0;
    while (this.uploads.size >= this.maxUploads) await Promise.race(this.uploads);
    if (this.failure) throw this.failure;
    const up = this.repo.store.put(packKey(info.id), pack).then(
      () => {
        if (this.index) this.index.add(info);
        else this.written.push(info);
        this.storedBytes += info.size;
        this.storedPacks++;
        // The pack and the blobs it was built from are garbage now.
        this.churn.drop(2 * info.size);
      },
      (err) => {
        this.failure ??= err;
      },
    );
    const tracked = up.finally(() => this.uploads.delete(tracked));
    this.uploads.add(tracked);
  }

  /** Closes the pack being filled and waits until every pack is stored; more may be added after. */
  async flush(): Promise<void> {
    await this.tail;
    await this.close();
    await Promise.all(this.uploads);
    if (this.failure) throw this.failure;
  }

  /** Closes the last pack and waits until every pack is stored. */
  async finish(): Promise<PackInfo[]> {
    await this.flush();
    await pausePoint("repo:after-packs");
    return this.written;
  }
}
