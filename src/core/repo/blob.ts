// One blob as stored in a pack: seal(flag ‖ payload), flag 1 = payload is a zstd frame, 0 = the
// plain bytes (data that does not shrink is stored as is). Runs in the codec workers.
import { createZstdDecompress } from "node:zlib";
import { SUM_BYTES, blobId, chunkSum, seal, unseal, SealError } from "../crypto/seal.ts";

export const BLOB_ZSTD_LEVEL = 3;

export interface BlobKeys {
  encrypt: Uint8Array;
  id: Uint8Array;
}

export function sealBlob(keys: BlobKeys, plain: Uint8Array): Uint8Array {
  const z = Bun.zstdCompressSync(plain as Uint8Array<ArrayBuffer>, { level: BLOB_ZSTD_LEVEL });
  const compressed = z.length < plain.length;
  const body = new Uint8Array(1 + (compressed ? z.length : plain.length));
  body[0] = compressed ? 1 : 0;
  body.set(compressed ? z : plain, 1);
  return seal(keys.encrypt, body);
}

export class BlobError extends Error {
  override name = "BlobError";
}

/** The native handle under node:zlib's ZstdDecompress stream, as Node's own zlib.js drives it. */
interface ZstdHandle {
  reset(): void;
  /** Results in the stream's _writeState: [output bytes left, input bytes left]; errors through onerror. */
  writeSync(flush: number, input: Uint8Array, inOffset: number, inLength: number, out: Uint8Array, outOffset: number, outLength: number): void;
  onerror: (message: string) => void;
}

const ZSTD_E_END = 2;

/**
 * zstd frames decompressed straight into a buffer given, through one context per thread.
 * Bun.zstdDecompressSync hands back each chunk in a new buffer: fresh pages to fault in, a copy
 * into the slab, garbage to collect; on a restore that was a fifth of the workers' CPU time.
 */
class ZstdInto {
  private readonly stream = createZstdDecompress() as unknown as { _handle: ZstdHandle; _writeState: Uint32Array };
  private error: string | null = null;

  constructor() {
    this.stream._handle.onerror = (message) => void (this.error = message);
  }

  /** Decompresses the frame `src` into `out`, which it must fill exactly. */
  decompress(src: Uint8Array, out: Uint8Array): void {
    const handle = this.stream._handle;
    this.error = null;
    handle.reset();
    handle.writeSync(ZSTD_E_END, src, 0, src.length, out, 0, out.length);
    if (this.error !== null) throw new BlobError(`zstd: ${this.error}`);
    const [outLeft, inLeft] = this.stream._writeState;
    if (inLeft) throw new BlobError(`larger than the index says (${out.length} bytes)`);
    if (outLeft) throw new BlobError(`${out.length - outLeft!} bytes, the index says ${out.length}`);
  }
}

let zstd: ZstdInto | undefined;

/**
 * Decrypts and decompresses a blob into `out`, which its plain length (the index's) must fill
 * exactly, and checks it against its id; throws BlobError naming what failed. The chunk's SHA-256
 * (the id's input, and its part of the file's digest) goes into `sum`.
 */
export function openBlob(keys: BlobKeys, sealed: Uint8Array, expectId: string, out: Uint8Array, sum = new Uint8Array(SUM_BYTES)): void {
  let body: Uint8Array;
  try {
    body = unseal(keys.encrypt, sealed);
  } catch (err) {
    throw new BlobError(err instanceof SealError ? err.message : String(err));
  }
  if (body[0] === 0) {
    if (body.length - 1 !== out.length) throw new BlobError(`${body.length - 1} bytes, the index says ${out.length}`);
    out.set(body.subarray(1));
  } else if (body[0] === 1) (zstd ??= new ZstdInto()).decompress(body.subarray(1), out);
  else throw new BlobError(`unknown blob flag ${body[0]}`);
  chunkSum(out, sum);
  if (blobId(keys.id, sum) !== expectId) throw new BlobError("content does not match its id");
}
