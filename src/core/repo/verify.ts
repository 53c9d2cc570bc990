// verify --repo: structure (every index and snapshot file opens and matches its name, every
// chunk of every snapshot is indexed, every pack it needs exists with its recorded size), then
// with readData every byte: each pack read whole, its sha256 checked against its name, each blob
// opened (authenticated, decompressed, checked against its id). A bad blob is reported with the
// snapshots and files that use it.
import { CodecPool, SlabRing, DigestWorker, type Span } from "../archive/codec-pool.ts";
import { StoreNotFoundError } from "../store/store.ts";
import { DuckbakError } from "../errors.ts";
import { BlobIndex } from "./index-file.ts";
import { lockRepository } from "./locks.ts";
import { decodePack } from "./pack.ts";
import { packKey, type Repository } from "./repository.ts";
import { chunksOf, headOf, loadSnapshot, resolveSnapshot, shortId, type SnapshotInfo } from "./snapshots.ts";
import type { BlobLocation } from "./index-file.ts";
import type { ProgressSink } from "../progress.ts";

export interface RepoVerifyOptions {
  /** A snapshot (id, prefix, latest); all of them when absent. */
  snapshot?: string;
  readData?: boolean;
  lockWaitSeconds?: number;
  /** With readData: the bytes of the packs to read, advanced as each is checked. */
  progress?: ProgressSink;
}

export interface RepoVerifyResult {
  ok: boolean;
  snapshots: string[];
  packs: number;
  blobs: number;
  bytesRead: number;
  problems: string[];
  /** Packs no index names (left by an interrupted backup); cleanup removes them. */
  unindexedPacks: number;
}

export async function verifyRepository(repo: Repository, opts: RepoVerifyOptions = {}): Promise<RepoVerifyResult> {
  const lock = await lockRepository(repo, { exclusive: false, command: "verify", waitSeconds: opts.lockWaitSeconds });
  const problems: string[] = [];
  const note = (p: string) => {
    if (problems.length < 1000) problems.push(p);
  };
  try {
    // Heads only (no chunk lists) for all; each snapshot's chunks are read again when needed.
    let all: SnapshotInfo[] = [];
    for (const id of await repo.listIds("snapshots")) {
      try {
        const s = headOf(await loadSnapshot(repo, id));
        all.push({ id, short: shortId(id), timestamp: new Date(s.timestamp), snapshot: s });
      } catch (err) {
        note(errText(err));
      }
    }
    all.sort((a, b) => b.timestamp.getTime() - a.timestamp.getTime());
    const selected = opts.snapshot ? [resolveSnapshot(all, opts.snapshot, repo.location)] : all;
    if (opts.snapshot) all = selected;

    // One snapshot: read once, and only the locations of its chunks are kept; the whole
    // repository: every blob's (each snapshot's chunks read one at a time below).
    const one = opts.snapshot ? await loadSnapshot(repo, selected[0]!.id) : null;
    const index = new BlobIndex(one ? chunksOf(one.databases) : undefined);
    for (const id of await repo.listIds("index")) {
      try {
        await index.loadFile(repo, id);
      } catch (err) {
        note(errText(err));
      }
    }

    const stored = new Map<string, number>();
    for await (const e of repo.store.list("data/")) stored.set(e.key.slice(e.key.lastIndexOf("/") + 1), e.size);
    const needed = new Set<string>(); // packs the selected snapshots use
    const badBlobs = new Map<string, string>(); // blob -> why
    const badPacks = new Map<string, string>(); // pack -> why its blobs are lost
    let unindexed = false;
    for (const s of selected) {
      for (const db of (one ?? (await loadSnapshot(repo, s.id))).databases) {
        for (const f of db.files) {
          for (const c of f.chunks) {
            const loc = index.get(c);
            if (loc) needed.add(loc.pack);
            else unindexed = true;
          }
        }
      }
    }
    for (const pack of needed) {
      const size = stored.get(pack);
      const want = index.packs.get(pack)!.size;
      const why = size === undefined ? `pack ${packKey(pack)} is missing` : size !== want ? `pack ${packKey(pack)} is ${size} bytes, the index recorded ${want} (truncated?)` : null;
      if (why) {
        badPacks.set(pack, why);
        needed.delete(pack);
      }
    }
    const problemOf = (c: string): string | undefined => {
      const loc = index.get(c);
      return loc ? (badBlobs.get(c) ?? badPacks.get(loc.pack)) : "in no index file";
    };
    let bytesRead = 0;
    let blobsChecked = 0;
    if (opts.readData) {
      // Whole repository: every indexed pack, every blob; one snapshot: the blobs it uses.
      // (The index then holds only that snapshot's blobs.)
      const packs = opts.snapshot ? needed : new Set([...index.packs.keys()].filter((p) => stored.has(p)));
      const pool = new CodecPool();
      const packHash = new DigestWorker();
      // Three packs in flight (read, hashed, their blobs opened), each in a slab of shared memory
      // that the workers read in place: memory stays bounded whatever the repository's size.
      const ring = new SlabRing(3, [...packs].reduce((m, p) => Math.max(m, stored.get(p) ?? 0), 0));
      const inflight = new Set<Promise<void>>();
      let failure: unknown = null;
      try {
        opts.progress?.start(
          [...packs].reduce((n, p) => n + (stored.get(p) ?? 0), 0),
          opts.snapshot ? `verifying snapshot ${selected[0]!.short}` : "verifying repository",
        );
        for (const pack of packs) {
          if (failure) break;
          const slab = await ring.take();
          const job: Promise<void> = checkPack(repo, pool, packHash, slab, pack, stored.get(pack) ?? 0, index.blobsIn(pack), badBlobs, note)
            .then(
              (r) => {
                bytesRead += r.bytes;
                blobsChecked += r.blobs;
                opts.progress?.advance(r.bytes);
              },
              (err) => void (failure ??= err),
            )
            .finally(() => {
              ring.give(slab);
              inflight.delete(job);
            });
          inflight.add(job);
        }
        await Promise.all(inflight);
        if (failure) throw failure;
      } finally {
        await Promise.allSettled(inflight);
        pool.close();
        packHash.close();
      }
    }
    // Name the snapshots and files that a bad blob breaks.
    if (badBlobs.size || badPacks.size || unindexed) {
      for (const s of all) {
        for (const db of (await loadSnapshot(repo, s.id)).databases) {
          for (const f of db.files) {
            for (const [i, c] of f.chunks.entries()) {
              const why = problemOf(c);
              if (why === undefined) continue;
              note(`snapshot ${s.short} ${db.name}: file ${f.name}: chunk ${i} (${c.slice(0, 12)}…): ${why}`);
              break;
            }
          }
        }
      }
    }
    const unindexedPacks = [...stored.keys()].filter((p) => !index.packs.has(p)).length;
    return {
      ok: problems.length === 0,
      snapshots: selected.map((s) => s.id),
      packs: opts.readData ? (opts.snapshot ? needed.size : index.packs.size) : needed.size,
      blobs: blobsChecked,
      bytesRead,
      problems,
      unindexedPacks,
    };
  } finally {
    await lock.release();
  }
}

function errText(err: unknown): string {
  if (err instanceof DuckbakError) return err.message;
  throw err;
}

/** Sealed bytes of blobs checked by one worker job. */
const CHECK_BYTES = 2 << 20;

async function checkPack(
  repo: Repository,
  pool: CodecPool,
  packHash: DigestWorker,
  slab: Uint8Array,
  pack: string,
  size: number,
  blobs: [string, BlobLocation][],
  badBlobs: Map<string, string>,
  note: (p: string) => void,
): Promise<{ bytes: number; blobs: number }> {
  const key = packKey(pack);
  // Read straight into shared memory (a pack larger than the slab gets its own).
  const bytes = size <= slab.length ? slab.subarray(0, size) : new Uint8Array(new SharedArrayBuffer(size));
  try {
    await repo.store.getRangeInto(key, 0, bytes);
  } catch (err) {
    if (err instanceof StoreNotFoundError) {
      note(`${key}: missing`);
      return { bytes: 0, blobs: 0 };
    }
    throw err;
  }
  // Both asked at once, so that another pack's bytes cannot come between them in the hasher.
  const hashed = packHash.update(bytes);
  const digest = packHash.digest();
  try {
    decodePack(repo, key, bytes);
  } catch (err) {
    note(errText(err));
  }
  const keys = repo.blobKeys;
  const jobs: Promise<void>[] = [];
  const check = (group: [string, BlobLocation][]) =>
    jobs.push(
      pool
        .run({ op: "check-spans", keys, spans: group.map(([, l]): Span => [l.offset, l.length]), expectIds: group.map(([id]) => id), sizes: group.map(([, l]) => l.raw) }, bytes)
        .then((r) => {
          for (const [i, why] of r.failures!) badBlobs.set(group[i]![0], `pack ${key}: ${why}`);
        }),
    );
  let group: [string, BlobLocation][] = [];
  let groupBytes = 0;
  let n = 0;
  for (const [id, loc] of blobs) {
    n++;
    if (loc.offset + loc.length > bytes.length) {
      badBlobs.set(id, `pack ${key}: truncated`);
      continue;
    }
    group.push([id, loc]);
    groupBytes += loc.length;
    if (groupBytes >= CHECK_BYTES) {
      check(group);
      group = [];
      groupBytes = 0;
    }
  }
  if (group.length) check(group);
  const settled = await Promise.allSettled([...jobs, hashed]);
  const failed = settled.find((r) => r.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  if ((await digest) !== pack) note(`${repo.location}: ${key}: content does not match its name (damaged)`);
  return { bytes: size, blobs: n };
}
