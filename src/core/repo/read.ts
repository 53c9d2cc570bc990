// Reading files back out of the repository: ranges of packs fetched (neighbouring blobs in one
// read), blobs opened (decrypted, decompressed, checked against their id) by the codec workers,
// written in order while the whole file's sha256 is computed and compared with the snapshot's.
import { createHash } from "node:crypto";
import { CodecJobError, type CodecPool } from "../archive/codec-pool.ts";
import { StoreNotFoundError } from "../store/store.ts";
import { DuckbakError } from "../errors.ts";
import { packKey, RepositoryDamagedError, type Repository } from "./repository.ts";
import type { BlobIndex, BlobLocation } from "./index-file.ts";
import type { RepoFile } from "./snapshots.ts";

/** Largest single read from a pack. */
const MAX_RANGE = 8 << 20;
/** Blobs in flight (fetched or being opened) per file. */
const WINDOW = 32;

interface Range {
  pack: string;
  offset: number;
  length: number;
  blobs: { id: string; at: number; length: number }[];
}

function ranges(chunks: string[], locate: (id: string) => BlobLocation): Range[] {
  const out: Range[] = [];
  let cur: Range | null = null;
  for (const id of chunks) {
    const loc = locate(id);
    if (cur && cur.pack === loc.pack && cur.offset + cur.length === loc.offset && cur.length + loc.length <= MAX_RANGE) {
      cur.blobs.push({ id, at: cur.length, length: loc.length });
      cur.length += loc.length;
    } else {
      cur = { pack: loc.pack, offset: loc.offset, length: loc.length, blobs: [{ id, at: 0, length: loc.length }] };
      out.push(cur);
    }
  }
  return out;
}

/**
 * Streams `file`'s bytes to `write` in order; throws RepositoryDamagedError naming `what` (the
 * snapshot and file) and the pack when a blob is missing or fails its checks.
 */
export async function readFileBlobs(
  repo: Repository,
  index: BlobIndex,
  pool: CodecPool,
  file: RepoFile,
  what: string,
  write: (chunk: Uint8Array) => Promise<void> | void,
  /** Check each blob against its id (copy needs that: it re-ids chunks); the file's sha256 is always checked. */
  checkIds = true,
): Promise<void> {
  const damaged = (detail: string) => new RepositoryDamagedError(repo.location, `${what}: ${detail}`);
  const locate = (id: string) => {
    const loc = index.blobs.get(id);
    if (!loc) throw damaged(`chunk ${id.slice(0, 12)}… is in no index file`);
    return loc;
  };
  const keys = repo.blobKeys;
  const hash = createHash("sha256");
  const pending: Promise<Uint8Array>[] = [];
  let size = 0;
  const drainOne = async () => {
    const plain = await pending.shift()!;
    hash.update(plain);
    size += plain.length;
    await write(plain);
  };
  try {
    for (const r of ranges(file.chunks, locate)) {
      const key = packKey(r.pack);
      const bytes = repo.store.getRange(key, r.offset, r.length).catch((err) => {
        if (err instanceof StoreNotFoundError) throw damaged(`pack ${key} is missing`);
        throw err instanceof DuckbakError ? damaged(`pack ${key}: ${err.message.replace(/^.*?: /, "")}`) : err;
      });
      for (const b of r.blobs) {
        const p = bytes.then((buf) =>
          pool.run({ op: "open", keys, expectId: checkIds ? b.id : null }, buf.slice(b.at, b.at + b.length)).then(
            (res) => res.data!,
            (err) => {
              throw err instanceof CodecJobError ? damaged(`pack ${key}: blob ${b.id.slice(0, 12)}…: ${err.message}`) : err;
            },
          ),
        );
        p.catch(() => {}); // awaited in order below
        pending.push(p);
        if (pending.length >= WINDOW) await drainOne();
      }
    }
    while (pending.length) await drainOne();
  } catch (err) {
    await Promise.allSettled(pending);
    throw err;
  }
  if (size !== file.size_bytes) throw damaged(`restored ${size} bytes, the snapshot recorded ${file.size_bytes}`);
  const sha = hash.digest("hex");
  if (sha !== file.sha256) throw damaged(`sha256 ${sha.slice(0, 12)}… differs from the recorded ${file.sha256.slice(0, 12)}…`);
}
