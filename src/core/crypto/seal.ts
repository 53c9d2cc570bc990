// Authenticated encryption of every object the repository writes: AES-256-GCM with a random
// 96-bit nonce per object, laid out as nonce ‖ ciphertext ‖ 16-byte tag. A flipped byte anywhere
// fails the tag check; nothing is ever decrypted without being authenticated.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
export const SEAL_OVERHEAD = NONCE_BYTES + TAG_BYTES;

export class SealError extends Error {
  override name = "SealError";
}

export function seal(key: Uint8Array, plain: Uint8Array): Uint8Array {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  const out = new Uint8Array(NONCE_BYTES + plain.length + TAG_BYTES);
  out.set(nonce, 0);
  const body = cipher.update(plain);
  out.set(body, NONCE_BYTES);
  const rest = cipher.final();
  out.set(rest, NONCE_BYTES + body.length);
  out.set(cipher.getAuthTag(), NONCE_BYTES + body.length + rest.length);
  return out;
}

/** Decrypts and authenticates; throws SealError when the object was altered or the key is wrong. */
export function unseal(key: Uint8Array, sealed: Uint8Array): Uint8Array {
  if (sealed.length < SEAL_OVERHEAD) throw new SealError(`encrypted object too short (${sealed.length} bytes)`);
  const nonce = sealed.subarray(0, NONCE_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  const decipher = createDecipheriv("aes-256-gcm", key, nonce);
  decipher.setAuthTag(tag);
  try {
    const body = decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES));
    const rest = decipher.final();
    if (rest.length === 0) return new Uint8Array(body.buffer, body.byteOffset, body.length);
    const out = new Uint8Array(body.length + rest.length);
    out.set(body, 0);
    out.set(rest, body.length);
    return out;
  } catch {
    throw new SealError("authentication failed (damaged, or not written with this key)");
  }
}

/** Bytes of a chunk's SHA-256, from which its blob id and its file's digest are computed. */
export const SUM_BYTES = 32;

/** A chunk's plain SHA-256, written into `into` (SUM_BYTES long). */
export function chunkSum(plain: Uint8Array, into: Uint8Array): void {
  Bun.SHA256.hash(plain, into);
}

/**
 * A blob's id from its chunk's SHA-256 (chunkSum): HMAC-SHA256 under the repository's id key, so
 * an id says nothing about content. Keyed over the chunk's hash rather than the chunk itself, so
 * that one pass over the bytes gives both the id and the file's digest (fileDigest).
 */
export function blobId(idKey: Uint8Array, sum: Uint8Array): string {
  return new Bun.CryptoHasher("sha256", idKey).update(sum).digest("hex");
}

/** A file's digest in a snapshot: SHA-256 of its chunks' SHA-256s (chunkSum) in file order. */
export class FileDigest {
  private readonly hash = new Bun.CryptoHasher("sha256");
  /** `sums`: SUM_BYTES per chunk, the next chunks in file order. */
  update(sums: Uint8Array): void {
    this.hash.update(sums);
  }
  digest(): string {
    return this.hash.digest("hex");
  }
}
