// DuckDB's lock errors as each OS words them. The POSIX texts come from a real DuckDB here (the
// e2e lock tests); the Windows texts are built the way local_file_system.cpp (v1.5.5) builds them,
// since Windows cannot run here: `Cannot open file "<path>": <FormatMessage text>` and, when the
// Restart Manager names the holders, `\nFile is already open in \n<program> (PID <n>)` per process.
import { describe, expect, test } from "bun:test";
import { isLockError, openRefusedBySharing, parseLockHolder } from "../../../src/core/duckdb/open.ts";
import { DatabaseLockedError } from "../../../src/core/errors.ts";

const SHARING = "The process cannot access the file because it is being used by another process.\r\n";
const PORTION = "The process cannot access the file because another process has locked a portion of the file.\r\n";
const WIN_PATH = "C:\\Users\\Ann Lee\\My Data\\trades.duckdb";

const cases: { name: string; message: string; locked: boolean; holder: { pid?: number; program?: string } }[] = [
  {
    name: "Linux, holder known",
    message: 'IO Error: Could not set lock on file "/data/t.duckdb": Conflicting lock is held in /usr/bin/python3.11 (PID 4242) by user ann. See also https://duckdb.org/docs/stable/connect/concurrency',
    locked: true,
    holder: { program: "/usr/bin/python3.11", pid: 4242 },
  },
  {
    name: "Linux, only the PID known",
    message: 'IO Error: Could not set lock on file "/data/t.duckdb": Conflicting lock is held in PID 77',
    locked: true,
    holder: { pid: 77 },
  },
  {
    name: "Windows, a writer holds it, Restart Manager names it (drive letter and spaces in both paths)",
    message: `IO Error: Cannot open file "${WIN_PATH}": ${SHARING}\nFile is already open in \nC:\\Program Files\\My App\\app.exe (PID 5120)`,
    locked: true,
    holder: { program: "C:\\Program Files\\My App\\app.exe", pid: 5120 },
  },
  {
    name: "Windows, two holders: the first is named",
    message: `IO Error: Cannot open file "${WIN_PATH}": ${SHARING}\nFile is already open in \nC:\\a\\one.exe (PID 1)\nC:\\b\\two.exe (PID 2)`,
    locked: true,
    holder: { program: "C:\\a\\one.exe", pid: 1 },
  },
  {
    name: "Windows, Restart Manager found nobody (e.g. the holder runs as another user)",
    message: `IO Error: Cannot open file "${WIN_PATH}": ${SHARING}`,
    locked: true,
    holder: {},
  },
  {
    name: "Windows, a byte-range lock (ERROR_LOCK_VIOLATION)",
    message: `IO Error: Cannot open file "${WIN_PATH}": ${PORTION}`,
    locked: true,
    holder: {},
  },
  {
    name: "Windows in German: the system text is not recognised, DuckDB's own words are",
    message: `IO Error: Cannot open file "${WIN_PATH}": Der Prozess kann nicht auf die Datei zugreifen, da sie von einem anderen Prozess verwendet wird.\r\n\nFile is already open in \nC:\\app.exe (PID 9)`,
    locked: true,
    holder: { program: "C:\\app.exe", pid: 9 },
  },
  {
    name: "Windows, access denied is not a lock",
    message: `IO Error: Cannot open file "${WIN_PATH}": Access is denied.\r\n`,
    locked: false,
    holder: {},
  },
  {
    name: "Windows, not found is not a lock",
    message: `IO Error: Cannot open file "${WIN_PATH}": The system cannot find the file specified.\r\n`,
    locked: false,
    holder: {},
  },
  {
    name: "Linux, permission denied is not a lock",
    message: 'IO Error: Cannot open file "/data/t.duckdb": Permission denied',
    locked: false,
    holder: {},
  },
];

describe("lock errors", () => {
  for (const c of cases) {
    test(c.name, () => {
      expect(isLockError(c.message)).toBe(c.locked);
      expect(parseLockHolder(c.message)).toEqual(c.holder);
    });
  }

  test("the user's message names the Windows path and holder in one line", () => {
    const err = new DatabaseLockedError(WIN_PATH, parseLockHolder(cases[2]!.message), 30);
    expect(err.message).toBe(`${WIN_PATH}: locked by PID 5120 (C:\\Program Files\\My App\\app.exe) after waiting 30s; not copied, because a copy taken while a writer runs can be torn (stop the writer or retry with --wait SECONDS)`);
    expect(err.message).not.toContain("\n");
  });
});

describe("pre-check of a file a writer holds", () => {
  test("Windows: EBUSY (sharing violation) defers to DuckDB's open, which reports the lock and honours --wait", () => {
    expect(openRefusedBySharing("win32", "EBUSY")).toBe(true);
    expect(openRefusedBySharing("win32", "EPERM")).toBe(false);
    expect(openRefusedBySharing("linux", "EBUSY")).toBe(false);
  });
});
