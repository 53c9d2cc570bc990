// Ctrl-C (SIGINT) or SIGTERM in the middle of backup, restore or export: the run says in one line
// that nothing half-written was left and which temporaries it removed, and removes them at once,
// not at the next run. The negative control: kill -9 leaves the temporary, which `cleanup` removes
// and reports with its size.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { createSampleDatabases, killAtPause, runBinary, tempDir } from "../helpers.ts";

const temporaries = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((n) => n.startsWith(".duckbak-tmp.")) : []);

async function project() {
  const dir = tempDir();
  await createSampleDatabases(join(dir, "data"), { trades: 2000 });
  return { dir, bk: join(dir, "data/backups") };
}

describe("interrupted runs", () => {
  test("backup: SIGINT just before the archive is put in place removes its temporary and the lock; no archive", async () => {
    const { dir, bk } = await project();
    let seen: string[] = [];
    const r = await killAtPause(["backup"], "archive:commit", { cwd: dir, signal: "SIGINT", atPause: () => (seen = temporaries(bk)) });
    expect(seen.length).toBe(1);
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/duckbak: interrupted \(SIGINT\): nothing half-written was left; removed 1 temporary file \([\d.]+ (KiB|MiB)\)\n$/);
    expect(readdirSync(bk)).toEqual([]);
  });

  test("restore: SIGTERM after extraction removes the extracted temporaries; nothing restored", async () => {
    const { dir } = await project();
    expect((await runBinary(["backup", "--name", "b"], { cwd: dir })).code).toBe(0);
    const out = join(dir, "out");
    let seen: string[] = [];
    const r = await killAtPause(["restore", "b", "--restore-dir", out], "restore:extracted", { cwd: dir, signal: "SIGTERM", atPause: () => (seen = temporaries(out)) });
    expect(seen.length).toBe(3);
    expect(r.code).toBe(143);
    expect(r.stderr).toContain("duckbak: interrupted (SIGTERM): nothing half-written was left; removed 3 temporary files (");
    expect(readdirSync(out)).toEqual([]);
    // The lock was released too: the next run does not wait for it.
    expect((await runBinary(["restore", "b", "--restore-dir", out, "--lock-wait", "0"], { cwd: dir })).code).toBe(0);
  });

  test("export: SIGINT removes the half-built export folder", async () => {
    const { dir } = await project();
    let seen: string[] = [];
    const r = await killAtPause(["export", "data/results.duckdb", "--out", "ex"], "export:writing", { cwd: dir, signal: "SIGINT", atPause: () => (seen = temporaries(dir)) });
    expect(seen.length).toBe(1);
    expect(r.code).toBe(130);
    expect(r.stderr).toContain("removed 1 temporary file");
    expect(temporaries(dir)).toEqual([]);
    expect(existsSync(join(dir, "ex"))).toBe(false);
  });

  test("negative control: kill -9 leaves the temporary; cleanup removes it and says so, with its size", async () => {
    const { dir, bk } = await project();
    await killAtPause(["backup"], "archive:commit", { cwd: dir });
    const left = temporaries(bk);
    expect(left.length).toBe(1);
    const r = await runBinary(["cleanup"], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Removed data/backups/${left[0]!.replace(/\./g, "\\.")} \\([\\d.]+ (KiB|MiB)\\), a temporary left by an interrupted run$`, "m"));
    expect(temporaries(bk)).toEqual([]);
  });
});
