// What duckbak does where Windows differs: a rename refused because the target is open elsewhere,
// and chmod on a system without POSIX modes. Windows cannot run here, so the refusal is a real
// EPERM from an immutable folder (chattr +i), with the Windows decision applied to it.
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chmodIfSupported, FileInUseError, renameReplacing } from "../../src/core/fsutil.ts";
import { rotateLog } from "../../src/core/log.ts";
import { chmodUnsupported, hasPosixModes, openableWhileWriting, renameBlockedByOpenFile, WINDOWS_RENAME_RETRY_MS } from "../../src/platform/fs.ts";
import { tempDir } from "../helpers.ts";

const work = tempDir("duckbak-fsutil-");

describe("decisions", () => {
  test("a refused rename is retried on Windows only, for the codes an open file gives", () => {
    const rows = ["EPERM", "EBUSY", "EACCES", "ENOENT", "EXDEV"].map((c) => [c, renameBlockedByOpenFile("win32", c), renameBlockedByOpenFile("linux", c)]);
    expect(rows).toEqual([
      ["EPERM", true, false],
      ["EBUSY", true, false],
      ["EACCES", true, false],
      ["ENOENT", false, false],
      ["EXDEV", false, false],
    ]);
    const total = WINDOWS_RENAME_RETRY_MS.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(2000);
    expect(total).toBeLessThan(5000);
  });

  test("no chmod on Windows; a mount without modes is not an error elsewhere", () => {
    expect([hasPosixModes("win32"), hasPosixModes("linux"), hasPosixModes("darwin")]).toEqual([false, true, true]);
    expect(["ENOTSUP", "EOPNOTSUPP", "ENOSYS", "EPERM", "ENOENT", "EROFS"].map(chmodUnsupported)).toEqual([true, true, true, true, false, false]);
  });

  test("restore's temporaries stay open during DuckDB's open check, except on Windows (DuckDB's read-only open shares reading only)", () => {
    expect([openableWhileWriting("win32"), openableWhileWriting("linux"), openableWhileWriting("darwin")]).toEqual([false, true, true]);
  });
});

/** A folder whose entries cannot change (chattr +i, root only): rename into it fails with EPERM. */
async function immutable(dir: string, on: boolean): Promise<boolean> {
  const proc = Bun.spawn(["chattr", on ? "+i" : "-i", dir], { stdout: "ignore", stderr: "ignore" });
  return (await proc.exited) === 0;
}

const CAN_CHATTR = await (async () => {
  const d = join(work, "probe");
  mkdirSync(d);
  const ok = await immutable(d, true).catch(() => false);
  if (ok) await immutable(d, false);
  return ok;
})();

describe.skipIf(!CAN_CHATTR)("rename over a file that stays busy (EPERM from chattr +i, as Windows gives for an open file)", () => {
  function setup(name: string): { from: string; to: string; dir: string } {
    const dir = join(work, name);
    mkdirSync(dir);
    const from = join(work, `${name}.new`);
    writeFileSync(from, "new");
    writeFileSync(join(dir, "db.duckdb"), "old");
    return { from, to: join(dir, "db.duckdb"), dir };
  }

  test("Windows: retried until the other program lets go, then replaced", async () => {
    const { from, to, dir } = setup("released");
    await immutable(dir, true);
    const release = Bun.sleep(150).then(() => immutable(dir, false));
    const started = performance.now();
    await renameReplacing(from, to, "win32");
    await release;
    expect(performance.now() - started).toBeGreaterThanOrEqual(100);
    expect(readFileSync(to, "utf8")).toBe("new");
    expect(existsSync(from)).toBe(false);
  });

  test("Windows: still busy after ~3 s: a one-line error naming the target, and both files untouched", async () => {
    const { from, to, dir } = setup("held");
    await immutable(dir, true);
    try {
      const err = await renameReplacing(from, to, "win32").catch((e) => e);
      expect(err).toBeInstanceOf(FileInUseError);
      expect(err.message).toBe(`${to}: in use by another program, and Windows cannot replace an open file; close the program holding it and retry`);
    } finally {
      await immutable(dir, false);
    }
    expect(readFileSync(to, "utf8")).toBe("old");
    expect(readFileSync(from, "utf8")).toBe("new");
  });

  test("log rotation: Windows skips it while the log is held open (the line is kept, rotation comes later); Linux reports it", async () => {
    const dir = join(work, "log");
    mkdirSync(dir);
    const log = join(dir, "backup.log");
    writeFileSync(log, "old\n");
    await immutable(dir, true);
    try {
      expect(() => rotateLog(log, 3, "win32")).not.toThrow();
      expect(() => rotateLog(log, 3, "linux")).toThrow(`${log}: permission denied (rotate log)`);
    } finally {
      await immutable(dir, false);
    }
    expect(readFileSync(log, "utf8")).toBe("old\n");
  });

  test("Linux: EPERM is a real refusal, reported at once", async () => {
    const { from, to, dir } = setup("posix");
    await immutable(dir, true);
    const started = performance.now();
    try {
      const err = await renameReplacing(from, to, "linux").catch((e) => e);
      expect(err.code).toBe("EPERM");
    } finally {
      await immutable(dir, false);
    }
    expect(performance.now() - started).toBeLessThan(100);
  });
});

describe("chmodIfSupported", () => {
  test("POSIX: sets the mode; Windows: leaves the file as it is", async () => {
    const f = join(work, "mode");
    writeFileSync(f, "x", { mode: 0o644 });
    await chmodIfSupported(f, 0o600, "win32");
    expect(statSync(f).mode & 0o777).toBe(0o644);
    await chmodIfSupported(f, 0o600, "linux");
    expect(statSync(f).mode & 0o777).toBe(0o600);
  });

  test("a missing file is still an error", async () => {
    await expect(chmodIfSupported(join(work, "missing"), 0o600, "linux")).rejects.toThrow("ENOENT");
  });
});
