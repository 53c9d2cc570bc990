// Tar headers for the archives duckbak writes: ustar, plus a pax extended header when a name is
// longer than ustar holds or a size passes ustar's 8 GiB limit (GNU tar and bsdtar read both).
// Written by hand because the archive needs exact control of where members start and end (see
// writer.ts); reading goes through modern-tar's decoder.

export const TAR_BLOCK = 512;
export const TAR_EOF = new Uint8Array(2 * TAR_BLOCK);
const USTAR_MAX_SIZE = 0o77777777777;
const encoder = new TextEncoder();

export interface TarEntryHeader {
  name: string;
  size: number;
  mtime: Date;
  mode?: number;
  uid?: number;
  gid?: number;
  /** User and group names (ustar's uname/gname, 31 bytes at most). */
  owner?: string;
  group?: string;
}

/** What the header records of a file besides its name and size. */
export type TarFileMeta = Pick<TarEntryHeader, "mode" | "uid" | "gid" | "owner" | "group">;
const USTAR_MAX_ID = 0o7777777;

export function tarPadding(size: number): Uint8Array {
  return new Uint8Array((TAR_BLOCK - (size % TAR_BLOCK)) % TAR_BLOCK);
}

function writeString(block: Uint8Array, offset: number, length: number, value: string): void {
  block.set(encoder.encode(value).subarray(0, length), offset);
}

function writeOctal(block: Uint8Array, offset: number, length: number, value: number): void {
  writeString(block, offset, length - 1, value.toString(8).padStart(length - 1, "0"));
}

/** GNU base-256: the high bit of the first byte marks a big-endian binary number. */
function writeBase256(block: Uint8Array, offset: number, length: number, value: number): void {
  let v = BigInt(value);
  for (let i = offset + length - 1; i > offset; i--) {
    block[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  block[offset] = 0x80;
}

function ustarBlock(name: string, size: number, mtime: Date, meta: TarFileMeta, type: "0" | "x"): Uint8Array {
  const block = new Uint8Array(TAR_BLOCK);
  writeString(block, 0, 100, name);
  // 0644 for duckbak's own entries (manifest, trailer): readers rebuild the trailer byte for byte,
  // so this default is part of the format; the archive file itself is private.
  writeOctal(block, 100, 8, (meta.mode ?? 0o644) & 0o7777);
  // Ids past ustar's 7 octal digits are left at 0 here and carried by pax records.
  const id = (v: number | undefined) => (v !== undefined && v >= 0 && v <= USTAR_MAX_ID ? v : 0);
  writeOctal(block, 108, 8, id(meta.uid));
  writeOctal(block, 116, 8, id(meta.gid));
  if (size > USTAR_MAX_SIZE) writeBase256(block, 124, 12, size);
  else writeOctal(block, 124, 12, size);
  writeOctal(block, 136, 12, Math.max(0, Math.floor(mtime.getTime() / 1000)));
  block.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  writeString(block, 156, 1, type);
  writeString(block, 257, 6, "ustar\0");
  writeString(block, 263, 2, "00");
  writeString(block, 265, 31, meta.owner ?? "");
  writeString(block, 297, 31, meta.group ?? "");
  let sum = 0;
  for (const b of block) sum += b;
  writeString(block, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return block;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = encoder.encode(body).length;
  len += String(len + String(len).length).length;
  return `${len}${body}`;
}

/** The header blocks of one regular file: 512 bytes, or more with a pax header in front. */
export function tarHeader({ name, size, mtime, ...meta }: TarEntryHeader): Uint8Array {
  const longName = encoder.encode(name).length > 100;
  const bigSize = size > USTAR_MAX_SIZE;
  const bigId = (v: number | undefined) => v !== undefined && v > USTAR_MAX_ID;
  const longOwner = (v: string | undefined) => v !== undefined && encoder.encode(v).length > 31;
  const main = ustarBlock(longName ? name.slice(0, 99) : name, size, mtime, meta, "0");
  const records =
    (longName ? paxRecord("path", name) : "") +
    (bigSize ? paxRecord("size", String(size)) : "") +
    (bigId(meta.uid) ? paxRecord("uid", String(meta.uid)) : "") +
    (bigId(meta.gid) ? paxRecord("gid", String(meta.gid)) : "") +
    (longOwner(meta.owner) ? paxRecord("uname", meta.owner!) : "") +
    (longOwner(meta.group) ? paxRecord("gname", meta.group!) : "");
  if (!records) return main;
  const recordBytes = encoder.encode(records);
  const pax = ustarBlock(`PaxHeaders/${name}`.slice(0, 99), recordBytes.length, mtime, { mode: 0o644 }, "x");
  const out = new Uint8Array(2 * TAR_BLOCK + recordBytes.length + tarPadding(recordBytes.length).length);
  out.set(pax, 0);
  out.set(recordBytes, TAR_BLOCK);
  out.set(main, out.length - TAR_BLOCK);
  return out;
}
