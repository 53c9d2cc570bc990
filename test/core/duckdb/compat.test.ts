// Which DuckDB opens a file: DuckDB's own version tables, vector and block size, the embedded DuckDB.
import { describe, expect, test } from "bun:test";
import { version } from "@duckdb/node-api";
import { EMBEDDED_DUCKDB, embeddedCannotOpen, opensWith } from "../../../src/core/duckdb/compat.ts";
import type { DuckDBFileHeader } from "../../../src/core/duckdb/header.ts";

function header(storageVersion: number, serializationCompatibility = 1, o: { vectorSize?: number; blockAllocSize?: number; encrypted?: boolean } = {}): DuckDBFileHeader {
  const active = {
    offset: 4096,
    checksumValid: true,
    iteration: 1,
    metaBlock: null,
    freeList: null,
    blockCount: 1,
    blockAllocSize: o.blockAllocSize ?? 262144,
    vectorSize: o.vectorSize ?? 2048,
    serializationCompatibility,
  };
  return {
    magicOk: true,
    mainChecksumValid: true,
    storageVersion,
    creatorVersion: "",
    sourceId: "",
    encrypted: o.encrypted ?? false,
    headers: o.encrypted ? null : [active, active],
    activeHeader: o.encrypted ? null : 1,
    active: o.encrypted ? null : active,
  };
}

describe("opensWith", () => {
  test.each([
    [64, 1, {}, "v1.0.0 and later"],
    [64, 7, {}, "v1.0.0 and later"],
    [64, 1, { blockAllocSize: 16384 }, "v1.1.0 and later"],
    [65, 4, {}, "v1.2.0 and later"],
    [65, 7, {}, "v1.5.0 and later"],
    [67, 6, {}, "v1.4.0 and later"],
    [68, 7, {}, "v1.5.0 and later"],
    [69, 8, {}, "v2.0.0 and later"],
    [51, 0, {}, "only v0.8.0 to v0.8.1"],
    [27, 0, {}, "only v0.3.1"],
    [31, 0, {}, "only v0.3.2"],
    [37, 0, {}, "unknown (storage version 37 is not in DuckDB's table as this duckbak knows it)"],
    [70, 9, {}, "unknown (storage version 70 is not in DuckDB's table as this duckbak knows it)"],
    [68, 9, {}, "unknown (serialization compatibility 9 is not in DuckDB's table as this duckbak knows it)"],
    [64, 1, { vectorSize: 512 }, "v1.0.0 and later, compiled with vector size 512 (releases use 2048)"],
    [67, 0, { encrypted: true }, "v1.4.0 and later, with encryption support (v1.4.0 and later) and the key"],
  ] as const)("storage %p, serialization %p, %o → %p", (storage, serialization, o, expected) => {
    expect(opensWith(header(storage, serialization, o))).toBe(expected);
  });
});

describe("embeddedCannotOpen", () => {
  test("the embedded DuckDB is the one this table describes", () => {
    expect(version()).toBe(EMBEDDED_DUCKDB.version);
  });

  test.each([
    [64, 1, {}, null],
    [68, 7, { blockAllocSize: 16384 }, null],
    [69, 8, {}, "needs DuckDB ≥ v2.0.0; this duckbak embeds DuckDB v1.5.5"],
    [68, 8, {}, "needs DuckDB ≥ v2.0.0; this duckbak embeds DuckDB v1.5.5"],
    [51, 0, {}, "written by DuckDB v0.8.0 to v0.8.1 (storage version 51), which only those releases open; this duckbak embeds DuckDB v1.5.5"],
    [99, 1, {}, "storage version 99 is not in DuckDB's table as this duckbak knows it; this duckbak embeds DuckDB v1.5.5"],
    [64, 1, { vectorSize: 512 }, "vector size 512: opens only in a DuckDB compiled with that vector size; this duckbak embeds DuckDB v1.5.5 (vector size 2048)"],
  ] as const)("storage %p, serialization %p, %o → %p", (storage, serialization, o, expected) => {
    expect(embeddedCannotOpen(header(storage, serialization, o))).toBe(expected);
  });
});
