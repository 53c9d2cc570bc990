// A snapshot with a very large number of chunks, made cheaply: a real database's main file (its
// chunks as a backup cuts them) followed by `tail` tiny chunks of 16 bytes, a window's worth of
// distinct ones (524,288) packed in order, named over and over in pack order (so a restore reads them in ranges, not one
// by one). The file it describes is the database with `tail` × 16 bytes after its last block,
// which DuckDB opens as it was. Chunk lists are written as a backup writes them (lists.ts).
import { readFileSync } from "node:fs";
import { chunkRanges } from "../src/core/repo/backup.ts";
import { sealBlob } from "../src/core/repo/blob.ts";
import { blobId, chunkSum, FileDigest, SUM_BYTES } from "../src/core/crypto/seal.ts";
import { BlobIndex, IndexWriter } from "../src/core/repo/index-file.ts";
import { IdSet } from "../src/core/repo/id-table.ts";
import { ListWriter, WINDOW_CHUNKS } from "../src/core/repo/lists.ts";
import { PackWriter } from "../src/core/repo/pack.ts";
import { loadSnapshot, loadSnapshots, type RepoSnapshot } from "../src/core/repo/snapshots.ts";
import type { Repository } from "../src/core/repo/repository.ts";

export const TAIL_CHUNK = 16;
/** Distinct tail chunks: as many as a window of chunk locations holds (lists.ts), so its index table is full size. */
const DISTINCT = WINDOW_CHUNKS;
const BLOBS_PER_PACK = 4096;

/** The tail's chunk `k` (of the DISTINCT ones). */
export function tailChunk(k: number): Uint8Array {
  const b = new Uint8Array(TAIL_CHUNK);
  new DataView(b.buffer).setUint32(0, k + 1, true);
  return b;
}

/** The bytes the synthetic file ends with: `tail` chunks, DISTINCT of them in turn. */
export function tailBytes(tail: number): Uint8Array {
  const out = new Uint8Array(tail * TAIL_CHUNK);
  for (let i = 0; i < tail; i++) out.set(tailChunk(i % DISTINCT), i * TAIL_CHUNK);
  return out;
}

/**
 * Adds, as the newest snapshot, the latest snapshot's first database (`dbPath`, unchanged since,
 * checkpointed: no WAL) with `tail` chunks after its main file. Returns the snapshot's id.
 */
export async function addSyntheticSnapshot(repo: Repository, dbPath: string, tail: number): Promise<string> {
  const keys = repo.blobKeys;
  const latest = await loadSnapshot(repo, (await loadSnapshots(repo))[0]!.id);
  const db = latest.databases[0]!;
  const main = db.files.find((f) => f.role === "main")!;
  const bytes = readFileSync(dbPath);
  const index = await BlobIndex.load(repo);
  const indexer = new IndexWriter(repo);
  const packer = new PackWriter(repo, 2, indexer);
  const seen = new IdSet();
  const lists = new ListWriter(keys, packer, () => (id) => index.has(id), seen);
  const digest = new FileDigest();
  const sum = new Uint8Array(SUM_BYTES);
  // The database's own chunks: already in the repository.
  for (const [o, l] of chunkRanges({ role: "main", size: bytes.length }, 262144, repo.config.max_chunk_bytes, repo.config.side_chunk_bytes)) {
    chunkSum(bytes.subarray(o, o + l), sum);
    const id = blobId(keys.id, sum);
    if (!index.has(id)) throw new Error(`${dbPath} changed since its backup`);
    digest.update(sum);
    await lists.add([id]);
  }
  // The tail: DISTINCT blobs packed in order, then named in turn.
  const ids: string[] = [];
  const sums: Uint8Array[] = [];
  for (let k = 0; k < DISTINCT; k++) {
    const chunk = tailChunk(k);
    const s = new Uint8Array(SUM_BYTES);
    chunkSum(chunk, s);
    const id = blobId(keys.id, s);
    ids.push(id);
    sums.push(s);
    seen.add(id);
    await packer.add(id, sealBlob(keys, chunk), chunk.length);
    // Packs of 4,096 blobs, as 16 MiB of 4 KiB blobs (well-compressed 16 KiB blocks) would be: a
    // pack of hundreds of thousands of tiny blobs is no real pack, and its index file alone weighs.
    if ((k + 1) % BLOBS_PER_PACK === 0) await packer.finish();
  }
  for (let i = 0; i < tail; i += DISTINCT) {
    const n = Math.min(DISTINCT, tail - i);
    for (let k = 0; k < n; k++) digest.update(sums[k]!);
    await lists.add(n === DISTINCT ? ids : ids.slice(0, n));
  }
  const listed = await lists.finish();
  await packer.finish();
  await indexer.finish();
  const size = bytes.length + tail * TAIL_CHUNK;
  const snapshot: RepoSnapshot = {
    ...latest,
    timestamp: new Date(Date.parse(latest.timestamp) + 1000).toISOString(),
    databases: [{ ...db, size_bytes: size, files: [{ ...main, size_bytes: size, chunks_sha256: digest.digest(), ...listed }] }],
    stats: { ...latest.stats, logical_bytes: size, chunks: listed.chunk_count },
  };
  return repo.putJson("snapshots", snapshot);
}
