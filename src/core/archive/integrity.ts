// Whole-archive integrity, so that verify catches damage to ANY byte of an archive, not only to
// the files inside it (a flipped bit in a gzip header's mtime, in tar padding, in the end-of-
// archive blocks). The last member of every archive is a small stored one holding the tar entry
// `backup_archive.sha256`, with the sha256 of the first member (the manifest, rewritten last) and
// of every byte between it and this trailer, followed by tar's end-of-archive blocks. Stored
// members have a fixed length, so a verifier knows where the regions start and end, and can
// rebuild the trailer's exact bytes from the two digests.
import type { Compression } from "../naming.ts";
import { storedMember } from "./codec.ts";
import { TAR_BLOCK, TAR_EOF, tarHeader, tarPadding } from "./tar.ts";

export const TRAILER_NAME = "backup_archive.sha256";
const HEX64 = /^[0-9a-f]{64}$/;

export interface ArchiveDigests {
  firstMember: string;
  body: string;
}

function trailerText(d: ArchiveDigests): string {
  return `first_member_sha256 ${d.firstMember}\nbody_sha256 ${d.body}\n`;
}

export function parseTrailer(bytes: Uint8Array): ArchiveDigests | null {
  const m = /^first_member_sha256 (\S+)\nbody_sha256 (\S+)\n$/.exec(new TextDecoder().decode(bytes));
  if (!m || !HEX64.test(m[1]!) || !HEX64.test(m[2]!)) return null;
  return { firstMember: m[1]!, body: m[2]! };
}

/** The trailer member's exact bytes: tar entry, padding and end-of-archive, stored. */
export function encodeTrailer(codec: Compression, mtime: Date, digests: ArchiveDigests): Uint8Array {
  const content = new TextEncoder().encode(trailerText(digests));
  const header = tarHeader({ name: TRAILER_NAME, size: content.length, mtime });
  const raw = new Uint8Array(header.length + content.length + tarPadding(content.length).length + TAR_EOF.length);
  raw.set(header, 0);
  raw.set(content, header.length);
  return storedMember(codec, raw);
}

/** Length of the trailer member; the same for every archive of a codec. */
export function trailerLength(codec: Compression): number {
  return encodeTrailer(codec, new Date(0), { firstMember: "0".repeat(64), body: "0".repeat(64) }).length;
}

/**
 * Length of the stored first member, read from its own framing (stored deflate blocks, a raw
 * zstd frame, or the tar header's size field), or null when the head is not framed that way.
 */
export function firstMemberLength(codec: Compression, head: Uint8Array): number | null {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (codec === "none") {
    if (head.length < TAR_BLOCK) return null;
    const size = parseInt(new TextDecoder().decode(head.subarray(124, 136)).replace(/\0.*$/, "").trim(), 8);
    return Number.isFinite(size) ? TAR_BLOCK + Math.ceil(size / TAR_BLOCK) * TAR_BLOCK : null;
  }
  if (codec === "gzip") {
    if (head.length < 10 || head[0] !== 0x1f || head[1] !== 0x8b || head[3] !== 0) return null;
    let o = 10;
    for (;;) {
      if (o + 5 > head.length) return null;
      const bfinal = head[o]! & 1;
      if ((head[o]! & 0b110) !== 0) return null; // not a stored block
      const len = view.getUint16(o + 1, true);
      if ((view.getUint16(o + 3, true) ^ 0xffff) !== len) return null;
      o += 5 + len;
      if (bfinal) return o + 8;
    }
  }
  if (head.length < 9 || view.getUint32(0, true) !== 0xfd2fb528 || head[4] !== 0xa0) return null;
  let o = 9;
  for (;;) {
    if (o + 3 > head.length) return null;
    const h = head[o]! | (head[o + 1]! << 8) | (head[o + 2]! << 16);
    if (((h >> 1) & 3) !== 0) return null; // not a raw block
    o += 3 + (h >>> 3);
    if (h & 1) return o;
  }
}
