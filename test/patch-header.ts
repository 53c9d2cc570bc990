// Files the embedded DuckDB cannot open, made from a healthy one by rewriting header fields and
// their checksums (DuckDB's own checksum, so that the file is intact apart from the field).
import { readFileSync, writeFileSync } from "node:fs";
import { duckdbChecksum } from "../src/core/duckdb/blocks.ts";

const HEADER = 4096;

function reseal(bytes: Uint8Array, offset: number): void {
  new DataView(bytes.buffer, bytes.byteOffset).setBigUint64(offset, duckdbChecksum(bytes, offset + 8, HEADER - 8), true);
}

/** Sets the main header's storage version (a file "from" another DuckDB release). */
export function patchStorageVersion(src: string, dst: string, version: number): void {
  const bytes = new Uint8Array(readFileSync(src));
  new DataView(bytes.buffer).setBigUint64(12, BigInt(version), true);
  reseal(bytes, 0);
  writeFileSync(dst, bytes);
}

/** Sets both database headers' vector size (a file from a DuckDB compiled with another one). */
export function patchVectorSize(src: string, dst: string, vectorSize: number): void {
  const bytes = new Uint8Array(readFileSync(src));
  const view = new DataView(bytes.buffer);
  for (const at of [HEADER, 2 * HEADER]) {
    view.setBigUint64(at + 8 + 5 * 8, BigInt(vectorSize), true);
    reseal(bytes, at);
  }
  writeFileSync(dst, bytes);
}
