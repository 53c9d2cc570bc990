import { open } from "node:fs/promises";
import { createTarPacker } from "modern-tar";
import { AtomicFile } from "../fsutil.ts";
import { DuckbakError, fsError } from "../errors.ts";
import { MANIFEST_NAME, type Compression } from "../naming.ts";
import { storedMember } from "./codec.ts";
import type { CodecPool } from "./codec-pool.ts";

/** Uncompressed bytes per gzip member / zstd frame: big enough to compress well, small enough to bound memory. */
const MEMBER_SIZE = 4 * 1024 * 1024;
const READ_SIZE = 1024 * 1024;
const TAR_BLOCK = 512;

export interface AddFileResult {
  sha256: string;
  size: number;
}

/**
 * Streams a tar archive into a temporary file in the destination folder, compressed as
 * independent members by the pool. The manifest goes first as a fixed-length stored member, so
 * that `finish` can write the final manifest (with the checksums computed while streaming) over
 * it: one read of each database, and the manifest still leads the archive.
 */
export class ArchiveWriter {
  private readonly packer = createTarPacker();
  private consumer: Promise<void> | null = null;
  private firstRaw: Uint8Array | null = null;
  private firstLength = 0;
  private manifestLength = 0;
  private position = 0;
  private writes: Promise<Uint8Array>[] = [];
  private failed: unknown = null;

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
    if (this.consumer) throw new Error("the manifest must be the first entry");
    this.manifestLength = placeholder.length;
    this.firstLength = TAR_BLOCK + Math.ceil(placeholder.length / TAR_BLOCK) * TAR_BLOCK;
    this.consumer = this.consume();
    await this.writeEntry(MANIFEST_NAME, placeholder.length, mtime, 0o644, async (w) => {
      await w.write(placeholder);
    });
  }

  /** Streams `size` bytes of `path` into the archive as `entry`, hashing them on the way. */
  async addFile(entry: string, path: string, size: number, mtime: Date, onBytes?: (n: number) => void): Promise<AddFileResult> {
    const hasher = new Bun.CryptoHasher("sha256");
    let handle;
    try {
      handle = await open(path, "r");
    } catch (err) {
      throw fsError(err, path, "open");
    }
    try {
      await this.writeEntry(entry, size, mtime, 0o644, async (w) => {
        let done = 0;
        while (done < size) {
          const chunk = new Uint8Array(Math.min(READ_SIZE, size - done));
          const { bytesRead } = await handle.read(chunk, 0, chunk.length, done).catch((err) => {
            throw fsError(err, path, "read");
          });
          if (bytesRead === 0) throw new DuckbakError(`${path}: file shrank while being copied (expected ${size} bytes, got ${done})`);
          const data = chunk.subarray(0, bytesRead);
          hasher.update(data);
          await w.write(data);
          done += bytesRead;
          onBytes?.(bytesRead);
        }
      });
    } finally {
      await handle.close();
    }
    return { sha256: hasher.digest("hex"), size };
  }

  private async writeEntry(
    name: string,
    size: number,
    mtime: Date,
    mode: number,
    body: (w: WritableStreamDefaultWriter<Uint8Array>) => Promise<void>,
  ): Promise<void> {
    this.throwIfFailed();
    const mtimeSeconds = new Date(Math.floor(mtime.getTime() / 1000) * 1000);
    const writer = this.packer.controller.add({ name, size, mtime: mtimeSeconds, mode, type: "file" }).getWriter();
    try {
      await body(writer);
      await writer.close();
    } catch (err) {
      await writer.abort(err).catch(() => {});
      throw this.failed ?? err;
    }
  }

  /** Splits the tar byte stream into members and writes them, compressed, in order. */
  private async consume(): Promise<void> {
    const reader = this.packer.readable.getReader();
    let member = new Uint8Array(this.firstLength);
    let fill = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        let off = 0;
        while (off < value.length) {
          const n = Math.min(member.length - fill, value.length - off);
          member.set(value.subarray(off, off + n), fill);
          fill += n;
          off += n;
          if (fill === member.length) {
            await this.emit(member);
            member = new Uint8Array(MEMBER_SIZE);
            fill = 0;
          }
        }
      }
      if (fill > 0) await this.emit(member.subarray(0, fill));
      while (this.writes.length) await this.flushOne();
    } catch (err) {
      this.failed ??= err;
      this.packer.controller.error(err);
      throw err;
    }
  }

  private async emit(raw: Uint8Array): Promise<void> {
    let encoded: Promise<Uint8Array>;
    if (!this.firstRaw) {
      this.firstRaw = raw;
      encoded = Promise.resolve(storedMember(this.compression, raw.slice()));
    } else if (this.compression === "none") {
      encoded = Promise.resolve(raw);
    } else {
      encoded = this.pool!.compress(this.compression, raw);
    }
    encoded.catch(() => {}); // awaited in order by flushOne; avoid an unhandled rejection meanwhile
    this.writes.push(encoded);
    while (this.writes.length > this.maxInFlight) await this.flushOne();
  }

  private async flushOne(): Promise<void> {
    const data = await this.writes.shift()!;
    await this.file.write(data, this.position).catch((err) => {
      throw fsError(err, this.file.finalPath, "write");
    });
    this.position += data.length;
  }

  private throwIfFailed(): void {
    if (this.failed) throw this.failed;
  }

  /**
   * Ends the archive, puts the final manifest in place of the placeholder, and moves the file to
   * the first of `names` that does not exist yet.
   */
  async finish(manifest: Uint8Array, names: Iterable<string>): Promise<{ path: string; size: number }> {
    if (manifest.length !== this.manifestLength) throw new Error("final manifest differs in length from its placeholder");
    this.packer.controller.finalize();
    await this.consumer;
    const first = this.firstRaw!.slice();
    first.set(manifest, TAR_BLOCK);
    await this.file.write(storedMember(this.compression, first), 0).catch((err) => {
      throw fsError(err, this.file.finalPath, "write");
    });
    const path = await this.file.commitNew(names);
    return { path, size: this.position };
  }

  async abort(reason?: unknown): Promise<void> {
    this.failed ??= reason ?? new Error("aborted");
    this.packer.controller.error(this.failed);
    await this.consumer?.catch(() => {});
    await this.file.abort();
  }
}
