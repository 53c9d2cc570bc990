// One blob as stored in a pack: seal(flag ‖ payload), flag 1 = payload is a zstd frame, 0 = the
// plain bytes (data that does not shrink is stored as is). Runs in the codec workers.
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

/**
 * Decrypts, decompresses and checks a blob against its id; throws BlobError naming what failed.
 * The chunk's SHA-256 (the id's input, and its part of the file's digest) goes into `sum`.
 */
export function openBlob(keys: BlobKeys, sealed: Uint8Array, expectId: string, sum = new Uint8Array(SUM_BYTES)): Uint8Array {
  let body: Uint8Array;
  try {
    body = unseal(keys.encrypt, sealed);
  } catch (err) {
    throw new BlobError(err instanceof SealError ? err.message : String(err));
  }
  let plain: Uint8Array;
  if (body[0] === 0) plain = body.subarray(1);
  else if (body[0] === 1) {
    try {
      plain = Bun.zstdDecompressSync(body.subarray(1) as Uint8Array<ArrayBuffer>);
    } catch (err) {
      throw new BlobError(`zstd: ${(err as Error).message}`);
    }
  } else throw new BlobError(`unknown blob flag ${body[0]}`);
  chunkSum(plain, sum);
  if (blobId(keys.id, sum) !== expectId) throw new BlobError("content does not match its id");
  return plain;
}
