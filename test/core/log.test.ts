// The backup log: the line format round-trips, rotation keeps every line in order, and a log that
// cannot be written never throws into a backup.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BackupLog, formatLogLine, parseLogLine, readLogRecords, rotateLog, schedulerOutputFile } from "../../src/core/log.ts";
import { tempDir } from "../helpers.ts";

const T = new Date("2024-01-15T02:00:00.123Z");

describe("line format", () => {
  test("plain values stay bare; anything sh or a parser could split is a JSON string", () => {
    const line = formatLogLine(T, "error", "database", {
      run: "ab12cd34",
      path: "/srv/my data/r.duckdb",
      bytes: 1048576,
      ok: false,
      error: 'x="1"\nnext\\line',
      empty: "",
      skipped: undefined,
      none: null,
    });
    expect(line).toBe(
      '2024-01-15T02:00:00.123Z level=error event=database run=ab12cd34 path="/srv/my data/r.duckdb" bytes=1048576 ok=false ' +
        'error="x=\\"1\\"\\nnext\\\\line" empty=""',
    );
    const parsed = parseLogLine(line)!;
    expect(parsed.time).toEqual(T);
    expect(parsed.fields).toEqual({
      level: "error",
      event: "database",
      run: "ab12cd34",
      path: "/srv/my data/r.duckdb",
      bytes: "1048576",
      ok: "false",
      error: 'x="1"\nnext\\line',
      empty: "",
    });
  });

  test.each([
    "sh: 1: /opt/duckbak: not found",
    "ok      data/results.duckdb  1.01 MiB, 3 tables, 2 ms",
    "2024-01-15T02:00:00.123Z level=info",
    '2024-01-15T02:00:00.123Z level=info event=end error="unterminated',
    "",
  ])("other lines are not records: %p", (line) => {
    expect(parseLogLine(line)).toBeNull();
  });
});

describe("rotation", () => {
  test("past the threshold the log rotates to .1, .2, .3; the oldest lines go, the rest stay in order", () => {
    const path = join(tempDir(), "backup.log");
    const log = new BackupLog(path, { maxBytes: 1000, now: () => T });
    for (let seq = 0; seq < 200; seq++) log.write("info", "tick", { seq });
    expect(log.error).toBeNull();
    expect(existsSync(`${path}.3`)).toBe(true);
    expect(existsSync(`${path}.4`)).toBe(false);
    const lineBytes = formatLogLine(T, "info", "tick", { seq: 100 }).length + 1;
    for (const file of [path, `${path}.1`, `${path}.2`, `${path}.3`]) expect(statSync(file).size).toBeLessThan(1000 + lineBytes);

    const kept = [`${path}.3`, `${path}.2`, `${path}.1`, path].flatMap((f) =>
      readFileSync(f, "utf8").trimEnd().split("\n").map((l) => Number(parseLogLine(l)!.fields.seq)),
    );
    expect(kept.at(-1)).toBe(199);
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => 200 - kept.length + i));
    expect(kept.length).toBeGreaterThan(3 * (1000 / lineBytes));
  });

  test("a gap left by a crash mid-rotation is tolerated and loses no file", () => {
    const path = join(tempDir(), "backup.log");
    writeFileSync(path, "current\n");
    writeFileSync(`${path}.1`, "one\n");
    writeFileSync(`${path}.3`, "three\n");
    rotateLog(path);
    expect([".1", ".2", ".3"].map((s) => readFileSync(path + s, "utf8"))).toEqual(["current\n", "one\n", "three\n"]);
    expect(existsSync(path)).toBe(false);
  });
});

describe("writing and reading", () => {
  test("a log that cannot be written keeps the error, naming the file, instead of throwing", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "afile"), "");
    const log = new BackupLog(join(dir, "afile/backup.log"));
    log.write("info", "start");
    expect(log.error?.message).toStartWith(join(dir, "afile"));
  });

  test("records are read from backup.log.1 then backup.log, skipping foreign lines", () => {
    const path = join(tempDir(), "backup.log");
    writeFileSync(`${path}.1`, formatLogLine(T, "info", "start", { run: "a" }) + "\n");
    writeFileSync(path, "sh: crash\n" + formatLogLine(T, "info", "end", { run: "a" }) + "\n");
    expect(readLogRecords(path).map((r) => [r.event, r.fields.run])).toEqual([
      ["start", "a"],
      ["end", "a"],
    ]);
  });

  test("the scheduler's output goes beside the log, never into it", () => {
    expect(schedulerOutputFile("/srv/data/backup.log")).toBe("/srv/data/backup.output.log");
    expect(schedulerOutputFile("/srv/duckbak.txt")).toBe("/srv/duckbak.txt.output");
  });
});
