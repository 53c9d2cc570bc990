// scripts/schedule_daily_backup.sh, run for real with a fake duckbak that records its arguments.
import { afterEach, beforeEach, expect, test } from "bun:test";
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

const SCRIPT = join(import.meta.dir, "../../../scripts/schedule_daily_backup.sh");
let tmp = "";
let scriptDir = "";
let pathDir = "";

async function fakeDuckbak(dir: string, tag: string): Promise<void> {
  const file = join(dir, "duckbak");
  await writeFile(file, `#!/bin/sh\nprintf '%s\\n' ${tag} "$@" > "$ARGS_OUT"\nexit 3\n`);
  await chmod(file, 0o755);
}

function runScript(...args: string[]) {
  const r = Bun.spawnSync([join(scriptDir, "schedule_daily_backup.sh"), ...args], {
    env: { PATH: `${pathDir}:/usr/bin:/bin`, ARGS_OUT: join(tmp, "args.txt") },
    cwd: "/",
  });
  return { exitCode: r.exitCode, stderr: r.stderr.toString() };
}

beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), "duckbak-wrapper-"));
  scriptDir = join(tmp, "release dir");
  pathDir = join(tmp, "on path");
  await mkdir(scriptDir);
  await mkdir(pathDir);
  await copyFile(SCRIPT, join(scriptDir, "schedule_daily_backup.sh"));
  await chmod(join(scriptDir, "schedule_daily_backup.sh"), 0o755);
});

afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

test("uses the duckbak beside the script, passing every argument and its exit status", async () => {
  await fakeDuckbak(scriptDir, "beside");
  await fakeDuckbak(pathDir, "path");
  expect(runScript("--at", "02:30", "--config", "/my data/duckbak.toml", "")).toEqual({ exitCode: 3, stderr: "" });
  expect(await readFile(join(tmp, "args.txt"), "utf8")).toBe("beside\nschedule\ninstall\n--at\n02:30\n--config\n/my data/duckbak.toml\n\n");
});

test("falls back to duckbak on PATH", async () => {
  await fakeDuckbak(pathDir, "path");
  expect(runScript("--dry-run").exitCode).toBe(3);
  expect(await readFile(join(tmp, "args.txt"), "utf8")).toBe("path\nschedule\ninstall\n--dry-run\n");
});

test("says where it looked when there is no duckbak", () => {
  expect(runScript()).toEqual({
    exitCode: 127,
    stderr: `schedule_daily_backup.sh: duckbak not found beside this script (${scriptDir}) or on PATH\n`,
  });
});
