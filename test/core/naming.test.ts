import { describe, expect, test } from "bun:test";
import { assignEntryNames, databaseNameProblem, entryNameProblem, isSafeEntryName, isWalFile, defaultStem, parseArchiveName, stemCandidates, validateStem } from "../../src/core/naming.ts";

describe("naming", () => {
  test("default stem is the seed's backup_YYYYMMDD_HHMMSS in UTC", () => {
    expect(defaultStem(new Date("2024-01-15T12:00:00Z"))).toBe("backup_20240115_120000");
    expect(defaultStem(new Date("2024-12-31T23:59:59.999+02:00"))).toBe("backup_20241231_215959");
  });

  test("same-second candidates get numbered suffixes", () => {
    const it = stemCandidates("backup_20240115_120000");
    expect([it.next().value, it.next().value, it.next().value]).toEqual([
      "backup_20240115_120000",
      "backup_20240115_120000_2",
      "backup_20240115_120000_3",
    ]);
  });

  test.each([
    ["backup_20240115_120000.tar.gz", { stem: "backup_20240115_120000", compression: "gzip" }],
    ["nightly.tar.zst", { stem: "nightly", compression: "zstd" }],
    ["x.tar", { stem: "x", compression: "none" }],
    ["notes.txt", null],
    [".tar.gz", null],
    [".duckbak-tmp.host.1.abc.backup.tar.gz", null],
  ])("parseArchiveName(%p)", (file, expected) => {
    expect(parseArchiveName(file)).toEqual(expected as any);
  });

  test.each([
    ["my_backup", null],
    ["", "is empty"],
    ["a/../evil", "must not contain a slash, a backslash or NUL"],
    ["a\\b", "must not contain a slash, a backslash or NUL"],
    [".hidden", "must not start with a dot"],
    ["x.tar.gz", "must not end in .tar, .tar.gz or .tar.zst (give the stem only)"],
  ])("validateStem(%p)", (stem, problem) => {
    expect(validateStem(stem)).toBe(problem);
  });

  test("databases with the same file name get distinct entries, never the manifest's", () => {
    expect(assignEntryNames(["results.duckdb", "results.duckdb", "tca.duckdb", "results.duckdb"])).toEqual([
      "results.duckdb",
      "2-results.duckdb",
      "tca.duckdb",
      "3-results.duckdb",
    ]);
    expect(assignEntryNames(["backup_metadata.json"])).toEqual(["2-backup_metadata.json"]);
    // A database whose name is another's side-file entry never shares it.
    expect(assignEntryNames(["x.duckdb", "x.duckdb.wal.checkpoint"])).toEqual(["x.duckdb", "2-x.duckdb.wal.checkpoint"]);
  });

  test("WAL files are DuckDB's own names only", () => {
    for (const n of ["x.duckdb.wal", "x.duckdb.wal.checkpoint", "x.duckdb.wal.recovery"]) expect(isWalFile(n, "x.duckdb")).toBe(true);
    for (const n of ["x.duckdb", "x.duckdb.wal.old", "x.duckdb.wal.bak.20240101_000000", "x.duckdb.wal.y.duckdb", "y.duckdb.wal", "x.duckdb.walrus"])
      expect(isWalFile(n, "x.duckdb")).toBe(false);
  });
});

describe("entry names: one rule for what backup writes and what the reader accepts", () => {
  test.each([
    ["a\nb.duckdb", "contains a newline"],
    ["a\tb.duckdb", "contains a tab"],
    ["a\x01b.duckdb", "contains a control character (0x01)"],
    ["a:b.duckdb", "contains ':'"],
    ["a/b.duckdb", "contains '/'"],
    ["..", "is not a file name"],
    ["x".repeat(256), "is longer than 255 characters"],
  ])("%j %s", (name, why) => {
    expect(entryNameProblem(name)).toBe(why);
    expect(isSafeEntryName(name)).toBe(false);
    expect(databaseNameProblem(name)).toBe(why);
  });
  test("a name backup accepts is accepted by the reader, with its entry prefix and every WAL suffix", () => {
    for (const base of ["results.duckdb", "-dash.duckdb", "ünïcödé ✓.duckdb", "x".repeat(236)]) {
      expect(databaseNameProblem(base)).toBeNull();
      for (const suffix of ["", ".wal", ".wal.checkpoint", ".wal.recovery"]) expect(isSafeEntryName(`99-${base}${suffix}`)).toBe(true);
    }
    expect(databaseNameProblem("x".repeat(237))).toContain("longer than 236");
  });
});
