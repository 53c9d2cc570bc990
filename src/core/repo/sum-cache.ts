// The sum cache: what the last backup by this user read of each database file, chunk by chunk
// (offset, length, print, SHA-256), so that the next backup computes a chunk's SHA-256 only when
// the chunk changed. A print is two 64-bit hashes of the chunk (xxHash3 and xxHash64) under seeds
// drawn at random for each cache and redrawn weekly: ~10x cheaper than SHA-256. A chunk whose
// offset, length and print all match is taken to be the one hashed last time; these hashes are
// not cryptographic (README, "Only changed blocks are hashed", says what that means). Kept in the
// user's private cache folder, never in the repository; a cache that is missing, damaged, not
// private or unreadable costs only the hashing, and never fails a backup.
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readSync, readdirSync, statSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { privateFolderUsable, privateToUser, userCacheRoots, type Platform } from "../../platform/native.ts";
import { AtomicFile, removeStaleTemporaries } from "../fsutil.ts";
import { pausePoint } from "../pause.ts";
import { SUM_BYTES } from "../crypto/seal.ts";
import { PRINT_BYTES, PRIOR_BYTES, type Seeds } from "./chunk-print.ts";

/** The version names the print's hashes and the record layout: change it when either changes. */
const MAGIC = new TextEncoder().encode("DUCKBAK-SUMS-v2\n");
/** MAGIC, the two seeds, and when they were drawn (ms since the epoch). */
const HEADER_BYTES = MAGIC.length + 24;
/** offset u64, length u32, print, SHA-256, check u64 (xxHash3 of the rest: a damaged record is not used). */
const RECORD_BYTES = 8 + 4 + PRINT_BYTES + SUM_BYTES + 8;
/** Where a record's print starts (its SHA-256 follows). */
const PRINT_AT = 12;
const CHECKED_BYTES = RECORD_BYTES - 8;
const CHECK_TWEAK = 0x5ca1ab1e5ca1ab1en;
const IO_RECORDS = 1024;
/** Seeds older than this are redrawn (every chunk hashed once more): a wrong record cannot outlive them. */
const RESEED_MS = 7 * 86400_000;
/** Caches not rewritten for this long are removed (databases no longer backed up by this user). */
const UNUSED_MS = 60 * 86400_000;
const CACHE_NAME = /^[0-9a-f]{32}$/;

function recordCheck(record: Uint8Array, seeds: Seeds): bigint {
  return Bun.hash.xxHash3(record.subarray(0, CHECKED_BYTES), seeds[0] ^ CHECK_TWEAK);
}

/** Reads a cache's records in file order, handing out those of the chunks asked for. */
class SumCacheReader {
  private readonly buf = new Uint8Array(IO_RECORDS * RECORD_BYTES);
  private held = 0;
  private at = 0;
  private position = HEADER_BYTES;
  constructor(
    private fd: number | null,
    readonly seeds: Seeds,
  ) {}

  /** The cached record of the chunk at `offset`, when there is a sound one; skips the records before it. */
  private find(offset: number, length: number): Uint8Array | null {
    for (;;) {
      if (this.at === this.held && !this.fill()) return null;
      const record = this.buf.subarray(this.at, this.at + RECORD_BYTES);
      const v = new DataView(record.buffer, record.byteOffset, RECORD_BYTES);
      // A damaged record is passed over (its offset cannot be believed either).
      const sound = v.getBigUint64(CHECKED_BYTES, true) === recordCheck(record, this.seeds);
      const at = Number(v.getBigUint64(0, true));
      if (sound && at > offset) return null;
      this.at += RECORD_BYTES;
      if (sound && at === offset) return v.getUint32(8, true) === length ? record : null;
    }
  }

  private fill(): boolean {
    if (this.fd === null) return false;
    const n = readSync(this.fd, this.buf, 0, this.buf.length, this.position);
    this.held = n - (n % RECORD_BYTES);
    this.position += this.held;
    this.at = 0;
    if (this.held === 0) this.close();
    return this.held > 0;
  }

  /** For each of `ranges` (in file order, after the last call's): PRIOR_BYTES. A read error ends the reading: unknown from there. */
  take(ranges: [number, number][]): Uint8Array {
    const prior = new Uint8Array(ranges.length * PRIOR_BYTES);
    try {
      ranges.forEach(([offset, length], k) => {
        const record = this.find(offset, length);
        if (!record) return;
        prior[k * PRIOR_BYTES] = 1;
        prior.set(record.subarray(PRINT_AT, PRINT_AT + PRINT_BYTES + SUM_BYTES), k * PRIOR_BYTES + 1);
      });
      return prior;
    } catch {
      this.close();
      return new Uint8Array(ranges.length * PRIOR_BYTES);
    }
  }

  close(): void {
    const fd = this.fd;
    this.fd = null;
    this.held = this.at = 0;
    try {
      if (fd !== null) closeSync(fd);
    } catch {}
  }
}

/** Writes a file's new cache (temp, then renamed over the old one once the file was read whole). */
class SumCacheWriter {
  private readonly buf = new Uint8Array(IO_RECORDS * RECORD_BYTES);
  private held = 0;
  private written: Promise<void> = Promise.resolve();
  constructor(
    private readonly file: AtomicFile,
    private readonly seeds: Seeds,
    drawnAt: number,
  ) {
    const header = new Uint8Array(HEADER_BYTES);
    header.set(MAGIC);
    const v = new DataView(header.buffer);
    v.setBigUint64(MAGIC.length, seeds[0], true);
    v.setBigUint64(MAGIC.length + 8, seeds[1], true);
    v.setBigUint64(MAGIC.length + 16, BigInt(drawnAt), true);
    this.queue(header);
  }

  private queue(bytes: Uint8Array): void {
    const file = this.file;
    this.written = this.written.then(() => file.write(bytes));
    this.written.catch(() => {}); // a failed write surfaces in commit()
  }

  /** The next chunks in file order: their ranges, prints (PRINT_BYTES each) and SHA-256s (SUM_BYTES each). */
  add(ranges: [number, number][], prints: Uint8Array, sums: Uint8Array): void {
    ranges.forEach(([offset, length], k) => {
      const record = this.buf.subarray(this.held, this.held + RECORD_BYTES);
      const v = new DataView(record.buffer, record.byteOffset, RECORD_BYTES);
      v.setBigUint64(0, BigInt(offset), true);
      v.setUint32(8, length, true);
      record.set(prints.subarray(k * PRINT_BYTES, (k + 1) * PRINT_BYTES), PRINT_AT);
      record.set(sums.subarray(k * SUM_BYTES, (k + 1) * SUM_BYTES), PRINT_AT + PRINT_BYTES);
      v.setBigUint64(CHECKED_BYTES, recordCheck(record, this.seeds), true);
      this.held += RECORD_BYTES;
      if (this.held === this.buf.length) this.flushBuffer();
    });
  }

  private flushBuffer(): void {
    if (this.held > 0) this.queue(this.buf.slice(0, this.held));
    this.held = 0;
  }

  async commit(): Promise<void> {
    this.flushBuffer();
    try {
      await this.written;
    } catch (err) {
      await this.file.abort();
      throw err;
    }
    await pausePoint("sums:written");
    await this.file.commit();
    // From here the cache may be ahead of the repository (a kill before the snapshot is written):
    // harmless, the ids it gives are still looked up and missing chunks stored.
    await pausePoint("sums:renamed");
  }

  async abort(): Promise<void> {
    await this.written.catch(() => {});
    await this.file.abort();
  }
}

/**
 * One file's sum cache during a backup: the last backup's records handed out as its chunks come
 * (unless asked to hash everything), and this backup's written to a temporary, renamed over the
 * old cache once the whole file is read. Nothing here throws.
 */
export class SumCache {
  private constructor(
    readonly seeds: Seeds,
    private reader: SumCacheReader | null,
    private readonly writer: SumCacheWriter | null,
  ) {}

  /**
   * The cache of `name` (a file of the database at `database`, its real path); null when this
   * user has no usable cache folder.
   */
  static async open(database: string, name: string, rehash: boolean): Promise<SumCache | null> {
    const dir = await cacheFolder();
    if (!dir) return null;
    const path = join(dir, new Bun.CryptoHasher("sha256").update(`${database}\0${name}`).digest("hex").slice(0, 32));
    const found = rehash ? null : openReader(path);
    const [seeds, drawnAt] = found ? [found.seeds, found.drawnAt] : [randomSeeds(), Date.now()];
    let writer: SumCacheWriter | null = null;
    try {
      writer = new SumCacheWriter(await AtomicFile.create(path, 0o600), seeds, drawnAt);
    } catch {
      // a read-only cache folder: the old records still serve
    }
    return new SumCache(seeds, found?.reader ?? null, writer);
  }

  /** The cached records of the next chunks, `ranges` in file order (PRIOR_BYTES each). */
  prior(ranges: [number, number][]): Uint8Array | undefined {
    return this.reader?.take(ranges);
  }

  /** The next chunks as this backup read them: prints (PRINT_BYTES each) and SHA-256s (SUM_BYTES each). */
  record(ranges: [number, number][], prints: Uint8Array, sums: Uint8Array): void {
    this.writer?.add(ranges, prints, sums);
  }

  /** The file was read whole: this backup's records replace the old ones (left as they were when they cannot be written). */
  async finish(): Promise<void> {
    this.closeReader(); // before the rename: Windows does not replace an open file
    await this.writer?.commit().catch(() => {});
  }

  async abort(): Promise<void> {
    this.closeReader();
    await this.writer?.abort().catch(() => {});
  }

  private closeReader(): void {
    this.reader?.close();
    this.reader = null;
  }
}

let folder: Promise<string | null> | undefined;

/** This user's private folder of sum caches, its stale temporaries and unused caches removed; null when there is none. */
function cacheFolder(): Promise<string | null> {
  folder ??= (async () => {
    const platform = process.platform as Platform;
    const uid = process.getuid?.();
    for (const root of userCacheRoots()) {
      const dir = join(root, "sums");
      try {
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        // Ours, private, and not a link, in a folder only we can change: files are removed in it.
        const parent = statSync(root);
        if (platform !== "win32" && (parent.uid !== uid || (parent.mode & 0o022) !== 0)) continue;
        const st = lstatSync(dir);
        const mine = { isDirectory: st.isDirectory(), isSymbolicLink: st.isSymbolicLink(), uid: st.uid, mode: st.mode };
        if (!privateFolderUsable(platform, mine, uid ?? st.uid)) continue;
        await removeStaleTemporaries(dir);
        forgetUnused(dir);
        return dir;
      } catch {
        // an unwritable home: the next root, or no cache
      }
    }
    return null;
  })();
  return folder;
}

function forgetUnused(dir: string): void {
  const cutoff = Date.now() - UNUSED_MS;
  for (const name of readdirSync(dir)) {
    if (!CACHE_NAME.test(name)) continue;
    const path = join(dir, name);
    try {
      const st = lstatSync(path);
      if (st.isFile() && st.mtimeMs < cutoff) unlinkSync(path);
    } catch {}
  }
}

/** A cache's reader, when the file is a sound cache of ours with seeds young enough. */
function openReader(path: string): { reader: SumCacheReader; seeds: Seeds; drawnAt: number } | null {
  let fd: number;
  try {
    // Not following a link, nor waiting on a FIFO put there.
    fd = openSync(path, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0));
  } catch {
    return null;
  }
  try {
    const st = fstatSync(fd);
    const header = new Uint8Array(HEADER_BYTES);
    // Only a private file of ours is believed: one another user could write would decide what is backed up.
    const ours = privateToUser(process.platform as Platform, st, process.getuid?.() ?? -1);
    if (st.isFile() && ours && readSync(fd, header, 0, HEADER_BYTES, 0) === HEADER_BYTES && MAGIC.every((b, i) => header[i] === b)) {
      const v = new DataView(header.buffer);
      const seeds: Seeds = [v.getBigUint64(MAGIC.length, true), v.getBigUint64(MAGIC.length + 8, true)];
      const drawnAt = Number(v.getBigUint64(MAGIC.length + 16, true));
      const age = Date.now() - drawnAt;
      if (age >= 0 && age < RESEED_MS) return { reader: new SumCacheReader(fd, seeds), seeds, drawnAt };
    }
  } catch {}
  try {
    closeSync(fd);
  } catch {}
  return null;
}

function randomSeeds(): Seeds {
  const v = new BigUint64Array(2);
  crypto.getRandomValues(v);
  return [v[0]!, v[1]!];
}
