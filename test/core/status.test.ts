// The verdict of `status` from manifests and log lines, without I/O.
import { describe, expect, test } from "bun:test";
import { ExitCode, UsageError } from "../../src/core/errors.ts";
import type { BackupInfo } from "../../src/core/list.ts";
import { formatLogLine, parseLogLine, type LogFields, type LogLevel } from "../../src/core/log.ts";
import type { Manifest } from "../../src/core/manifest.ts";
import { archiveTarget, type BackupTarget } from "../../src/core/monitoring/targets.ts";
import { databaseStatuses, formatAge, lastDailyRun, parseDuration } from "../../src/core/status.ts";

const H = 3_600_000;

describe("durations", () => {
  test.each([
    ["26h", 26 * H],
    ["90m", 90 * 60_000],
    ["2d", 48 * H],
    ["1d12h", 36 * H],
    ["1.5h", 1.5 * H],
    ["45s", 45_000],
    ["1w", 168 * H],
  ])("%s", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  test.each(["26", "h", "-1h", "0h", "26 hours", "2d junk", ""])("%p is a usage error", (text) => {
    expect(() => parseDuration(text)).toThrow(UsageError);
    expect(() => parseDuration(text)).toThrow(`invalid duration '${text}'`);
    expect(() => parseDuration(text)).toThrow(expect.objectContaining({ exitCode: ExitCode.USAGE }));
  });

  test.each([
    [0, "0s"],
    [59_000, "59s"],
    [3 * H + 12 * 60_000 + 5000, "3h 12m"],
    [72 * H + 5 * 60_000, "3d 0h"],
  ])("formatAge(%p) = %p", (ms, text) => {
    expect(formatAge(ms)).toBe(text);
  });
});

function records(lines: [string, LogLevel, string, LogFields][]) {
  return lines.map(([time, level, event, fields]) => parseLogLine(formatLogLine(new Date(time), level, event, fields))!);
}

describe("lastDailyRun", () => {
  test("the newest daily run, with its own error lines only, even when another run's lines interleave", () => {
    const log = records([
      ["2024-01-14T02:00:00Z", "info", "start", { run: "old", command: "daily", pid: 10, host: "h" }],
      ["2024-01-14T02:00:09Z", "info", "end", { run: "old", status: "ok", exit_code: 0 }],
      ["2024-01-15T02:00:00Z", "info", "start", { run: "new", command: "daily", pid: 11, host: "h" }],
      ["2024-01-15T02:00:01Z", "error", "database", { run: "new", status: "failed", path: "/d/a.duckdb", error: "/d/a.duckdb: locked" }],
      ["2024-01-15T02:00:02Z", "error", "error", { run: "other", error: "not this run's" }],
      ["2024-01-15T02:00:03Z", "error", "end", { run: "new", status: "partial", exit_code: 3 }],
    ]);
    expect(lastDailyRun(log)).toEqual({
      run: "new",
      startedAt: new Date("2024-01-15T02:00:00Z"),
      endedAt: new Date("2024-01-15T02:00:03Z"),
      status: "partial",
      exitCode: 3,
      errors: ["/d/a.duckdb: locked"],
      lastLine: log[5]!.line,
      pid: 11,
      host: "h",
    });
  });

  test("a run without an end line is unfinished; no daily run at all is null", () => {
    const log = records([["2024-01-15T02:00:00Z", "info", "start", { run: "r", command: "daily", pid: 12, host: "h" }]]);
    expect(lastDailyRun(log)).toMatchObject({ status: "unfinished", exitCode: null, endedAt: null });
    expect(lastDailyRun([])).toBeNull();
  });
});

function backup(name: string, at: string, databases: string[]): BackupInfo {
  const manifest = { timestamp: at, databases: databases.map((p) => ({ original_path: p, name: p.split("/").pop() })) } as unknown as Manifest;
  return { name, path: `/b/${name}.tar.gz`, file: `${name}.tar.gz`, sizeBytes: 1, compression: "gzip", createdAt: new Date(at), manifest, error: null };
}

describe("databaseStatuses", () => {
  const now = new Date("2024-01-15T12:00:00Z");
  // Newest first, as listBackups returns them.
  const backups = [backup("b2", "2024-01-15T02:00:00Z", ["/d/a.duckdb"]), backup("b1", "2024-01-12T02:00:00Z", ["/d/a.duckdb", "/d/b.duckdb"])];

  const archives = [archiveTarget("/b", backups)];
  const newest = (name: string, at: string) => ({ kind: "archive", name, file: `${name}.tar.gz`, createdAt: new Date(at), sourceDamage: [] });

  test("each expected database's newest backup and age; a missing one is stale", () => {
    expect(databaseStatuses(archives, ["/d/a.duckdb", "/d/b.duckdb", "/d/c.duckdb"], 26 * H, now)).toMatchObject([
      { path: "/d/a.duckdb", newest: newest("b2", "2024-01-15T02:00:00Z"), ageMs: 10 * H, stale: false },
      { path: "/d/b.duckdb", newest: newest("b1", "2024-01-12T02:00:00Z"), ageMs: 82 * H, stale: true },
      { path: "/d/c.duckdb", newest: null, ageMs: null, stale: true },
    ]);
  });

  test("with nothing configured, every database found in the backups is checked", () => {
    expect(databaseStatuses(archives, [], 4 * 24 * H, now).map((d) => [d.path, d.stale])).toEqual([
      ["/d/a.duckdb", false],
      ["/d/b.duckdb", false],
    ]);
  });

  test("archives and snapshots: the newest of either is shown, but each target needs a recent backup", () => {
    const snapshots: BackupTarget = {
      kind: "snapshot",
      location: "/repo",
      unreadable: [],
      backups: [{ name: "ab".repeat(32), file: "abababab", createdAt: new Date("2024-01-15T11:00:00Z"), sizeBytes: 1, databases: [{ original_path: "/d/b.duckdb", size_bytes: 1 }] }],
    };
    const [a, b] = databaseStatuses([...archives, snapshots], ["/d/a.duckdb", "/d/b.duckdb"], 26 * H, now);
    // a: a fresh archive, in no snapshot; b: a fresh snapshot, an old archive.
    expect([a!.stale, a!.targets.map((t) => [t.kind, t.stale, t.newest?.name ?? null])]).toEqual([true, [["archive", false, "b2"], ["snapshot", true, null]]]);
    expect([b!.stale, b!.newest!.kind, b!.ageMs, b!.targets.map((t) => t.stale)]).toEqual([true, "snapshot", 1 * H, [true, false]]);
    // The repository alone: b is fresh.
    expect(databaseStatuses([snapshots], [], 26 * H, now).map((d) => [d.path, d.stale, d.newest?.file])).toEqual([["/d/b.duckdb", false, "abababab"]]);
  });
});
