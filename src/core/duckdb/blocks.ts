import { open } from "node:fs/promises";
import { closeSync, openSync, readSync } from "node:fs";
import {
  BLOCKS_START,
  type DuckDBFileHeader,
  type MetaBlockPointer,
  parseDuckDBHeader,
  toMetaBlockPointer,
} from "./header.ts";

// DuckDB's checksum takes a 64-bit multiply per word, which JavaScript can only do in 16-bit
// pieces; this WebAssembly function does it natively (~5x less CPU, copy included). It exports its
// memory `mem` and `sum(len)`: h = 5381; for each u64 word w of mem[0, len): h ^= w * 0xbf58476d1ce4e5b9.
// Built from that one loop, byte by byte (module header, type, function, memory, export and
// code sections; the code is locals (i32 i, i64 h), then the loop).
const CHECKSUM_WASM = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 6, 1, 96, 1, 127, 1, 126, 3, 2, 1, 0, 5, 3, 1, 0, 8, 7, 13, 2, 3, 109, 101, 109, 2, 0, 3, 115, 117, 109, 0, 0, 10, 59, 1, 57, 2, 1, 127, 1, 126, 66, 133, 42, 33, 2, 2, 64, 3, 64, 32, 1, 32, 0, 79, 13, 1, 32, 2, 32, 1, 41, 3, 0, 66, 185, 203, 147, 231, 209, 237, 145, 172, 191, 127, 126, 133, 33, 2, 32, 1, 65, 8, 106, 33, 1, 12, 0, 11, 11, 32, 2, 11
]);

let checksumModule: { mem: WebAssembly.Memory; sum: (length: number) => bigint } | null = null;

function wasmChecksum(): NonNullable<typeof checksumModule> {
  if (!checksumModule) {
    const { exports } = new WebAssembly.Instance(new WebAssembly.Module(CHECKSUM_WASM));
    checksumModule = { mem: exports.mem as WebAssembly.Memory, sum: exports.sum as (length: number) => bigint };
  }
  return checksumModule;
}

let sumHi = 0;
let sumLo = 0;

// Sets sumHi/sumLo rather than returning a pair so the per-block hot path allocates little.
function checksumParts(buf: Uint8Array, offset: number, length: number): void {
  if (length % 8 !== 0) throw new RangeError(`checksum length must be a multiple of 8, got ${length}`);
  const { mem, sum } = wasmChecksum();
  if (mem.buffer.byteLength < length) mem.grow(Math.ceil((length - mem.buffer.byteLength) / 65536));
  new Uint8Array(mem.buffer, 0, length).set(buf.subarray(offset, offset + length));
  const h = sum(length);
  sumLo = Number(BigInt.asUintN(32, h));
  sumHi = Number(BigInt.asUintN(32, h >> 32n));
}

/**
 * DuckDB's block checksum: 5381 XOR, over every little-endian u64 word w of the range,
 * of w × 0xbf58476d1ce4e5b9 mod 2^64. The length must be a multiple of 8 (DuckDB's blocks and headers are).
 */
export function duckdbChecksum(buf: Uint8Array, offset = 0, length = buf.length - offset): bigint {
  checksumParts(buf, offset, length);
  return (BigInt(sumHi) << 32n) | BigInt(sumLo);
}

function u32(buf: Uint8Array, at: number): number {
  return (buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16) | (buf[at + 3] << 24)) >>> 0;
}

/** Whether the block of `size` bytes at buf[offset] matches the checksum in its first 8 bytes. */
export function blockValid(buf: Uint8Array, offset: number, size: number): boolean {
  checksumParts(buf, offset + 8, size - 8);
  return u32(buf, offset) === sumLo && u32(buf, offset + 4) === sumHi;
}

export interface BlockRef {
  index: number;
  offset: number;
}

export interface BadHeader {
  name: "main" | "database1" | "database2";
  offset: number;
}

export interface BlockScanResult {
  header: DuckDBFileHeader;
  /** Complete blocks whose checksum was computed: 0 when the file is encrypted or no database header is valid. */
  blocksChecked: number;
  /** Blocks DuckDB may read (or that cannot be shown free) whose checksum is wrong: corruption. */
  badBlocks: BlockRef[];
  /** Blocks with a wrong checksum that DuckDB never reads (free list, or past block_count): harmless. */
  freeBadBlocks: BlockRef[];
  /** Blocks below block_count that are absent from the file and not free: the file was cut short. */
  missingBlocks: number;
  badHeaders: BadHeader[];
  /** Bytes after the last complete block. */
  trailingBytes: number;
  /** Whether the free list was read; when not, every failing or absent block below block_count counts as bad. */
  freeListResolved: boolean;
}

/**
 * Checksums already computed elsewhere (a codec worker) for every whole block of `size` bytes
 * that starts in a chunk at BLOCKS_START + k × size of the file: the offsets, within the chunk,
 * of those that failed.
 */
export interface CheckedBlocks {
  size: number;
  bad: ReadonlySet<number>;
}

export interface BlockScanner {
  /** Feeds the next bytes of the file; the chunk is not kept after the call returns. */
  push(chunk: Uint8Array, checked?: CheckedBlocks): void;
  /** Throws NotADuckDBFileError when fewer than 12288 bytes were pushed. */
  finish(): BlockScanResult;
}

type ReadAt = (offset: number, length: number) => Uint8Array;

export interface BlockScannerOptions {
  /** Random access to bytes already pushed, to follow a free-list chain that points backwards. */
  readAt?: ReadAt;
}

/*
 * Which blocks must validate. On DuckDB 1.5.6 files (big tables, deletes, updates, dropped tables, an index,
 * rolled-back bulk inserts, several checkpoints, aborted checkpoints, processes killed mid-write, 16 KiB
 * blocks) every complete block in the file validated, free ones included: a freed block keeps the bytes of
 * its last write, and writes past block_count are whole blocks too. DuckDB only reads blocks in use, though,
 * so a healthy file may still hold a bad free block: hole-punched free blocks (the trim_free_blocks option)
 * read as zeros, and a power cut mid-checkpoint can tear or zero blocks written to the free list. The file
 * may also end before block_count: DuckDB truncates trailing free blocks after writing the header. So a bad
 * or absent block is an error only if it is below block_count and not in the active header's free list,
 * which the scanner reads from the metadata sub-blocks as they stream past.
 */
export function createBlockScanner(options: BlockScannerOptions = {}): BlockScanner {
  const head = new Uint8Array(BLOCKS_START);
  let received = 0;
  let header: DuckDBFileHeader | null = null;
  let blockSize = 0; // 0: blocks are not checked
  let carry = new Uint8Array(0);
  let carryLength = 0;
  let nextBlock = 0;
  const failed = new Set<number>();
  const freeList = freeListReader();

  function start(parsed: DuckDBFileHeader): void {
    header = parsed;
    if (!parsed.active) return;
    blockSize = parsed.active.blockAllocSize;
    carry = new Uint8Array(blockSize);
    freeList.start(parsed.active.freeList, blockSize, parsed.active.blockCount);
  }

  function checkBlock(buf: Uint8Array, offset: number, checked?: CheckedBlocks): void {
    const index = nextBlock++;
    const valid = checked?.size === blockSize ? !checked.bad.has(offset) : blockValid(buf, offset, blockSize);
    if (!valid) failed.add(index);
    freeList.advance(index, failed, buf, offset, options.readAt);
  }

  return {
    push(chunk, checked) {
      let at = 0;
      if (received < BLOCKS_START) {
        at = Math.min(chunk.length, BLOCKS_START - received);
        head.set(chunk.subarray(0, at), received);
        if (received + at === BLOCKS_START) start(parseDuckDBHeader(head));
      }
      received += chunk.length;
      if (!blockSize) return;
      if (carryLength > 0) {
        const take = Math.min(blockSize - carryLength, chunk.length - at);
        carry.set(chunk.subarray(at, at + take), carryLength);
        carryLength += take;
        at += take;
        if (carryLength < blockSize) return;
        checkBlock(carry, 0);
        carryLength = 0;
      }
      for (; chunk.length - at >= blockSize; at += blockSize) checkBlock(chunk, at, checked);
      carry.set(chunk.subarray(at), 0);
      carryLength = chunk.length - at;
    },

    finish() {
      const parsed = header ?? parseDuckDBHeader(head.subarray(0, received));
      const badHeaders: BadHeader[] = [];
      if (!parsed.mainChecksumValid) badHeaders.push({ name: "main", offset: 0 });
      parsed.headers?.forEach((h, i) => {
        if (!h.checksumValid) badHeaders.push({ name: i === 0 ? "database1" : "database2", offset: h.offset });
      });
      const free = freeList.finish();
      const blockCount = parsed.active?.blockCount ?? 0;
      const usable = (index: number) => index >= blockCount || (free?.has(index) ?? false);
      const ref = (index: number) => ({ index, offset: BLOCKS_START + index * blockSize });
      let missingBlocks = 0;
      for (let index = nextBlock; index < blockCount; index++) if (!usable(index)) missingBlocks++;
      return {
        header: parsed,
        blocksChecked: nextBlock,
        badBlocks: [...failed].filter((i) => !usable(i)).map(ref),
        freeBadBlocks: [...failed].filter(usable).map(ref),
        missingBlocks,
        badHeaders,
        trailingBytes: carryLength,
        freeListResolved: free !== null,
      };
    },
  };
}

/**
 * Follows the free-list chain of metadata sub-blocks: each block holds 64 sub-blocks of
 * floor((blockSize - 8) / 64) rounded down to 8 bytes, each starting with the u64 pointer to the next.
 * The list's data starts with a u64 count and then one u64 block id per free block.
 */
function freeListReader() {
  let want: MetaBlockPointer | null = null;
  let subBlockSize = 0;
  let blockSize = 0;
  let blockCount = 0;
  let data: Uint8Array = new Uint8Array(0);
  let filled = 0;
  let needed = 8;
  let result: Set<number> | null = null;

  function fail(): void {
    want = null;
    result = null;
  }

  function follow(p: MetaBlockPointer | null): void {
    want = p;
    if (!p || p.subBlock >= 64 || p.block >= blockCount) fail();
  }

  function consume(buf: Uint8Array, at: number): void {
    const payload = buf.subarray(at + 8, at + subBlockSize);
    if (data.length < filled + payload.length) data = grow(data, filled + payload.length);
    data.set(payload, filled);
    filled += payload.length;
    const view = new DataView(data.buffer, 0, filled);
    if (needed === 8 && filled >= 8) {
      const count = view.getBigUint64(0, true);
      // Free blocks are distinct ids below block_count; a bigger count is garbage (and could loop a bad chain).
      if (count > BigInt(blockCount)) return fail();
      needed = 8 + 8 * Number(count);
    }
    if (filled < needed) {
      // A chain that ends before the list does is corrupt.
      follow(toMetaBlockPointer(new DataView(buf.buffer, buf.byteOffset + at, 8).getBigUint64(0, true)));
      return;
    }
    result = new Set();
    for (let i = 8; i < needed; i += 8) result.add(Number(view.getBigInt64(i, true)));
    want = null;
  }

  return {
    start(first: MetaBlockPointer | null, size: number, count: number) {
      blockSize = size;
      blockCount = count;
      subBlockSize = Math.floor((size - 8) / 64 / 8) * 8;
      if (first === null) result = new Set();
      else follow(first);
    },

    /** Called once block `index` (at buf[offset]) has been checked. */
    advance(index: number, failed: Set<number>, buf: Uint8Array, offset: number, readAt?: ReadAt) {
      while (want && want.block <= index) {
        if (failed.has(want.block)) return fail();
        const within = 8 + want.subBlock * subBlockSize;
        if (want.block === index) {
          consume(buf, offset + within);
          continue;
        }
        const bytes = readAt?.(BLOCKS_START + want.block * blockSize + within, subBlockSize);
        if (!bytes || bytes.length < subBlockSize) return fail();
        consume(bytes, 0);
      }
    },

    /** The free block ids, or null when the chain could not be read (or never started). */
    finish(): Set<number> | null {
      return want ? null : result;
    },
  };
}

function grow(data: Uint8Array, size: number): Uint8Array {
  const bigger = new Uint8Array(Math.max(size, data.length * 2));
  bigger.set(data);
  return bigger;
}

/** Scans an in-memory DuckDB file. */
export function scanDuckDBBytes(bytes: Uint8Array): BlockScanResult {
  const scanner = createBlockScanner({ readAt: (offset, length) => bytes.subarray(offset, offset + length) });
  scanner.push(bytes);
  return scanner.finish();
}

export interface ScanFileOptions {
  /** Bytes read at a time (default 8 MiB); memory use stays near this whatever the file size. */
  chunkSize?: number;
}

/** Streams a DuckDB file through createBlockScanner, reading it once front to back. */
export async function scanDuckDBBlocks(path: string, opts: ScanFileOptions = {}): Promise<BlockScanResult> {
  const file = await open(path, "r");
  try {
    const scanner = createBlockScanner({
      readAt(offset, length) {
        const bytes = new Uint8Array(length);
        return bytes.subarray(0, readSync(file.fd, bytes, 0, length, offset));
      },
    });
    const chunk = new Uint8Array(opts.chunkSize ?? 8 * 1024 * 1024);
    for (let position = 0; ; ) {
      const { bytesRead } = await file.read(chunk, 0, chunk.length, position);
      if (bytesRead === 0) break;
      scanner.push(chunk.subarray(0, bytesRead));
      position += bytesRead;
    }
    return scanner.finish();
  } finally {
    await file.close();
  }
}

/** What is wrong with a main file's headers and blocks, one line each; empty when DuckDB's checksums hold. */
export function blockDamage(b: BlockScanResult): string[] {
  const problems = b.badHeaders.map((h) => `${h.name} header at offset ${h.offset} fails its checksum`);
  if (b.badBlocks.length) {
    const offsets = b.badBlocks.slice(0, 5).map((x) => x.offset).join(", ") + (b.badBlocks.length > 5 ? ", …" : "");
    problems.push(`${b.badBlocks.length} block(s) fail DuckDB's checksum at offset ${offsets}`);
  }
  if (b.missingBlocks) problems.push(`${b.missingBlocks} block(s) in use are missing (file cut short)`);
  return problems;
}

export type BlockCheck =
  | { state: "ok"; blocksChecked: number }
  | { state: "damaged"; problems: string[] }
  /** Nothing to check against: an encrypted file, or a layout this duckbak does not know. */
  | { state: "skipped"; reason: string };

export interface StreamingBlockCheck {
  /** The next bytes of the main file, in order; the chunk is not kept. */
  push(chunk: Uint8Array, checked?: CheckedBlocks): void;
  finish(): BlockCheck;
}

/**
 * Checks DuckDB's block checksums of a database's main file while its bytes stream past on their
 * way into a backup (archive or repository), so damage in the SOURCE is found when it is copied,
 * not at a later verify. A free list that points backwards is followed by reading `path` with fs:
 * use it only in a process that holds no DuckDB lock on the file (the snapshot holder does).
 */
export function createStreamingBlockCheck(path: string, knownStorageVersion: (v: number) => boolean): StreamingBlockCheck {
  let fd: number | null = null;
  const scanner = createBlockScanner({
    readAt(offset, length) {
      fd ??= openSync(path, "r");
      const bytes = new Uint8Array(length);
      return bytes.subarray(0, readSync(fd, bytes, 0, length, offset));
    },
  });
  let failure: string | null = null;
  return {
    push(chunk, checked) {
      if (failure) return;
      try {
        scanner.push(chunk, checked);
      } catch (err) {
        failure = (err as Error).message;
      }
    },
    finish() {
      try {
        if (failure) return { state: "damaged", problems: [failure] };
        const result = scanner.finish();
        const { header } = result;
        if (header.encrypted) return { state: "skipped", reason: "encrypted: DuckDB's block checksums are inside the encryption" };
        if (!knownStorageVersion(header.storageVersion))
          return { state: "skipped", reason: `storage version ${header.storageVersion} is unknown to this duckbak` };
        const problems = blockDamage(result);
        return problems.length ? { state: "damaged", problems } : { state: "ok", blocksChecked: result.blocksChecked };
      } catch (err) {
        return { state: "damaged", problems: [(err as Error).message] };
      } finally {
        if (fd !== null) closeSync(fd);
      }
    },
  };
}
