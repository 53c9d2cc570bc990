import { duckdbChecksum } from "./blocks.ts";

/**
 * DuckDB file layout (single_file_block_manager.cpp): a 4 KiB main header, then two 4 KiB database
 * headers, then the blocks. Every header starts with a u64 checksum of the rest of its 4096 bytes.
 */
const HEADER_SIZE = 4096;
export const BLOCKS_START = 3 * HEADER_SIZE;

const ENCRYPTED_FLAG = 1n;
const INVALID_POINTER = 0xffff_ffff_ffff_ffffn;
// DuckDB reads a zero block size / vector size as these defaults (files from before the fields existed).
const DEFAULT_BLOCK_ALLOC_SIZE = 262144;
const DEFAULT_VECTOR_SIZE = 2048;

export class NotADuckDBFileError extends Error {
  override name = "NotADuckDBFileError";
}

/** Points at one of the 64 metadata sub-blocks of a block: the high byte of DuckDB's u64 is the sub-block. */
export interface MetaBlockPointer {
  block: number;
  subBlock: number;
}

export interface DatabaseHeader {
  offset: number;
  checksumValid: boolean;
  /** Bumped by every checkpoint; the valid header with the higher value is the live one. */
  iteration: number;
  metaBlock: MetaBlockPointer | null;
  freeList: MetaBlockPointer | null;
  /** Blocks the file holds as of this checkpoint; blocks after it are free by definition. */
  blockCount: number;
  blockAllocSize: number;
  vectorSize: number;
  /** Raw field; DuckDB ignores it (treats it as 1) when the storage version is 64. */
  serializationCompatibility: number;
}

export interface DuckDBFileHeader {
  /** Always true: a wrong magic throws NotADuckDBFileError instead. */
  magicOk: true;
  mainChecksumValid: boolean;
  storageVersion: number;
  creatorVersion: string;
  sourceId: string;
  /** Encrypted files also encrypt the database headers and blocks, so neither can be read or checked. */
  encrypted: boolean;
  headers: [DatabaseHeader, DatabaseHeader] | null;
  activeHeader: 0 | 1 | null;
  active: DatabaseHeader | null;
}

/** Parses the first 12288 bytes of a DuckDB database file (more bytes are ignored). */
export function parseDuckDBHeader(bytes: Uint8Array): DuckDBFileHeader {
  if (bytes.length < BLOCKS_START) {
    throw new NotADuckDBFileError(
      `not a DuckDB database file: ${bytes.length} bytes is shorter than the ${BLOCKS_START}-byte file header`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, BLOCKS_START);
  const magic = text(bytes, 8, 4);
  if (magic !== "DUCK") {
    throw new NotADuckDBFileError(
      `not a DuckDB database file: expected magic "DUCK" at byte 8, found ${JSON.stringify(magic)}`,
    );
  }
  const storageVersion = Number(view.getBigUint64(12, true));
  const encrypted = (view.getBigUint64(20, true) & ENCRYPTED_FLAG) !== 0n;
  const headers: [DatabaseHeader, DatabaseHeader] | null = encrypted
    ? null
    : [readDatabaseHeader(bytes, view, HEADER_SIZE), readDatabaseHeader(bytes, view, 2 * HEADER_SIZE)];
  const activeHeader = headers ? pickActive(headers) : null;
  return {
    magicOk: true,
    mainChecksumValid: checksumValid(bytes, view, 0),
    storageVersion,
    creatorVersion: text(bytes, 52, 32),
    sourceId: text(bytes, 84, 32),
    encrypted,
    headers,
    activeHeader,
    active: headers && activeHeader !== null ? headers[activeHeader] : null,
  };
}

// DuckDB itself refuses a file with either header corrupt; preferring the valid one lets a scan go on.
// On equal iterations DuckDB takes the second header.
function pickActive([h1, h2]: [DatabaseHeader, DatabaseHeader]): 0 | 1 | null {
  if (h1.checksumValid && h2.checksumValid) return h1.iteration > h2.iteration ? 0 : 1;
  if (h1.checksumValid) return 0;
  return h2.checksumValid ? 1 : null;
}

function readDatabaseHeader(bytes: Uint8Array, view: DataView, offset: number): DatabaseHeader {
  const u64 = (field: number) => view.getBigUint64(offset + 8 + field * 8, true);
  return {
    offset,
    checksumValid: checksumValid(bytes, view, offset),
    iteration: Number(u64(0)),
    metaBlock: toMetaBlockPointer(u64(1)),
    freeList: toMetaBlockPointer(u64(2)),
    blockCount: Number(u64(3)),
    blockAllocSize: Number(u64(4)) || DEFAULT_BLOCK_ALLOC_SIZE,
    vectorSize: Number(u64(5)) || DEFAULT_VECTOR_SIZE,
    serializationCompatibility: Number(u64(6)),
  };
}

function checksumValid(bytes: Uint8Array, view: DataView, offset: number): boolean {
  return view.getBigUint64(offset, true) === duckdbChecksum(bytes, offset + 8, HEADER_SIZE - 8);
}

/** Decodes DuckDB's u64 metadata pointer; all ones means "none". */
export function toMetaBlockPointer(raw: bigint): MetaBlockPointer | null {
  if (raw === INVALID_POINTER) return null;
  return { block: Number(raw & 0x00ff_ffff_ffff_ffffn), subBlock: Number(raw >> 56n) };
}

const decoder = new TextDecoder();

function text(bytes: Uint8Array, offset: number, length: number): string {
  const field = bytes.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return decoder.decode(end === -1 ? field : field.subarray(0, end));
}
