import { pausePoint } from "../pause.ts";
import { open } from "node:fs/promises";
import { AtomicFile } from "../fsutil.ts";
import { DuckbakError, fsError } from "../errors.ts";
import { MANIFEST_NAME, type Compression } from "../naming.ts";
import { storedMember } from "./codec.ts";
import type { CodecPool } from "./codec-pool.ts";
import { tarHeader, tarPadding, type TarFileMeta } from "./tar.ts";
import { encodeTrailer } from "./integrity.ts";
import { sha256Hex } from "../bytes.ts";

/** Uncompressed bytes per gzip member / zstd frame: big enough to compress well, small enough to bound memory. */
const MEMBER_SIZE = 4 * 1024 * 1024;
const READ_SIZE = 1024 * 1024;

/**
 * Streams a tar archive into a temporary file in the destination folder, compressed as
 * independent members by the pool and written in order. The manifest goes first as a
 * fixed-length stored member, so that `finish` can write the final manifest (with the checksums
 * computed while streaming) over it: one read of each database, and the manifest still leads the
 * archive. The last member is the integrity trailer (integrity.ts).
 */
export class ArchiveWriter {
  private member = new Uint8Array(MEMBER_SIZE);
  private fill = 0;
  /** Member buffers back from the pool or the disk, refilled rather than allocated anew. */
  private spare: Uint8Array<ArrayBuffer>[] = [];
  /** Two read buffers in turn: one is read into while the other is hashed and copied. */
  private readonly readBuffers = [new Uint8Array(READ_SIZE), new Uint8Array(READ_SIZE)];
  /** Completion of each member's write, oldest first; at most maxInFlight are pending. */
  private pending: Promise<void>[] = [];
  /** The last member's write: each write starts when the one before it is done, so they land in order. */
  private tail: Promise<void> = Promise.resolve();
  private position = 0;
  private readonly bodyHash = new Bun.CryptoHasher("sha256");
  private firstRaw: Uint8Array | null = null;
  private manifestLength = 0;
  private mtime = new Date(0);

  private constructor(
    private readonly file: AtomicFile,
    readonly compression: Compression,
    private readonly pool: CodecPool | null,
    private readonly maxInFlight: number,
  ) {}

  static async create(finalPath: string, compression: Compression, pool: CodecPool | null): Promise<ArchiveWriter> {
    if (compression !== "none" && !pool) throw new Error("a codec pool is needed for compression");
    const file = await AtomicFile.create(finalPath);
    return new ArchiveWriter(file, compression, pool, 2 * (pool?.size ?? 1));
  }

  /** Must be the first entry; `finish` replaces it with bytes of exactly the same length. */
  async addManifest(placeholder: Uint8Array, mtime: Date): Promise<void> {
    if (this.firstRaw) throw new Error("the manifest must be the first entry");
    this.mtime = mtime;
    this.manifestLength = placeholder.length;
    const header = tarHeader({ name: MANIFEST_NAME, size: placeholder.length, mtime });
    this.firstRaw = new Uint8Array(header.length + placeholder.length + tarPadding(placeholder.length).length);
    this.firstRaw.set(header, 0);
    this.firstRaw.set(placeholder, header.length);
    await this.writeAt(storedMember(this.compression, this.firstRaw), 0);
  }

  /**
   * Streams `size` bytes of `path` into the archive as `entry`, hashing them on the way; `observe`
   * sees every chunk in order (it must not keep it).
   */
  async addFile(
    entry: string,
    path: string,
    size: number,
    mtime: Date,
    meta: TarFileMeta,
    onBytes?: (n: number) => void,
    observe?: (chunk: Uint8Array) => void,
  ): Promise<{ sha256: string }> {
    const hasher = new Bun.CryptoHasher("sha256");
    const handle = await open(path, "r").catch((err) => {
      throw fsError(err, path, "open");
    });
    try {
      await this.push(tarHeader({ name: entry, size, mtime, ...meta }));
      let reads = 0;
      const readAt = async (offset: number): Promise<Uint8Array> => {
        const chunk = this.readBuffers[reads++ % 2]!.subarray(0, Math.min(READ_SIZE, size - offset));
        const { bytesRead } = await handle.read(chunk, 0, chunk.length, offset).catch((err) => {
          throw fsError(err, path, "read");
        });
        if (bytesRead === 0) throw new DuckbakError(`${path}: file shrank while being copied (expected ${size} bytes, got ${offset})`);
        return chunk.subarray(0, bytesRead);
      };
      let done = 0;
      let next: Promise<Uint8Array> | null = size > 0 ? readAt(0) : null;
      while (next) {
        const data = await next;
        done += data.length;
        // Read ahead: the next chunk comes from disk while this one is hashed and packed.
        next = done < size ? readAt(done) : null;
        next?.catch(() => {});
        hasher.update(data);
        observe?.(data);
        await this.push(data);
        onBytes?.(data.length);
      }
      await this.push(tarPadding(size));
    } finally {
      await handle.close();
    }
    return { sha256: hasher.digest("hex") };
  }

  /** Appends tar bytes, cutting a member each MEMBER_SIZE bytes. */
  private async push(data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.length) {
      const n = Math.min(this.member.length - this.fill, data.length - off);
      this.member.set(data.subarray(off, off + n), this.fill);
      this.fill += n;
      off += n;
      if (this.fill === this.member.length) await this.cutMember();
    }
  }

  private async cutMember(): Promise<void> {
    if (this.fill === 0) return;
    const raw = this.member.subarray(0, this.fill);
    this.member = this.spare.pop() ?? new Uint8Array(MEMBER_SIZE);
    this.fill = 0;
    const recycle = (buf: Uint8Array) => {
      if (buf.length === MEMBER_SIZE) this.spare.push(buf as Uint8Array<ArrayBuffer>); // never shared memory
    };
    const encoded =
      this.compression === "none"
        ? Promise.resolve(raw)
        : this.pool!.compress(this.compression, raw).then((c) => {
            recycle(c.input);
            return c.data;
          });
    encoded.catch(() => {}); // awaited in order below; avoid an unhandled rejection meanwhile
    this.tail = this.tail.then(async () => {
      const data = await encoded;
      this.bodyHash.update(data);
      await this.writeAt(data, this.position);
      if (this.compression === "none") recycle(data);
    });
    this.tail.catch(() => {});
    this.pending.push(this.tail);
    while (this.pending.length > this.maxInFlight) await this.pending.shift();
  }

  private async writeAt(data: Uint8Array, position: number): Promise<void> {
    await this.file.write(data, position).catch((err) => {
      throw fsError(err, this.file.finalPath, "write");
    });
    this.position = Math.max(this.position, position + data.length);
  }

  /**
   * Ends the archive: the final manifest over the placeholder, then the integrity trailer; moves
   * the file to the first of `names` that does not exist yet.
   */
  async finish(manifest: Uint8Array, names: Iterable<string>): Promise<{ path: string; size: number }> {
    if (manifest.length !== this.manifestLength) throw new Error("final manifest differs in length from its placeholder");
    await this.cutMember();
    await this.tail;
    this.pending = [];
    const firstRaw = this.firstRaw!.slice();
    firstRaw.set(manifest, firstRaw.length - manifest.length - tarPadding(manifest.length).length);
    const first = storedMember(this.compression, firstRaw);
    await this.writeAt(first, 0);
    const trailer = encodeTrailer(this.compression, this.mtime, { firstMember: sha256Hex(first), body: this.bodyHash.digest("hex") });
    await this.writeAt(trailer, this.position);
    await pausePoint("archive:commit");
    const path = await this.file.commitNew(names);
    return { path, size: this.position };
  }

  async abort(): Promise<void> {
    await this.tail.catch(() => {});
    this.pending = [];
    await this.file.abort();
  }
}
