// Builds archives byte by byte, the way an attacker or a buggy tool could: a valid duckbak framing
// (stored manifest member, integrity trailer with correct digests) around whatever entries and
// manifest the test wants, so that the checks behind the framing are what gets tested.
import { storedMember, compressMember } from "../src/core/archive/codec.ts";
import { encodeTrailer } from "../src/core/archive/integrity.ts";
import { TAR_BLOCK, tarHeader, tarPadding } from "../src/core/archive/tar.ts";
import { MANIFEST_NAME, type Compression } from "../src/core/naming.ts";
import { concatBytes, sha256Hex } from "../src/core/bytes.ts";

export interface ForgedEntry {
  name: string;
  data?: Uint8Array;
  /** Tar type flag: "0" file, "1" hard link, "2" symlink, "5" folder. */
  type?: "0" | "1" | "2" | "5";
  linkname?: string;
}

function entryBytes(e: ForgedEntry, mtime: Date): Uint8Array {
  const data = e.data ?? new Uint8Array(0);
  const header = tarHeader({ name: e.name, size: data.length, mtime });
  if (e.type && e.type !== "0") {
    const h = header.subarray(header.length - TAR_BLOCK);
    h[156] = e.type.charCodeAt(0);
    h.set(new TextEncoder().encode(e.linkname ?? ""), 157);
    h.fill(0x20, 148, 156);
    const sum = h.reduce((n, b) => n + b, 0);
    h.set(new TextEncoder().encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  }
  return concatBytes([header, data, tarPadding(data.length)]);
}

export function forgeArchive(codec: Compression, manifest: object, entries: ForgedEntry[]): Uint8Array {
  const timestamp = new Date((manifest as { timestamp: string }).timestamp);
  const json = new TextEncoder().encode(JSON.stringify(manifest, null, 2) + "\n");
  const first = storedMember(codec, entryBytes({ name: MANIFEST_NAME, data: json }, timestamp));
  const body = compressMember(codec, concatBytes(entries.map((e) => entryBytes(e, timestamp))));
  const trailer = encodeTrailer(codec, timestamp, { firstMember: sha256Hex(first), body: sha256Hex(body) });
  return concatBytes([first, body, trailer]);
}
