// Reading files back out of the repository: ranges of packs fetched (neighbouring blobs in one
// read), blobs opened (decrypted, decompressed, checked against their id) by the codec workers,
// written in order while the file's digest is computed from the chunks' SHA-256s and compared
// with the snapshot's.
import { CodecJobError, SlabRing, type CodecPool, type Span } from "../archive/codec-pool.ts";
import { FileDigest, SEAL_OVERHEAD } from "../crypto/seal.ts";
import { StoreNotFoundError } from "../store/store.ts";
import { DuckbakError } from "../errors.ts";
import { packKey, RepositoryDamagedError, type Repository } from "./repository.ts";
import type { RepoFile } from "./snapshots.ts";
import type { ChunkStream } from "./lists.ts";

/** Largest single read from a pack, and most bytes its blobs may open to: one worker job. */
const MAX_RANGE = 4 << 20;
/** Most blobs in one range (a real one has at most 4 MiB / 4 KiB): what a range costs in objects stays bounded whatever the chunks' size. */
const MAX_RANGE_BLOBS = 1024;
/** A sealed blob's bytes beyond its chunk's: flag, nonce, tag. */
const BLOB_OVERHEAD = 1 + SEAL_OVERHEAD;

interface Range {
  pack: string;
  offset: number;
  length: number;
  /** Bytes of its blobs once opened. */
  plain: number;
  blobs: { id: string; at: number; length: number; raw: number }[];
}

/** A file's chunks (id and location, in order) as ranges of packs, each yielded once complete. */
async function* ranges(chunks: ChunkStream): AsyncGenerator<Range> {
  let cur: Range | null = null;
  for await (const batch of chunks)
    for (const [id, loc] of batch) {
      if (cur && cur.pack === loc.pack && cur.offset + cur.length === loc.offset && cur.length + loc.length <= MAX_RANGE && cur.plain + loc.raw <= MAX_RANGE && cur.blobs.length < MAX_RANGE_BLOBS) {
        cur.blobs.push({ id, at: cur.length, length: loc.length, raw: loc.raw });
        cur.length += loc.length;
        cur.plain += loc.raw;
      } else {
        if (cur) yield cur;
        cur = { pack: loc.pack, offset: loc.offset, length: loc.length, plain: loc.raw, blobs: [{ id, at: 0, length: loc.length, raw: loc.raw }] };
      }
    }
  if (cur) yield cur;
}

/**
 * Streams `file`'s bytes to `write` in order, a range of chunks at a time (`chunks`: its chunks'
 * ids and locations in order, lists.ts; never all held at once): `bytes` holds the
 * chunks of `sizes` one after another, and is valid until `write` returns (or its promise
 * resolves). Ranges of packs are fetched (neighbouring blobs in one read) and opened by the codec
 * workers straight into shared memory; each blob is checked against its id there, and the file's
 * digest (from the chunks' SHA-256s, in order) is compared with the snapshot's at the end. Throws
 * RepositoryDamagedError naming `what` (the snapshot and file) and the pack when a blob is missing
 * or fails its checks.
 */
export async function readFileBlobs(
  repo: Repository,
  chunks: ChunkStream,
  pool: CodecPool,
  file: RepoFile,
  what: string,
  write: (bytes: Uint8Array, sizes: number[]) => Promise<void> | void,
): Promise<void> {
  const digest = new FileDigest();
  let size = 0;
  await readBlobs(repo, chunks, pool, what, async (bytes, sizes, sums) => {
    digest.update(sums);
    size += bytes.length;
    await write(bytes, sizes);
  });
  checkFile(repo, file, what, size, digest);
}

/** Throws when a file read back (`size` bytes, the digest of its chunks' SHA-256s) is not the one the snapshot recorded. */
export function checkFile(repo: Repository, file: RepoFile, what: string, size: number, digest: FileDigest): void {
  const damaged = (detail: string) => new RepositoryDamagedError(repo.location, `${what}: ${detail}`);
  if (size !== file.size_bytes) throw damaged(`restored ${size} bytes, the snapshot recorded ${file.size_bytes}`);
  const seen = digest.digest();
  if (seen !== file.chunks_sha256) throw damaged(`digest ${seen.slice(0, 12)}… differs from the recorded ${file.chunks_sha256.slice(0, 12)}…`);
}

/**
 * readFileBlobs without the file's checks: the chunks of `chunks` (any of them, in order) to
 * `write`, with their SHA-256s (`sums`, 32 bytes each), each blob checked against its id.
 */
export async function readBlobs(
  repo: Repository,
  chunks: ChunkStream,
  pool: CodecPool,
  what: string,
  write: (bytes: Uint8Array, sizes: number[], sums: Uint8Array) => Promise<void> | void,
): Promise<void> {
  const damaged = (detail: string) => new RepositoryDamagedError(repo.location, `${what}: ${detail}`);
  const keys = repo.blobKeys;
  // Slabs in use at once (fetched, being opened, hashed or written): every worker busy, memory
  // bounded. Each holds a range as read from its pack, then the range opened: a range is at most
  // MAX_RANGE, or one chunk (at most the largest chunk the config allows, sealed).
  const cfg = repo.config;
  const sealedBytes = Math.max(MAX_RANGE, cfg.max_chunk_bytes + BLOB_OVERHEAD, cfg.side_chunk_bytes + BLOB_OVERHEAD);
  const ring = new SlabRing(2 * pool.size + 2, 2 * sealedBytes);
  const pending: { slab: Uint8Array; out: Uint8Array; sizes: number[]; opened: Promise<Uint8Array> }[] = [];
  const drainOne = async () => {
    const { slab, out, sizes, opened } = pending.shift()!;
    try {
      await write(out, sizes, await opened);
    } finally {
      ring.give(slab);
    }
  };
  try {
    for await (const r of ranges(chunks)) {
      const key = packKey(r.pack);
      if (r.length > sealedBytes || r.plain > sealedBytes) throw damaged(`pack ${key}: blob ${r.blobs[0]!.id.slice(0, 12)}… is larger than any chunk (${Math.max(r.length, r.plain)} bytes)`);
      // Taken before the fetch: the number of ranges in flight is the number of slabs.
      const slab = pending.length >= ring.count ? (await drainOne(), await ring.take()) : await ring.take();
      const sealed = slab.subarray(0, r.length);
      const out = slab.subarray(sealedBytes, sealedBytes + r.plain);
      const opened = repo.store
        .getRangeInto(key, r.offset, sealed)
        .catch((err) => {
          if (err instanceof StoreNotFoundError) throw damaged(`pack ${key} is missing`);
          throw err instanceof DuckbakError ? damaged(`pack ${key}: ${err.message.replace(/^.*?: /, "")}`) : err;
        })
        .then(async () => {
          const spans = r.blobs.map((b): Span => [b.at, b.length]);
          try {
            return (await pool.run({ op: "open-spans", keys, spans, expectIds: r.blobs.map((b) => b.id), sizes: r.blobs.map((b) => b.raw), out }, sealed)).sums!;
          } catch (err) {
            throw err instanceof CodecJobError ? damaged(`pack ${key}: ${blobNamed(err.message, r.blobs)}`) : err;
          }
        });
      opened.catch(() => {}); // awaited in order by drainOne
      pending.push({ slab, out, sizes: r.blobs.map((b) => b.raw), opened });
    }
    while (pending.length) await drainOne();
  } finally {
    // Nothing may still be filling a slab when the caller moves on.
    await Promise.allSettled(pending.map((p) => p.opened));
  }
}

/** A worker's "blob N: why" as "blob <id>…: why", the way errors name blobs. */
function blobNamed(message: string, blobs: Range["blobs"]): string {
  const m = /^blob (\d+): (.*)$/s.exec(message);
  const b = m ? blobs[Number(m[1])] : undefined;
  return b ? `blob ${b.id.slice(0, 12)}…: ${m![2]}` : message;
}
