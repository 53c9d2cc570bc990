// The sum cache: what the last backup on this host read of each database file, chunk by chunk
// (offset, length, print, SHA-256), so that the next backup computes a chunk's SHA-256 only when
// the chunk changed. A print is two 64-bit hashes of the chunk (xxHash3 and wyhash) under seeds
// drawn at random for each cache: ~40x cheaper than SHA-256, and a chunk whose offset, length and
// 128-bit print all match is taken to be the one hashed last time (restic trusts a file's size
// and mtime for the same purpose). Kept in the user's private cache folder, never in the
// repository; a cache that is missing, damaged or not private costs only the hashing.
import { closeSync, fstatSync, mkdirSync, openSync, readSync, readdirSync, statSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { homedir } from "node:os";
import { cacheRoots, privateFolderUsable, type Platform } from "../../platform/native.ts";
import { AtomicFile, removeStaleTemporaries } from "../fsutil.ts";
import { pausePoint } from "../pause.ts";
import { SUM_BYTES } from "../crypto/seal.ts";
import { PRINT_BYTES, PRIOR_BYTES, type Seeds } from "./chunk-print.ts";

const MAGIC = new TextEncoder().encode("DUCKBAK-SUMS-v1\n");
const HEADER_BYTES = MAGIC.length + 16;
/** offset u64, length u32, print, SHA-256, check u64 (xxHash3 of the rest: a damaged record is not used). */
const RECORD_BYTES = 8 + 4 + PRINT_BYTES + SUM_BYTES + 8;
const CHECKED_BYTES = RECORD_BYTES - 8;
const CHECK_TWEAK = 0x5ca1ab1e5ca1ab1en;
const IO_RECORDS = 1024;

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

  /** For each of `ranges` (in file order, after the last call's): PRIOR_BYTES. */
  take(ranges: [number, number][]): Uint8Array {
    const prior = new Uint8Array(ranges.length * PRIOR_BYTES);
    ranges.forEach(([offset, length], k) => {
      const record = this.find(offset, length);
      if (!record) return;
      prior[k * PRIOR_BYTES] = 1;
      prior.set(record.subarray(12, 12 + PRINT_BYTES + SUM_BYTES), k * PRIOR_BYTES + 1);
    });
    return prior;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
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
  ) {
    const header = new Uint8Array(HEADER_BYTES);
    header.set(MAGIC);
    const v = new DataView(header.buffer);
    v.setBigUint64(MAGIC.length, seeds[0], true);
    v.setBigUint64(MAGIC.length + 8, seeds[1], true);
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
      record.set(prints.subarray(k * PRINT_BYTES, (k + 1) * PRINT_BYTES), 12);
      record.set(sums.subarray(k * SUM_BYTES, (k + 1) * SUM_BYTES), 12 + PRINT_BYTES);
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

export interface SumCache {
  seeds: Seeds;
  /** The last backup's records; null without a usable cache (or when asked to hash everything). */
  reader: SumCacheReader | null;
  writer: SumCacheWriter;
}

let folder: Promise<string | null> | undefined;

/** This user's private folder of sum caches, its stale temporaries removed; null when there is none. */
function cacheFolder(): Promise<string | null> {
  folder ??= (async () => {
    const platform = process.platform as Platform;
    let home = "";
    try {
      home = homedir();
    } catch {}
    for (const root of cacheRoots(platform, { env: process.env, home })) {
      const dir = join(root, "sums");
      try {
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        const st = statSync(dir);
        const mine = { isDirectory: st.isDirectory(), isSymbolicLink: false, uid: st.uid, mode: st.mode };
        if (!privateFolderUsable(platform, mine, process.getuid?.() ?? st.uid)) continue;
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

/** Caches not rewritten for this long are removed (databases no longer backed up from this host). */
const UNUSED_MS = 60 * 86400_000;

function forgetUnused(dir: string): void {
  const cutoff = Date.now() - UNUSED_MS;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    try {
      if (statSync(path).mtimeMs < cutoff) unlinkSync(path);
    } catch {}
  }
}

/**
 * The sum cache of `name` (a file of the database at `database`, its real path): the last
 * backup's records (unless `rehash`) and a writer for this one's; null when this user has no
 * usable cache folder.
 */
export async function openSumCache(database: string, name: string, rehash: boolean): Promise<SumCache | null> {
  const dir = await cacheFolder();
  if (!dir) return null;
  const path = join(dir, new Bun.CryptoHasher("sha256").update(`${database}\0${name}`).digest("hex").slice(0, 32));
  let reader: SumCacheReader | null = null;
  if (!rehash) reader = openReader(path);
  const seeds = reader?.seeds ?? randomSeeds();
  try {
    return { seeds, reader, writer: new SumCacheWriter(await AtomicFile.create(path, 0o600), seeds) };
  } catch {
    reader?.close();
    return null;
  }
}

function openReader(path: string): SumCacheReader | null {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return null;
  }
  try {
    const st = fstatSync(fd);
    const header = new Uint8Array(HEADER_BYTES);
    // Only a private file of ours is believed: one another user could write would decide what is backed up.
    const ours = process.platform === "win32" || (st.uid === process.getuid?.() && (st.mode & 0o077) === 0);
    if (ours && readSync(fd, header, 0, HEADER_BYTES, 0) === HEADER_BYTES && MAGIC.every((b, i) => header[i] === b)) {
      const v = new DataView(header.buffer);
      return new SumCacheReader(fd, [v.getBigUint64(MAGIC.length, true), v.getBigUint64(MAGIC.length + 8, true)]);
    }
  } catch {}
  closeSync(fd);
  return null;
}

function randomSeeds(): Seeds {
  const v = new BigUint64Array(2);
  crypto.getRandomValues(v);
  return [v[0]!, v[1]!];
}
