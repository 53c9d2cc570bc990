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

export const WAL_TYPE = { VERSION: 98, CHECKPOINT: 99, FLUSH: 100 } as const;

const MUL = 0xbf58476d1ce4e5b9n;
const M = 0xc6a4a7935bd1e995n;
const MASK = (1n << 64n) - 1n;

/** DuckDB's Checksum(buffer, size) (common/checksum.cpp), any length: words, then a remainder hash. */
export function walChecksum(buf: Uint8Array): bigint {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const words = Math.floor(buf.length / 8);
  let result = 5381n;
  for (let i = 0; i < words; i++) result ^= (view.getBigUint64(i * 8, true) * MUL) & MASK;
  const rest = buf.length - words * 8;
  if (rest > 0) {
    // ChecksumRemainder: MurmurHash64A-style over the last 0-7 bytes (the only words it sees).
    let h = (0xe17a1465n ^ ((BigInt(rest) * M) & MASK)) & MASK;
    let tail = 0n;
    for (let j = rest - 1; j >= 0; j--) tail = (tail << 8n) | BigInt(buf[words * 8 + j]!);
    h = ((h ^ tail) * M) & MASK;
    h ^= h >> 47n;
    h = (h * M) & MASK;
    h ^= h >> 47n;
    result ^= h;
  }
  return result;
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
 * verify. Throws for WALs this cannot judge (no checksums, encrypted, not a WAL).
 */
export function cutWal(buf: Uint8Array): WalCut {
  const version = parseWalVersion(buf);
  if (!version) throw new Error("the WAL does not start with a complete version entry");
  if (version.version !== 2) throw new Error(`WAL version ${version.version} (${version.version === 3 ? "encrypted" : "without checksums"}) cannot be cut safely`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let at = version.length;
  let keep = 0;
  let commits = 0;
  let checkpoint = false;
  let stopped: WalCut["stopped"] = "end";
  while (at < buf.length) {
    if (at + 16 > buf.length) {
      stopped = "torn-tail";
      break;
    }
    const size = view.getBigUint64(at, true);
    const sum = view.getBigUint64(at + 8, true);
    if (size > BigInt(buf.length - at - 16)) {
      stopped = "torn-tail";
      break;
    }
    const payload = buf.subarray(at + 16, at + 16 + Number(size));
    if (walChecksum(payload) !== sum) {
      stopped = "bad-checksum";
      break;
    }
    // The payload's first field is 100 (wal_type).
    if (payload.length < 3 || payload[0] !== 100 || payload[1] !== 0) {
      stopped = "bad-entry";
      break;
    }
    const type = leb128(payload, 2)?.value;
    at += 16 + Number(size);
    if (type === WAL_TYPE.CHECKPOINT) checkpoint = true;
    if (type === WAL_TYPE.FLUSH) {
      keep = at;
      commits++;
    }
  }
  return { version, keep, checkpoint, stopped, commits };
}
