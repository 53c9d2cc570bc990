// Archive compression as a sequence of independent members: gzip members (RFC 1952 allows them to
// be concatenated; gunzip and tar read them as one stream) or zstd frames (likewise). Independent
// members let a worker pool compress in parallel, and let the first member, which holds only the
// manifest, be written uncompressed ("stored") so that it has a fixed length and can be rewritten
// in place once the checksums are known.
import type { Compression } from "../naming.ts";

export const GZIP_LEVEL = 6;
export const ZSTD_LEVEL = 3;

export function compressMember(codec: Compression, input: Uint8Array): Uint8Array {
  const data = input as Uint8Array<ArrayBuffer>; // never a SharedArrayBuffer here
  switch (codec) {
    case "gzip":
      return Bun.gzipSync(data, { level: GZIP_LEVEL, library: "libdeflate" });
    case "zstd":
      return Bun.zstdCompressSync(data, { level: ZSTD_LEVEL });
    case "none":
      return data;
  }
}

/** A member whose length depends only on the length of `data`, never on its content. */
export function storedMember(codec: Compression, data: Uint8Array): Uint8Array {
  switch (codec) {
    case "gzip":
      return storedGzip(data);
    case "zstd":
      return rawZstdFrame(data);
    case "none":
      return data;
  }
}

const STORED_BLOCK = 65535;

function storedGzip(data: Uint8Array): Uint8Array {
  const blocks = Math.max(1, Math.ceil(data.length / STORED_BLOCK));
  const out = new Uint8Array(10 + blocks * 5 + data.length + 8);
  const view = new DataView(out.buffer);
  out.set([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]); // deflate, no flags, no mtime, OS unknown
  let o = 10;
  for (let i = 0; i < blocks; i++) {
    const chunk = data.subarray(i * STORED_BLOCK, (i + 1) * STORED_BLOCK);
    out[o] = i === blocks - 1 ? 1 : 0; // BFINAL, BTYPE=00 (stored)
    view.setUint16(o + 1, chunk.length, true);
    view.setUint16(o + 3, ~chunk.length & 0xffff, true);
    out.set(chunk, o + 5);
    o += 5 + chunk.length;
  }
  view.setUint32(o, Bun.hash.crc32(data) >>> 0, true);
  view.setUint32(o + 4, data.length >>> 0, true);
  return out;
}

const RAW_BLOCK = 128 * 1024;

function rawZstdFrame(data: Uint8Array): Uint8Array {
  const blocks = Math.max(1, Math.ceil(data.length / RAW_BLOCK));
  const out = new Uint8Array(4 + 1 + 4 + blocks * 3 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0xfd2fb528, true);
  out[4] = 0xa0; // 4-byte frame content size, single segment, no checksum, no dictionary
  view.setUint32(5, data.length, true);
  let o = 9;
  for (let i = 0; i < blocks; i++) {
    const chunk = data.subarray(i * RAW_BLOCK, (i + 1) * RAW_BLOCK);
    const header = (chunk.length << 3) | (0 << 1) | (i === blocks - 1 ? 1 : 0); // Raw_Block
    out[o] = header & 0xff;
    out[o + 1] = (header >>> 8) & 0xff;
    out[o + 2] = (header >>> 16) & 0xff;
    out.set(chunk, o + 3);
    o += 3 + chunk.length;
  }
  return out;
}
