// The progress line's text, as pure functions (the terminal behaviour is in test/e2e/progress.test.ts).
import { describe, expect, test } from "bun:test";
import { formatEta, progressWanted, rateOf, renderProgressLine, summaryLine } from "../../src/cli/progress.ts";

const MiB = 1024 * 1024;

describe("renderProgressLine", () => {
  test("percentage, bytes done of total, rate and ETA", () => {
    const line = renderProgressLine({ label: "verifying b1", doneBytes: 45 * MiB, totalBytes: 100 * MiB, elapsedMs: 3000 }, 120);
    expect(line).toStartWith("verifying b1  [");
    expect(line).toContain(" 45%  45.0 MiB / 100.0 MiB  15.0 MiB/s  ETA 4s");
    expect(line.length).toBeLessThanOrEqual(120);
  });
  test("no rate or ETA before a quarter second of work", () => {
    const line = renderProgressLine({ label: "backing up", doneBytes: MiB, totalBytes: 10 * MiB, elapsedMs: 100 }, 120);
    expect(line).toContain("-/s  ETA -");
  });
  test("narrow terminals: the bar goes first, then the line is cut to fit", () => {
    const s = { label: "restoring backup_20240115_120000", doneBytes: 5 * MiB, totalBytes: 10 * MiB, elapsedMs: 1000 };
    expect(renderProgressLine(s, 80)).not.toContain("[");
    expect(renderProgressLine(s, 40).length).toBeLessThan(40);
  });
  test("the bar keeps its width as the numbers change, and is full at the end", () => {
    const a = renderProgressLine({ label: "x", doneBytes: 0, totalBytes: 1000 * MiB, elapsedMs: 0 }, 120);
    const b = renderProgressLine({ label: "x", doneBytes: 1000 * MiB, totalBytes: 1000 * MiB, elapsedMs: 60_000 }, 120);
    expect(a.indexOf("]")).toBe(b.indexOf("]"));
    expect(b).toContain("[==============================]  100%");
    expect(b).toContain("ETA 0s");
  });
  test("rows as the unit (export, import)", () => {
    const line = renderProgressLine({ label: "importing", unit: "rows", doneBytes: 1500, totalBytes: 20000, elapsedMs: 1000 }, 120);
    expect(line).toContain("1,500 / 20,000 rows  1,500 rows/s  ETA 12s");
  });
  test("an empty phase is 0%, not NaN", () => {
    expect(renderProgressLine({ label: "x", doneBytes: 0, totalBytes: 0, elapsedMs: 500 }, 120)).toContain("  0%  0 B / 0 B");
  });
});

test("formatEta, rateOf, summaryLine", () => {
  expect([formatEta(0), formatEta(42.4), formatEta(65), formatEta(7380)]).toEqual(["0s", "42s", "1m 05s", "2h 03m"]);
  expect(rateOf({ label: "", doneBytes: 10, totalBytes: 20, elapsedMs: 1000 })).toBe(10);
  expect(rateOf({ label: "", doneBytes: 0, totalBytes: 20, elapsedMs: 1000 })).toBeNull();
  expect(summaryLine("restoring b1", 100 * MiB, 10_000, 20_000)).toBe("restoring b1: 100.0 MiB in 20.0 s (10.0 MiB/s)");
});

test("progressWanted: only on a terminal, never with --json", () => {
  expect(progressWanted({ stream: { isTTY: true } })).toBe(process.env.TERM !== "dumb" && !process.env.DUCKBAK_NO_PROGRESS);
  expect(progressWanted({ stream: { isTTY: false } })).toBe(false);
  expect(progressWanted({ stream: { isTTY: true }, json: true })).toBe(false);
});
