// verify --repo: structure (every index and snapshot file opens and matches its name, every
// chunk of every snapshot is indexed, every pack it needs exists with its recorded size), then
// with readData every byte: each pack read whole, its sha256 checked against its name, each blob
// opened (authenticated, decompressed, checked against its id). A bad blob is reported with the
// snapshots and files that use it.
import { BufferChurn, CodecPool, SlabRing, DigestWorker, type Span } from "../archive/codec-pool.ts";
import { StoreNotFoundError } from "../store/store.ts";
import { DuckbakError } from "../errors.ts";
import { BlobIndex, IndexParts, missingFrom, storedPacks } from "./index-file.ts";
import { lockRepository, type RepoLockInfo } from "./locks.ts";
import { decodePack } from "./pack.ts";
import { packKey, type Repository, type RepositoryDamagedError } from "./repository.ts";
import { loadSnapshot, loadSnapshots, resolveSnapshot, type RepoFile, type UnreadableSnapshot } from "./snapshots.ts";
import { checkLists, ID_BYTES, idAt, LIST_IDS, listLength, readList, SnapshotChunks } from "./lists.ts";
import { ALL_IDS, IdSet, type IdPart } from "./id-table.ts";
import type { BlobLocation } from "./index-file.ts";
import type { ProgressSink } from "../progress.ts";
import { recordedSourceDamage } from "../verify.ts";

export interface RepoVerifyOptions {
  /** A snapshot (id, prefix, latest); all of them when absent. */
  snapshot?: string;
  readData?: boolean;
  lockWaitSeconds?: number;
  /** Called once when a cleanup holds the repository and the run starts waiting for it. */
  onLockWait?: (holder: RepoLockInfo) => void;
  /** With readData: the bytes of the packs to read, advanced as each is checked. */
  progress?: ProgressSink;
  /** The whole repository: bytes of index files whose ids one pass holds (PASS_INDEX_BYTES; more: passes over parts of the id space). */
  passIndexBytes?: number;
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
  /** Whole-repository verify: files none of the repository's objects is named as (passed over by every command). */
  unexpectedFiles: string[];
}

export async function verifyRepository(repo: Repository, opts: RepoVerifyOptions = {}): Promise<RepoVerifyResult> {
  const lock = await lockRepository(repo, { exclusive: false, command: "verify", waitSeconds: opts.lockWaitSeconds, onWait: opts.onLockWait });
  const problems: string[] = [];
  const note = (p: string) => {
    // (An index file that cannot be read is met by each scan of the index.)
    if (problems.length < 1000 && !problems.includes(p)) problems.push(p);
  };
  let state: VerifyState | undefined;
  try {
    // Heads only (no chunk lists) for all; each snapshot's chunks are read again when needed.
    const unreadable: UnreadableSnapshot[] = [];
    const all = await loadSnapshots(repo, unreadable);
    // Verifying one snapshot, another's damage is not its own (unless it is the one named).
    for (const u of unreadable) if (!opts.snapshot || u.id.startsWith(opts.snapshot)) note(u.error.message);
    const selected = opts.snapshot ? [resolveSnapshot(all, opts.snapshot, repo.location)] : all;
    // A source already damaged when backed up: the snapshot holds it faithfully, yet it is no sound copy.
    for (const s of selected) for (const db of s.snapshot.databases) for (const p of recordedSourceDamage(db)) note(`snapshot ${s.short} ${p}`);

    const stored = await storedPacks(repo);
    const st: VerifyState = (state = { stored, needed: new Set(), badBlobs: new Map(), badPacks: new Map(), badLists: new Map(), checkedPacks: new Set(), bytesRead: 0, blobsChecked: 0, note });
    let packs: BlobIndex["packs"];
    if (opts.snapshot) {
      // One snapshot: its chunks' locations only, a window at a time (lists.ts).
      const s = selected[0]!;
      const files: (RepoFile & { label: string })[] = [];
      for (const db of (await loadSnapshot(repo, s.id)).databases)
        for (const f of db.files) {
          const label = `snapshot ${s.short} ${db.name}: file ${f.name}`;
          const bad = checkLists(f);
          if (bad) note(`${label}: ${bad}`);
          else files.push({ ...f, label });
        }
      // As restore reads it: copies in lost packs passed over (a later backup may have stored them again).
      const chunks = await SnapshotChunks.open(repo, files, (err) => note(err.message), undefined, missingFrom(stored));
      let index = new BlobIndex([]);
      for (const [n, units] of chunks.windows.entries()) {
        const w = await chunks.window(n, (file, list, err) => st.badLists.set(files[file]!.lists[list]!, err.message.slice(repo.location.length + 2)));
        index = w.index;
        const read = new Map(w.units.map((u) => [`${u.file}/${u.list}`, u.ids]));
        const lists = async function* (): AsyncIterable<ListUnit> {
          for (const u of units) {
            const f = files[u.file]!;
            const id = f.lists[u.list]!;
            yield { file: f.label, list: u.list, id, read: async () => read.get(`${u.file}/${u.list}`) ?? null };
          }
        };
        const { needed, unindexed } = await checkUse(repo, w.index, lists, st, ALL_IDS);
        if (opts.readData) await readPacks(repo, [...needed], async (p) => w.index.blobsIn(p), opts, st, `verifying snapshot ${s.short}`);
        if (broken(st, unindexed)) await nameBroken((pass) => pass(ALL_IDS), async () => w.index, lists, st);
      }
      // (No chunk at all: the index is still scanned, for its packs.)
      if (chunks.windows.length === 0) await index.loadAll(repo, (err) => note(err.message));
      packs = index.packs;
    } else {
      // The whole repository: every blob's location, or, with a large index, those of one part of
      // the id space at a time (each snapshot's lists read again in each pass).
      const parts = await IndexParts.of(repo, opts.passIndexBytes);
      const onDamaged = (err: RepositoryDamagedError) => note(err.message);
      const whole = parts.parts.length === 1 ? await parts.index(ALL_IDS, onDamaged) : null;
      const partIndex = async (part: IdPart) => whole ?? (await parts.index(part, onDamaged));
      // Where the lists are: in the whole index, or located apart (one scan) for every pass.
      let listsAt = whole;
      if (!listsAt) {
        listsAt = new BlobIndex([]);
        for (const s of selected) {
          // (One that cannot be read is reported by the passes.)
          const snapshot = await loadSnapshot(repo, s.id).catch(() => null);
          for (const db of snapshot?.databases ?? []) for (const f of db.files) if (!checkLists(f)) f.lists.forEach((id) => listsAt!.want(id));
        }
        await listsAt.loadAll(repo, onDamaged, parts.files);
      }
      const at = listsAt;
      const lists = async function* (): AsyncIterable<ListUnit> {
        for (const s of selected) {
          let snapshot;
          try {
            snapshot = await loadSnapshot(repo, s.id);
          } catch (err) {
            note(errText(err));
            continue;
          }
          for (const db of snapshot.databases)
            for (const f of db.files) {
              const label = `snapshot ${s.short} ${db.name}: file ${f.name}`;
              const bad = checkLists(f);
              if (bad) {
                note(`${label}: ${bad}`);
                continue;
              }
              for (const [i, id] of f.lists.entries()) {
                const loc = at.get(id);
                yield { file: label, list: i, id, read: async () => (loc ? readList(repo, loc, id, listLength(f.chunk_count, i), label) : null) };
              }
            }
        }
      };
      let unindexed = false;
      await parts.each(async (part) => {
        if ((await checkUse(repo, await partIndex(part), lists, st, part)).unindexed) unindexed = true;
      });
      packs = at.packs;
      if (opts.readData) {
        // Every indexed pack, every blob; with a large index, the blobs of a group of packs located at a time.
        const all = [...packs.keys()].filter((p) => stored.has(p));
        const groupOf = whole ? async () => whole : parts.groups(packs, all, onDamaged);
        await readPacks(repo, all, async (p) => (await groupOf(p)).blobsIn(p), opts, st, "verifying repository");
      }
      if (broken(st, unindexed)) await nameBroken((pass) => parts.each(pass), partIndex, lists, st);
    }
    const { needed, bytesRead, blobsChecked } = st;
    const unindexedPacks = [...stored.keys()].filter((p) => !packs.has(p)).length;
    return {
      ok: problems.length === 0,
      snapshots: selected.map((s) => s.id),
      packs: opts.readData ? (opts.snapshot ? needed.size : packs.size) : needed.size,
      blobs: blobsChecked,
      bytesRead,
      problems,
      unindexedPacks,
      unexpectedFiles: opts.snapshot ? [] : await repo.unexpectedFiles(),
    };
  } finally {
    state?.workers?.pool.close();
    state?.workers?.packHash.close();
    await lock.release();
  }
}

/** One list blob of a file: `read` gives its ids, or null when it is in no index file. */
interface ListUnit {
  /** "snapshot <short> <db>: file <name>" */
  file: string;
  list: number;
  id: string;
  read: () => Promise<Uint8Array | null>;
}

interface VerifyState {
  stored: Map<string, number>;
  /** Packs the selected snapshots use (without the missing or truncated ones). */
  needed: Set<string>;
  /** blob -> why it is bad */
  badBlobs: Map<string, string>;
  /** pack -> why its blobs are lost */
  badPacks: Map<string, string>;
  /** chunk list -> why it could not be read */
  badLists: Map<string, string>;
  /** Packs whose presence and size were checked. */
  checkedPacks: Set<string>;
  /** With --read-data, the workers every pass uses (closed by verifyRepository). */
  workers?: { pool: CodecPool; packHash: DigestWorker };
  bytesRead: number;
  blobsChecked: number;
  note: (p: string) => void;
}

/**
 * Checks the chunk lists `lists` gives (each list blob and the chunks it names) whose ids are in
 * `part`, located by `index`: every one indexed, its pack present with the recorded size. Returns
 * the packs they use (without the missing or truncated ones), and whether one is in no index file.
 */
async function checkUse(repo: Repository, index: BlobIndex, lists: () => AsyncIterable<ListUnit>, st: VerifyState, part: IdPart): Promise<{ needed: Set<string>; unindexed: boolean }> {
  const { stored, badPacks, badLists } = st;
  const needed = new Set<string>();
  let unindexed = false;
  const use = (pack: string | undefined) => {
    if (pack === undefined) unindexed = true;
    else needed.add(pack);
  };
  const seen = new IdSet(); // lists read in this pass: files that did not change share theirs
  for await (const u of lists()) {
    if (part.has(u.id)) use(index.get(u.id)?.pack);
    if (seen.has(u.id)) continue;
    seen.add(u.id);
    let ids: Uint8Array | null;
    try {
      ids = await u.read();
    } catch (err) {
      badLists.set(u.id, errText(err).slice(repo.location.length + 2));
      continue;
    }
    if (ids) for (let at = 0; at < ids.length; at += ID_BYTES) if (part.hasRaw(ids, at)) use(index.packOfRaw(ids, at));
  }
  for (const pack of needed) {
    if (st.checkedPacks.has(pack)) {
      if (badPacks.has(pack)) needed.delete(pack);
      continue;
    }
    st.checkedPacks.add(pack);
    const size = stored.get(pack);
    const want = index.packs.get(pack)!.size;
    const why = size === undefined ? `pack ${packKey(pack)} is missing` : size !== want ? `pack ${packKey(pack)} is ${size} bytes, the index recorded ${want} (truncated?)` : null;
    if (why) {
      badPacks.set(pack, why);
      needed.delete(pack);
    }
  }
  for (const p of needed) st.needed.add(p);
  return { needed, unindexed };
}

/** Whether anything checked so far breaks a file (then nameBroken says which). */
const broken = (st: VerifyState, unindexed: boolean) => st.badBlobs.size > 0 || st.badPacks.size > 0 || st.badLists.size > 0 || unindexed;

/**
 * Reads `packs` whole and opens their blobs (`blobsIn`: the blobs whose first location is that
 * pack). Three packs in flight (read, hashed, their blobs opened), each in a slab of shared memory
 * that the workers read in place: memory stays bounded whatever the repository's size.
 */
async function readPacks(
  repo: Repository,
  packs: string[],
  blobsIn: (pack: string) => Promise<Iterable<[string, BlobLocation]>>,
  opts: RepoVerifyOptions,
  st: VerifyState,
  label: string,
): Promise<void> {
  const { stored } = st;
  const { pool, packHash } = (st.workers ??= { pool: new CodecPool(), packHash: new DigestWorker() });
  const ring = new SlabRing(3, packs.reduce((m, p) => Math.max(m, stored.get(p) ?? 0), 0));
  const inflight = new Set<Promise<void>>();
  // Each pack's notes, passed on in the packs' order whichever finishes first (the same report every run).
  const pending: { notes: string[]; done: boolean }[] = [];
  const flush = () => {
    while (pending[0]?.done) for (const n of pending.shift()!.notes) st.note(n);
  };
  let failure: unknown = null;
  try {
    opts.progress?.start(
      packs.reduce((n, p) => n + (stored.get(p) ?? 0), 0),
      label,
    );
    for (const pack of packs) {
      if (failure) break;
      const blobs = await blobsIn(pack);
      const slab = await ring.take();
      const notes = { notes: [] as string[], done: false };
      pending.push(notes);
      const job: Promise<void> = checkPack(repo, pool, packHash, slab, pack, stored.get(pack) ?? 0, blobs, st.badBlobs, (n) => notes.notes.push(n))
        .then(
          (r) => {
            st.bytesRead += r.bytes;
            st.blobsChecked += r.blobs;
            opts.progress?.advance(r.bytes);
          },
          (err) => void (failure ??= err),
        )
        .finally(() => {
          ring.give(slab);
          inflight.delete(job);
          notes.done = true;
          flush();
        });
      inflight.add(job);
    }
    await Promise.all(inflight);
    if (failure) throw failure;
  } finally {
    await Promise.allSettled(inflight);
  }
}

/**
 * Notes, for each file of `lists` that a bad blob, pack or list breaks, its first bad chunk list or
 * chunk: in the passes `each` makes over parts of the id space (`indexOf`: a part's index), the
 * first found in each part, the earliest of them kept.
 */
async function nameBroken(each: (pass: (part: IdPart) => Promise<void>) => Promise<void>, indexOf: (part: IdPart) => Promise<BlobIndex>, lists: () => AsyncIterable<ListUnit>, st: VerifyState): Promise<void> {
  const { badBlobs, badPacks, badLists } = st;
  // file -> its place among the files, and its first problem: where (a list's own problem before its chunks), what.
  const found = new Map<string, { order: number; at: number; note: string }>();
  await each(async (part) => {
    const index = await indexOf(part);
    const problemOf = (c: string): string | undefined => {
      const loc = index.get(c);
      return loc ? (badBlobs.get(c) ?? badPacks.get(loc.pack)) : "in no index file (or only in a pack that is missing)";
    };
    const files = new Map<string, number>();
    const named = new Set<string>();
    for await (const u of lists()) {
      if (!files.has(u.file)) files.set(u.file, files.size);
      if (named.has(u.file)) continue;
      const listAt = u.list * (LIST_IDS + 1);
      const name = (at: number, note: string) => {
        named.add(u.file);
        const f = found.get(u.file);
        if (!f || at < f.at) found.set(u.file, { order: files.get(u.file)!, at, note });
      };
      if ((found.get(u.file)?.at ?? Infinity) < listAt) {
        named.add(u.file); // an earlier part found an earlier problem
        continue;
      }
      const why = part.has(u.id) ? (problemOf(u.id) ?? badLists.get(u.id)) : undefined;
      if (why !== undefined) {
        name(listAt, `${u.file}: chunk list ${u.list} (${u.id.slice(0, 12)}…): ${why}`);
        continue;
      }
      const ids = await u.read().catch(() => null);
      for (let i = 0; ids && i < ids.length / ID_BYTES; i++) {
        if (!part.hasRaw(ids, i * ID_BYTES)) continue;
        const c = idAt(ids, i);
        const bad = problemOf(c);
        if (bad === undefined) continue;
        name(listAt + 1 + i, `${u.file}: chunk ${u.list * LIST_IDS + i} (${c.slice(0, 12)}…): ${bad}`);
        break;
      }
    }
  });
  for (const f of [...found.values()].sort((a, b) => a.order - b.order)) st.note(f.note);
}

function errText(err: unknown): string {
  if (err instanceof DuckbakError) return err.message;
  throw err;
}

/** Sealed bytes of blobs checked by one worker job. */
const CHECK_BYTES = 2 << 20;
/** What checking one blob leaves to collect: its id and location as objects, its part of a job's message. */
const GARBAGE_PER_BLOB = 400;
// The engine's collector, paced by its own small heap, would let a pack of many small blobs pile
// that up: collected every 16 MiB of it instead.
const churn = new BufferChurn();
/** Most blobs checked by one worker job (tiny blobs would otherwise make one job of tens of thousands). */
const CHECK_BLOBS = 1024;

async function checkPack(
  repo: Repository,
  pool: CodecPool,
  packHash: DigestWorker,
  slab: Uint8Array,
  pack: string,
  size: number,
  blobs: Iterable<[string, BlobLocation]>,
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
  // A few jobs queued per pack: the groups of a pack of many small blobs are not all held at once.
  const queued = new Set<Promise<void>>();
  const check = async (group: [string, BlobLocation][]) => {
    churn.drop(group.length * GARBAGE_PER_BLOB);
    while (queued.size >= 2) await Promise.race(queued).catch(() => {});
    const job = pool
        .run({ op: "check-spans", keys, spans: group.map(([, l]): Span => [l.offset, l.length]), expectIds: group.map(([id]) => id), sizes: group.map(([, l]) => l.raw) }, bytes)
        .then((r) => {
          for (const [i, why] of r.failures!) badBlobs.set(group[i]![0], `pack ${key}: ${why}`);
        });
    const tracked = job.finally(() => queued.delete(tracked));
    tracked.catch(() => {}); // awaited through `jobs`
    queued.add(tracked);
    jobs.push(job);
  };
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
    if (groupBytes >= CHECK_BYTES || group.length >= CHECK_BLOBS) {
      await check(group);
      group = [];
      groupBytes = 0;
    }
  }
  if (group.length) await check(group);
  const settled = await Promise.allSettled([...jobs, hashed]);
  const failed = settled.find((r) => r.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  if ((await digest) !== pack) note(`${repo.location}: ${key}: content does not match its name (damaged)`);
  return { bytes: size, blobs: n };
}
