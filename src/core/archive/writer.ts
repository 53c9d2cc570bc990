import { pausePoint } from "../pause.ts";
import { open } from "node:fs/promises";
import { AtomicFile } from "../fsutil.ts";
import { DuckbakError, fsError } from "../errors.ts";
import { MANIFEST_NAME, type Compression } from "../naming.ts";
import { storedMember } from "./codec.ts";
import { DigestWorker, type CodecPool, type Compressed } from "./codec-pool.ts";
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
 *
 * Threads: this one reads each file straight into the member being filled and hashes it (and
 * checks its blocks, through `observe`); the pool compresses members; a DigestWorker hashes the
 * archive's body; Bun's I/O threads read ahead and write.
 */
export class ArchiveWriter {
  private member: Uint8Array<ArrayBuffer> = new Uint8Array(MEMBER_SIZE);
  private fill = 0;
  /** The member after this one, taken early when a read ahead must land in it. */
  private upcoming: Uint8Array<ArrayBuffer> | null = null;
  /** Member buffers back from the pool or the disk, refilled rather than allocated anew. */
  private spare: Uint8Array<ArrayBuffer>[] = [];
  /** Completion of each member's write, oldest first; at most maxInFlight are pending. */
  private pending: Promise<void>[] = [];
  /** The last member's write: each write starts when the one before it is done, so they land in order. */
  private tail: Promise<void> = Promise.resolve();
  /** The last member handed to the body digest: each is handed over when the one before it was, so they are hashed in order. */
  private hashOrder: Promise<unknown> = Promise.resolve();
  private position = 0;
  private readonly bodyHash = new DigestWorker();
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
   * sees every chunk in order (it must not keep it). Each read lands where its bytes go in the
   * member; the next one is under way while a chunk is hashed.
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
      const readFull = async (view: Uint8Array, at: number): Promise<Uint8Array> => {
        for (let got = 0; got < view.length; ) {
          const { bytesRead } = await handle.read(view, got, view.length - got, at + got).catch((err) => {
            throw fsError(err, path, "read");
          });
          if (bytesRead === 0) throw new DuckbakError(`${path}: file shrank while being copied (expected ${size} bytes, got ${at + got})`);
          got += bytesRead;
        }
        return view;
      };
      let readPos = 0;
      // Bytes of the member that reads (done or under way) have claimed.
      let claimed = this.fill;
      const readNext = (): Promise<Uint8Array> | null => {
        if (readPos >= size) return null;
        let into = this.member;
        if (claimed === MEMBER_SIZE) {
          into = this.upcoming ??= this.spare.pop() ?? new Uint8Array(MEMBER_SIZE);
          claimed = 0;
        }
        const n = Math.min(READ_SIZE, MEMBER_SIZE - claimed, size - readPos);
        const read = readFull(into.subarray(claimed, claimed + n), readPos);
        read.catch(() => {}); // awaited below; avoid an unhandled rejection meanwhile
        claimed += n;
        readPos += n;
        return read;
      };
      let next = readNext();
      while (next) {
        const data = await next;
        next = readNext();
        hasher.update(data);
        observe?.(data);
        this.fill += data.length;
        onBytes?.(data.length);
        // Last: cutting transfers the member's buffer to a worker, which detaches `data`.
        if (this.fill === MEMBER_SIZE) await this.cutMember();
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
    this.member = this.upcoming ?? this.spare.pop() ?? new Uint8Array(MEMBER_SIZE);
    this.upcoming = null;
    this.fill = 0;
    // A member's buffer comes back holding its encoded bytes (see CodecPool.compress), or beside
    // them when they did not fit; refilled once they are written, as warm pages cost less than new.
    const encoded: Promise<Compressed> = this.compression === "none" ? Promise.resolve({ data: raw, input: raw }) : this.pool!.compress(this.compression, raw);
    encoded.catch(() => {}); // awaited in order below; avoid an unhandled rejection meanwhile
    // Handed to the body digest in order as soon as it is encoded (which transfers its buffer
    // away and back); written once hashed.
    const hashed = this.hashOrder.then(async () => {
      const { data, input } = await encoded;
      const digested = this.bodyHash.update(data);
      digested.catch(() => {});
      return { data: digested, input };
    });
    this.hashOrder = hashed.catch(() => {});
    this.tail = this.tail.then(async () => {
      const { data: digested, input } = await hashed;
      const data = await digested;
      await this.writeAt(data, this.position);
      for (const buf of new Set([data.buffer, input.buffer])) if (buf.byteLength === MEMBER_SIZE) this.spare.push(new Uint8Array(buf as ArrayBuffer));
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
    const trailer = encodeTrailer(this.compression, this.mtime, { firstMember: sha256Hex(first), body: await this.bodyHash.digest() });
    this.bodyHash.close();
    await this.writeAt(trailer, this.position);
    await pausePoint("archive:commit");
    const path = await this.file.commitNew(names);
    return { path, size: this.position };
  }

  async abort(): Promise<void> {
    await this.tail.catch(() => {});
    this.bodyHash.close();
    this.pending = [];
    await this.file.abort();
  }
}
