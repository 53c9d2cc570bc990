// A chunk's print: two 64-bit hashes (xxHash3, xxHash64) under a sum cache's seeds, which tell
// whether a chunk is the one the last backup hashed (see sum-cache.ts). In a module of its own:
// the codec workers load it.
import { SUM_BYTES } from "../crypto/seal.ts";

export const PRINT_BYTES = 16;
/** Per span of an ids job: 1 when the cache knows it, then its print and its SHA-256. */
export const PRIOR_BYTES = 1 + PRINT_BYTES + SUM_BYTES;
export type Seeds = [bigint, bigint];

/** A chunk's print into `into` (PRINT_BYTES). */
export function chunkPrint(chunk: Uint8Array, seeds: Seeds, into: Uint8Array): void {
  const v = new DataView(into.buffer, into.byteOffset, PRINT_BYTES);
  v.setBigUint64(0, Bun.hash.xxHash3(chunk, seeds[0]), true);
  // Not wyhash: blocks of its own constants reset its state, whatever the seed (collisions without the seed).
  v.setBigUint64(8, Bun.hash.xxHash64(chunk, seeds[1]), true);
}

/**
 * For the k-th chunk of an ids job: its print into `prints`, and its SHA-256 into `sum` from
 * `prior` when the print is the one there; false (nothing in `sum`) when it is not known.
 */
export function knownSum(chunk: Uint8Array, k: number, seeds: Seeds, prior: Uint8Array | undefined, prints: Uint8Array, sum: Uint8Array): boolean {
  const print = prints.subarray(k * PRINT_BYTES, (k + 1) * PRINT_BYTES);
  chunkPrint(chunk, seeds, print);
  const p = k * PRIOR_BYTES;
  if (!prior || prior[p] !== 1) return false;
  for (let i = 0; i < PRINT_BYTES; i++) if (print[i] !== prior[p + 1 + i]) return false;
  sum.set(prior.subarray(p + 1 + PRINT_BYTES, p + PRIOR_BYTES));
  return true;
}
