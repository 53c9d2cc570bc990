// Reading a DuckDB WAL (`<db>.wal`) that a writer may be appending to, far enough to cut it at the
// last complete commit. Format, as in DuckDB v1.4 and v1.5 (src/storage/write_ahead_log.cpp,
// wal_replay.cpp; see docs/HOT-COPY.md):
//   - a WAL_VERSION entry, NOT framed: a BinarySerializer object (u16 field id, LEB128 values,
//     u16 0xFFFF terminator) with 100 wal_type=98, 101 version, optional 102 db_identifier (list
//     of 16 LEB128 bytes) and 103 checkpoint_iteration;
//   - then framed entries `[u64 size][u64 checksum][payload]`, the payload an object whose first
//     field is 100 wal_type; a commit ends with a WAL_FLUSH entry (type 100), a checkpoint writes a
//     CHECKPOINT entry (type 99).
// Replay stops quietly at an entry that runs past the end of the file and fails the open on a
// full-length entry with a bad checksum; so a copy must end exactly after a verified WAL_FLUSH.
// A WAL can be large (a big transaction): it is read through a bounded window, never whole.
import type { FileHandle } from "node:fs/promises";
import { duckdbChecksum } from "../duckdb/blocks.ts";
import { readAt } from "../fsutil.ts";

export const WAL_TYPE = { VERSION: 98, CHECKPOINT: 99, FLUSH: 100 } as const;

const M = 0xc6a4a7935bd1e995n;
const MASK = (1n << 64n) - 1n;

/** ChecksumRemainder: a MurmurHash64A-style hash of the last 0-7 bytes (0 for none). */
function remainderHash(tail: Uint8Array): bigint {
  if (tail.length === 0) return 0n;
  let h = (0xe17a1465n ^ ((BigInt(tail.length) * M) & MASK)) & MASK;
  let word = 0n;
  for (let j = tail.length - 1; j >= 0; j--) word = (word << 8n) | BigInt(tail[j]!);
  h = ((h ^ word) * M) & MASK;
  h ^= h >> 47n;
  h = (h * M) & MASK;
  h ^= h >> 47n;
  return h;
}

/** DuckDB's Checksum(buffer, size) (common/checksum.cpp), any length: the block checksum of the words, then a remainder hash. */
export function walChecksum(buf: Uint8Array): bigint {
  const words = buf.length - (buf.length % 8);
  return duckdbChecksum(buf, 0, words) ^ remainderHash(buf.subarray(words));
}

/** Bytes read per piece: a WAL entry of any size is checked in pieces this big. */
const WINDOW = 1 << 20;

/** Reads a WAL forward through a window of about WINDOW bytes (a buffer is its own window). */
class Window {
  private buf: Uint8Array = new Uint8Array(0);
  private start = 0;
  constructor(
    private readonly source: Uint8Array | FileHandle,
    /** The bytes looked at: the length when reading began (a writer may append meanwhile). */
    readonly size: number,
  ) {}

  /** `length` (<= WINDOW) bytes at `offset`, fewer only past `size`; valid until the next call. */
  async at(offset: number, length: number): Promise<Uint8Array> {
    const end = Math.min(offset + length, this.size);
    if (this.source instanceof Uint8Array) return this.source.subarray(offset, end);
    if (offset < this.start || end > this.start + this.buf.length) {
      this.buf = await readAt(this.source, offset, Math.max(0, Math.min(this.size - offset, WINDOW)));
      this.start = offset;
    }
    return this.buf.subarray(offset - this.start, end - this.start);
  }
}

function leb128(buf: Uint8Array, at: number): { value: number; next: number } | null {
  let value = 0;
  let shift = 0;
  for (let i = at; i < buf.length && i < at + 10; i++) {
    value += (buf[i]! & 0x7f) * 2 ** shift;
    shift += 7;
    if ((buf[i]! & 0x80) === 0) return { value, next: i + 1 };
  }
  return null;
}

export interface WalVersion {
  /** 2: checksummed entries (the only kind read here); 1: none; 3: encrypted. */
  version: number;
  checkpointIteration: number | null;
  /** Bytes the version entry takes. */
  length: number;
}

/** Parses the unframed WAL_VERSION entry at the start; null when it is incomplete or not one. */
export function parseWalVersion(buf: Uint8Array): WalVersion | null {
  let at = 0;
  let type = -1;
  let version = -1;
  let checkpointIteration: number | null = null;
  for (;;) {
    if (at + 2 > buf.length) return null;
    const field = buf[at]! | (buf[at + 1]! << 8);
    at += 2;
    if (field === 0xffff) break;
    const v = leb128(buf, at);
    if (!v) return null;
    at = v.next;
    if (field === 100) type = v.value;
    else if (field === 101) version = v.value;
    else if (field === 102) {
      for (let i = 0; i < v.value; i++) {
        const b = leb128(buf, at);
        if (!b) return null;
        at = b.next;
      }
    } else if (field === 103) checkpointIteration = v.value;
    else return null;
  }
  return type === WAL_TYPE.VERSION && version >= 1 ? { version, checkpointIteration, length: at } : null;
}

export interface WalCut {
  version: WalVersion;
  /** Bytes up to the end of the last verified WAL_FLUSH (0 when no commit is complete). */
  keep: number;
  /** Whether a CHECKPOINT entry was seen (in the kept part or after it): a checkpoint is under way or ending. */
  checkpoint: boolean;
  /** Why reading stopped before the end of the bytes, if it did (a torn tail is normal). */
  stopped: "end" | "torn-tail" | "bad-checksum" | "bad-entry";
  commits: number;
}

/**
 * Finds where to cut a WAL read while a writer appends: after the last WAL_FLUSH whose entries all
 * verify. Reads a file (up to its length when called) or a buffer, in bounded pieces. Throws for
 * WALs this cannot judge (no checksums, encrypted, not a WAL).
 */
export async function cutWal(source: Uint8Array | FileHandle): Promise<WalCut> {
  const w = new Window(source, source instanceof Uint8Array ? source.length : (await source.stat()).size);
  const version = parseWalVersion(await w.at(0, 4096));
  if (!version) throw new Error("the WAL does not start with a complete version entry");
  if (version.version !== 2) throw new Error(`WAL version ${version.version} (${version.version === 3 ? "encrypted" : "without checksums"}) cannot be cut safely`);
  let at = version.length;
  let keep = 0;
  let commits = 0;
  let checkpoint = false;
  let stopped: WalCut["stopped"] = "end";
  while (at < w.size) {
    if (at + 16 > w.size) {
      stopped = "torn-tail";
      break;
    }
    const head = await w.at(at, 16);
    const view = new DataView(head.buffer, head.byteOffset, 16);
    const size = view.getBigUint64(0, true);
    const sum = view.getBigUint64(8, true);
    if (size > BigInt(w.size - at - 16)) {
      stopped = "torn-tail";
      break;
    }
    const start = at + 16;
    const length = Number(size);
    // The payload's first field is 100 (wal_type), its value a LEB128.
    const first = (await w.at(start, Math.min(length, 12))).slice();
    let words = 5381n;
    const whole = length - (length % 8);
    for (let off = 0; off < whole; off += WINDOW) words ^= duckdbChecksum(await w.at(start + off, Math.min(WINDOW, whole - off))) ^ 5381n;
    if ((words ^ remainderHash(await w.at(start + whole, length - whole))) !== sum) {
      stopped = "bad-checksum";
      break;
    }
    if (first.length < 3 || first[0] !== 100 || first[1] !== 0) {
      stopped = "bad-entry";
      break;
    }
    const type = leb128(first, 2)?.value;
    at = start + length;
    if (type === WAL_TYPE.CHECKPOINT) checkpoint = true;
    if (type === WAL_TYPE.FLUSH) {
      keep = at;
      commits++;
    }
  }
  return { version, keep, checkpoint, stopped, commits };
}
