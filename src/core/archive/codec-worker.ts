// Worker thread of the codec pool: one job per message (see CodecJob).
import { compressMember } from "./codec.ts";
import { SUM_BYTES, blobId, chunkSum } from "../crypto/seal.ts";
import { openBlob, sealBlob } from "../repo/blob.ts";
import { blockValid } from "../duckdb/blocks.ts";
import { PRINT_BYTES, knownSum } from "../repo/chunk-print.ts";
import type { CodecRequest, CodecResponse } from "./codec-pool.ts";

declare const self: Worker;

/** The stream of a DigestWorker (a worker of its own, which receives only digest jobs). */
let digest = new Bun.CryptoHasher("sha256");

/** Where check-spans opens blobs: one buffer, reused (warm pages), as large as the largest chunk yet. */
let scratch = new Uint8Array(0);
function scratchOf(bytes: number): Uint8Array {
  if (scratch.length < bytes) scratch = new Uint8Array(bytes);
  return scratch.subarray(0, bytes);
}

self.onmessage = (event: MessageEvent<CodecRequest>) => {
  const req = event.data;
  const { id, data } = req;
  let reply: CodecResponse;
  try {
    switch (req.op) {
      case "compress": {
        const out = compressMember(req.codec, data);
        // Into the input's buffer when it fits (see CodecPool.compress).
        const fits = out !== data && out.length <= data.buffer.byteLength;
        reply = { id, data: fits ? new Uint8Array(data.buffer, 0, out.length) : out, input: data };
        if (fits) reply.data!.set(out);
        // Frees `out` now, so that the next member's output reuses its pages: on a 1 GB backup this
        // halved the worker's page faults and cut the pool's CPU time by ~10%.
        Bun.gc(false);
        break;
      }
      case "ids": {
        const sums = new Uint8Array(req.spans.length * SUM_BYTES);
        const { keys, seeds, prior } = req;
        const prints = seeds && new Uint8Array(req.spans.length * PRINT_BYTES);
        let hashedBytes = 0;
        const ids = req.spans.map(([at, length], k) => {
          const sum = sums.subarray(k * SUM_BYTES, (k + 1) * SUM_BYTES);
          const chunk = data.subarray(at, at + length);
          if (!seeds || !knownSum(chunk, k, seeds, prior, prints!, sum)) {
            chunkSum(chunk, sum);
            hashedBytes += length;
          }
          return keys && blobId(keys.id, sum);
        });
        const badBlocks: number[] = [];
        if (req.blocks) {
          const { first, size } = req.blocks;
          for (let at = first; at + size <= data.length; at += size) if (!blockValid(data, at, size)) badBlocks.push(at);
        }
        reply = { id, ids: keys && (ids as string[]), sums, prints, hashedBytes, badBlocks, input: data };
        break;
      }
      case "seal-spans":
        reply = { id, parts: req.spans.map(([at, length]) => sealBlob(req.keys, data.subarray(at, at + length))), input: data };
        break;
      case "open-spans": {
        const { out, sizes } = req;
        const total = sizes.reduce((a, b) => a + b, 0);
        if (total !== out.length) throw new Error(`blobs hold ${total} bytes, the index says ${out.length}`);
        const sums = new Uint8Array(req.spans.length * SUM_BYTES);
        let o = 0;
        req.spans.forEach(([at, length], i) => {
          try {
            openBlob(req.keys, data.subarray(at, at + length), req.expectIds[i]!, out.subarray(o, o + sizes[i]!), sums.subarray(i * SUM_BYTES, (i + 1) * SUM_BYTES));
          } catch (err) {
            throw new Error(`blob ${i}: ${(err as Error).message}`);
          }
          o += sizes[i]!;
        });
        reply = { id, sums, input: data };
        break;
      }
      case "check-spans": {
        const failures: [number, string][] = [];
        req.spans.forEach(([at, length], i) => {
          try {
            openBlob(req.keys, data.subarray(at, at + length), req.expectIds[i]!, scratchOf(req.sizes[i]!));
          } catch (err) {
            failures.push([i, (err as Error).message]);
          }
        });
        reply = { id, failures, input: data };
        break;
      }
      case "digest-update":
        digest.update(data);
        reply = { id, input: data };
        break;
      case "digest-end":
        reply = { id, text: digest.digest("hex") };
        digest = new Bun.CryptoHasher("sha256");
        break;
    }
  } catch (err) {
    reply = { id, error: err instanceof Error ? err.message : String(err) };
  }
  // A view into a shared (pooled) buffer cannot be transferred alone: give it its own.
  if (reply.data && reply.data.byteLength !== reply.data.buffer.byteLength && reply.data.buffer !== reply.input?.buffer) reply.data = reply.data.slice();
  // The input goes back too, so the caller can fill it again instead of allocating a new one.
  // Shared memory stays where it is.
  if (reply.input?.buffer instanceof SharedArrayBuffer) delete reply.input;
  const transfer: ArrayBuffer[] = [];
  if (reply.input) transfer.push(reply.input.buffer as ArrayBuffer);
  if (reply.data && reply.data.buffer !== reply.input?.buffer) transfer.push(reply.data.buffer as ArrayBuffer);
  for (const p of reply.parts ?? []) transfer.push(p.buffer as ArrayBuffer);
  if (reply.sums) transfer.push(reply.sums.buffer as ArrayBuffer);
  if (reply.prints) transfer.push(reply.prints.buffer as ArrayBuffer);
  self.postMessage(reply, transfer);
};
