// Which DuckDB releases open a file, from its header alone. The tables are DuckDB's own
// (src/storage/storage_info.cpp and storage_info.hpp, duckdb/duckdb main as of August 2026:
// storage_version_info and serialization_version_info), reduced to the first and last release that
// writes each number.
import type { DuckDBFileHeader } from "./header.ts";

/** Storage version → [first, last] release writing it. Before 64 a file opens only in the releases that wrote it. */
const STORAGE_RELEASES: Record<number, readonly [string, string]> = {
  1: ["v0.0.4", "v0.2.1"],
  4: ["v0.2.2", "v0.2.2"],
  6: ["v0.2.3", "v0.2.3"],
  11: ["v0.2.4", "v0.2.4"],
  13: ["v0.2.5", "v0.2.5"],
  15: ["v0.2.6", "v0.2.6"],
  17: ["v0.2.7", "v0.2.7"],
  18: ["v0.2.8", "v0.2.8"],
  21: ["v0.2.9", "v0.2.9"],
  25: ["v0.3.0", "v0.3.0"],
  27: ["v0.3.1", "v0.3.1"],
  31: ["v0.3.2", "v0.3.2"],
  33: ["v0.3.3", "v0.4.0"],
  38: ["v0.5.0", "v0.5.1"],
  39: ["v0.6.0", "v0.6.1"],
  43: ["v0.7.0", "v0.7.1"],
  51: ["v0.8.0", "v0.8.1"],
  64: ["v0.9.0", "v1.1.3"],
  65: ["v1.2.0", "v1.2.2"],
  66: ["v1.3.0", "v1.3.2"],
  67: ["v1.4.0", "v1.4.5"],
  68: ["v1.5.0", "v1.5.5"],
  69: ["v2.0.0", "v2.0.0"],
};

/** Serialization compatibility → the first release that reads it. */
const SERIALIZATION_FIRST: Record<number, string> = {
  1: "v0.10.0",
  2: "v0.10.3",
  3: "v1.1.0",
  4: "v1.2.0",
  5: "v1.3.0",
  6: "v1.4.0",
  7: "v1.5.0",
  8: "v2.0.0",
};

/**
 * The DuckDB embedded in duckbak and the range it opens (VERSION_NUMBER_LOWER/UPPER in its
 * storage_info.cpp). test/core/duckdb/compat.test.ts fails when @duckdb/node-api moves on.
 */
export const EMBEDDED_DUCKDB = { version: "v1.5.5", storage: [64, 68], serialization: 7, vectorSize: 2048 } as const;

const DEFAULT_BLOCK_ALLOC_SIZE = 262144;
const DEFAULT_VECTOR_SIZE = 2048;

export function isKnownStorageVersion(v: number): boolean {
  return Object.hasOwn(STORAGE_RELEASES, v);
}

const newer = (a: string, b: string) => (a.localeCompare(b, "en", { numeric: true }) >= 0 ? a : b);

type Requirement = { kind: "from"; version: string } | { kind: "only"; first: string; last: string } | { kind: "unknown"; why: string };

/** The oldest release that opens the file, or the only releases that do. */
function requirement(storage: number, serialization: number | null, blockAllocSize: number | null): Requirement {
  const releases = Object.hasOwn(STORAGE_RELEASES, storage) ? STORAGE_RELEASES[storage]! : null;
  if (!releases) return { kind: "unknown", why: `storage version ${storage} is not in DuckDB's table as this duckbak knows it` };
  if (storage < 64) return { kind: "only", first: releases[0], last: releases[1] };
  // DuckDB names storage 64 "v1.0.0+" and does not read its serialization field (it assumes 1).
  let version = storage === 64 ? "v1.0.0" : releases[0];
  if (storage > 64 && serialization !== null) {
    if (!Object.hasOwn(SERIALIZATION_FIRST, serialization))
      return { kind: "unknown", why: `serialization compatibility ${serialization} is not in DuckDB's table as this duckbak knows it` };
    version = newer(version, SERIALIZATION_FIRST[serialization]!);
  }
  // Releases before v1.1.0 refuse any block size but 256 KiB.
  if (blockAllocSize !== null && blockAllocSize !== DEFAULT_BLOCK_ALLOC_SIZE) version = newer(version, "v1.1.0");
  return { kind: "from", version };
}

/** Which DuckDB releases open the file, e.g. "v1.2.0 and later", "only v0.8.0 to v0.8.1". */
export function opensWith(h: DuckDBFileHeader): string {
  const a = h.active;
  const req = requirement(h.storageVersion, a?.serializationCompatibility ?? null, a?.blockAllocSize ?? null);
  let text =
    req.kind === "unknown"
      ? `unknown (${req.why})`
      : req.kind === "only"
        ? req.first === req.last
          ? `only ${req.first}`
          : `only ${req.first} to ${req.last}`
        : `${req.version} and later`;
  if (h.encrypted) text += req.kind === "from" ? ", with encryption support (v1.4.0 and later) and the key" : ", encrypted";
  if (a && a.vectorSize !== DEFAULT_VECTOR_SIZE) text += `, compiled with vector size ${a.vectorSize} (releases use ${DEFAULT_VECTOR_SIZE})`;
  return text;
}

/**
 * Why the embedded DuckDB cannot open this file, judged from its header; null when it can (as
 * far as the header tells).
 */
export function embeddedCannotOpen(h: DuckDBFileHeader): string | null {
  const embeds = `this duckbak embeds DuckDB ${EMBEDDED_DUCKDB.version}`;
  const a = h.active;
  const req = requirement(h.storageVersion, a?.serializationCompatibility ?? null, a?.blockAllocSize ?? null);
  if (req.kind === "unknown") return `${req.why}; ${embeds}`;
  if (req.kind === "only") return `written by DuckDB ${req.first === req.last ? req.first : `${req.first} to ${req.last}`} (storage version ${h.storageVersion}), which only those releases open; ${embeds}`;
  if (h.storageVersion > EMBEDDED_DUCKDB.storage[1] || newer(req.version, EMBEDDED_DUCKDB.version) !== EMBEDDED_DUCKDB.version)
    return `needs DuckDB ≥ ${req.version}; ${embeds}`;
  if (a && a.vectorSize !== EMBEDDED_DUCKDB.vectorSize)
    return `vector size ${a.vectorSize}: opens only in a DuckDB compiled with that vector size; ${embeds} (vector size ${EMBEDDED_DUCKDB.vectorSize})`;
  return null;
}
