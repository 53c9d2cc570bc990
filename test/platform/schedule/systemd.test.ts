// systemd units are generated purely; install/remove/status run against a temporary unit folder and
// a recording systemctl (systemd is not PID 1 in CI). systemd-analyze checks the real unit syntax.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dailyJob, install, remove, ScheduleError, status, type RunResult } from "../../../src/platform/schedule/index.ts";
import { execWord, parseNextElapse, serviceUnit, timerUnit, unitDirectory } from "../../../src/platform/schedule/systemd.ts";
import { recorder } from "./recorder.ts";

const options = {
  binary: "/opt/duck bak/duckbak",
  configPath: "/srv/my data/50% $HOME.toml",
  workDir: "/srv/my data",
  logFile: "/var/log/duckbak 100%.log",
  at: "02:30",
  method: "systemd" as const,
};
const job = dailyJob(options, "systemd");

const SERVICE = `# Managed by duckbak (duckbak schedule install/remove); edits here are overwritten.
[Unit]
Description=duckbak daily backup

[Service]
Type=oneshot
WorkingDirectory=/srv/my data
ExecStart="/opt/duck bak/duckbak" daily --config "/srv/my data/50%% $$HOME.toml"
StandardOutput=append:/var/log/duckbak 100%%.log
StandardError=append:/var/log/duckbak 100%%.log
`;

const TIMER = `# Managed by duckbak (duckbak schedule install/remove); edits here are overwritten.
[Unit]
Description=duckbak daily backup at 02:30

[Timer]
OnCalendar=*-*-* 02:30:00
Persistent=true

[Install]
WantedBy=timers.target
`;


describe("unit text", () => {
  test("service: oneshot, working folder, absolute ExecStart, output appended to the log", () => {
    expect(serviceUnit(job)).toBe(SERVICE);
  });

  test("a program path systemd refuses to run is an error up front", () => {
    expect(() => serviceUnit({ ...job, binary: "/opt/o'brien/duckbak" })).toThrow(
      new ScheduleError("systemd cannot run a program whose path contains a quote or backslash: /opt/o'brien/duckbak", "invalid-path"),
    );
  });

  test("timer: daily at HH:MM:00, catching up missed runs", () => {
    expect(timerUnit(job)).toBe(TIMER);
    expect(timerUnit(dailyJob({ ...options, at: "00:05" }, "systemd"))).toContain("\nOnCalendar=*-*-* 00:05:00\n");
  });

  test("ExecStart words: quotes for spaces, C escapes, %% always, $$ in arguments only", () => {
    expect(execWord("/usr/bin/duckbak")).toBe("/usr/bin/duckbak");
    expect(execWord("/a b")).toBe('"/a b"');
    expect(execWord('/a"b\\c')).toBe('"/a\\"b\\\\c"');
    expect(execWord("/a'b")).toBe(`"/a'b"`);
    expect(execWord("/x/50%$y")).toBe("/x/50%%$$y");
    expect(execWord("/x/50%$y", true)).toBe("/x/50%%$y");
  });

  test("unit folders: system, XDG_CONFIG_HOME when absolute, else HOME", () => {
    expect(unitDirectory(true, {})).toBe("/etc/systemd/system");
    expect(unitDirectory(false, { XDG_CONFIG_HOME: "/x/conf", HOME: "/home/u" })).toBe("/x/conf/systemd/user");
    expect(unitDirectory(false, { XDG_CONFIG_HOME: "conf", HOME: "/home/u" })).toBe("/home/u/.config/systemd/user");
    expect(() => unitDirectory(false, {})).toThrow(
      new ScheduleError("cannot find the systemd user unit folder: neither XDG_CONFIG_HOME nor HOME is set", "unsupported"),
    );
  });

  test("next elapse from systemctl show, UTC or local", () => {
    expect(parseNextElapse("NextElapseUSecRealtime=Thu 2024-01-04 02:30:00 UTC\n")).toEqual(new Date(Date.UTC(2024, 0, 4, 2, 30)));
    expect(parseNextElapse("NextElapseUSecRealtime=Thu 2024-01-04 02:30:00 CET\n")).toEqual(new Date(2024, 0, 4, 2, 30));
    expect(parseNextElapse("NextElapseUSecRealtime=\n")).toBeNull();
  });
});

describe("install, remove, status", () => {
  let tmp = "";
  let dir = "";
  const env = () => ({ XDG_CONFIG_HOME: join(tmp, "config dir"), HOME: "/nonexistent" });

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), "duckbak-systemd-"));
    dir = join(tmp, "config dir", "systemd", "user");
  });
  afterEach(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  test("writes both units, then daemon-reload and enable --now, as user units", async () => {
    const { calls, run } = recorder();
    const result = await install(options, { run, env: env() });
    if (result.method !== "systemd") throw new Error(result.method);
    expect(result).toEqual({
      method: "systemd",
      dryRun: false,
      scope: "user",
      units: [
        { path: join(dir, "duckbak-daily.service"), content: SERVICE },
        { path: join(dir, "duckbak-daily.timer"), content: TIMER },
      ],
      commands: [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "--now", "duckbak-daily.timer"],
      ],
    });
    expect(calls).toEqual([["systemctl", "--user", "show", "--property=Version"], ...result.commands]);
    expect(await readFile(join(dir, "duckbak-daily.service"), "utf8")).toBe(SERVICE);
    expect(await readFile(join(dir, "duckbak-daily.timer"), "utf8")).toBe(TIMER);
    // No temporary left behind by the atomic writes.
    expect((await readdir(dir)).sort()).toEqual(["duckbak-daily.service", "duckbak-daily.timer"]);
  });

  test("dry run writes and runs nothing", async () => {
    const { calls, run } = recorder();
    const result = await install({ ...options, dryRun: true }, { run, env: env() });
    expect(result.dryRun).toBe(true);
    expect(calls).toEqual([]);
    expect(await readdir(tmp)).toEqual([]);
  });

  test("changing system units needs root; they go to /etc/systemd/system, without --user", async () => {
    const err = await install({ ...options, system: true }, { isRoot: false }).catch((e) => e);
    expect(err).toBeInstanceOf(ScheduleError);
    expect(err.message).toBe("system-wide systemd units need root: run as root, or install user units instead");
    const removing = await remove({ method: "systemd", system: true }, { isRoot: false }).catch((e) => e);
    expect(removing.message).toBe(err.message);
    // Reading needs no root (and this machine has no duckbak system units).
    const { calls, run } = recorder();
    expect(await status({ method: "systemd", system: true }, { isRoot: false, run })).toMatchObject({ scope: "system", installed: false });
    expect(calls).toEqual([]);
    const result = await install({ ...options, system: true, dryRun: true }, { isRoot: true });
    expect(result).toMatchObject({
      scope: "system",
      units: [{ path: "/etc/systemd/system/duckbak-daily.service" }, { path: "/etc/systemd/system/duckbak-daily.timer" }],
      commands: [
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "--now", "duckbak-daily.timer"],
      ],
    });
  });

  test("without systemctl: a one-line error and no files", async () => {
    const run = async (argv: readonly string[]): Promise<RunResult> => {
      throw Object.assign(new Error(`Executable not found in $PATH: "${argv[0]}"`), { code: "ENOENT" });
    };
    const err = await install(options, { run, env: env() }).catch((e) => e);
    expect(err).toBeInstanceOf(ScheduleError);
    expect(err.message).toBe("systemctl not found: this system does not use systemd; use the cron method instead");
    expect(await readdir(tmp)).toEqual([]);
  });

  test("systemd not running: systemctl's complaint in one line, and no files", async () => {
    const { run } = recorder(() => ({
      exitCode: 1,
      stderr: "System has not been booted with systemd as init system (PID 1). Can't operate.\nFailed to connect to bus: Host is down\n",
    }));
    const err = await install(options, { run, env: env() }).catch((e) => e);
    expect(err.code).toBe("command-failed");
    expect(err.message).toBe(
      "systemd cannot be reached for this user (no login session: try `loginctl enable-linger`, or --system as root): System has not been booted with systemd as init system (PID 1). Can't operate.; Failed to connect to bus: Host is down; use --method cron instead",
    );
    expect(await readdir(tmp)).toEqual([]);
  });

  test("enable failing after the write is reported", async () => {
    const { run } = recorder((argv) => (argv.includes("enable") ? { exitCode: 1, stderr: "Failed to enable unit: Access denied\n" } : {}));
    const err = await install(options, { run, env: env() }).catch((e) => e);
    expect(err.message).toBe("`systemctl --user enable --now duckbak-daily.timer` failed (exit 1): Failed to enable unit: Access denied");
  });

  test("status: unit texts and the next elapse systemctl reports", async () => {
    await install(options, { run: recorder().run, env: env() });
    const { calls, run } = recorder(() => ({ stdout: "NextElapseUSecRealtime=Fri 2030-01-04 02:30:00 UTC\n" }));
    expect(await status({ method: "systemd" }, { run, env: env() })).toEqual({
      method: "systemd",
      scope: "user",
      installed: true,
      units: [
        { path: join(dir, "duckbak-daily.service"), content: SERVICE },
        { path: join(dir, "duckbak-daily.timer"), content: TIMER },
      ],
      nextRun: new Date(Date.UTC(2030, 0, 4, 2, 30)),
    });
    expect(calls).toEqual([["systemctl", "--user", "show", "duckbak-daily.timer", "--property=NextElapseUSecRealtime"]]);
  });

  test("status when not installed asks systemctl nothing", async () => {
    const { calls, run } = recorder();
    expect(await status({ method: "systemd" }, { run, env: env() })).toEqual({
      method: "systemd",
      scope: "user",
      installed: false,
      units: [],
      nextRun: null,
    });
    expect(calls).toEqual([]);
  });

  test("remove disables the timer, deletes only our units, reloads", async () => {
    await install(options, { run: recorder().run, env: env() });
    await writeFile(join(dir, "other.service"), "[Service]\n");
    const { calls, run } = recorder();
    const result = await remove({ method: "systemd" }, { run, env: env() });
    const commands = [
      ["systemctl", "--user", "disable", "--now", "duckbak-daily.timer"],
      ["systemctl", "--user", "daemon-reload"],
    ];
    expect(result).toEqual({
      method: "systemd",
      dryRun: false,
      scope: "user",
      removed: true,
      units: [join(dir, "duckbak-daily.service"), join(dir, "duckbak-daily.timer")],
      commands,
    });
    expect(calls).toEqual(commands);
    expect(await readdir(dir)).toEqual(["other.service"]);
    // Nothing left: nothing to do.
    const again = recorder();
    expect(await remove({ method: "systemd" }, { run: again.run, env: env() })).toMatchObject({ removed: false, units: [], commands: [] });
    expect(again.calls).toEqual([]);
  });

  test("remove with only the service left skips disabling the missing timer", async () => {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "duckbak-daily.service"), SERVICE);
    const { calls, run } = recorder();
    const result = await remove({ method: "systemd", dryRun: true }, { run, env: env() });
    if (result.method !== "systemd") throw new Error(result.method);
    expect(result.commands).toEqual([["systemctl", "--user", "daemon-reload"]]);
    expect(calls).toEqual([]);
    expect(await readdir(dir)).toEqual(["duckbak-daily.service"]);
  });
});

// systemd-analyze parses units without a running systemd; it checks that ExecStart's program exists,
// which proves the quoting of a program path with spaces, `$` and `%`.
test.skipIf(!Bun.which("systemd-analyze"))("systemd-analyze verify accepts the generated units", async () => {
  const tmp = await mkdtemp(join(tmpdir(), "duckbak-verify-"));
  try {
    const binDir = join(tmp, "bin $dir 50%");
    const dataDir = join(tmp, "my data");
    await mkdir(binDir);
    await mkdir(dataDir);
    await writeFile(join(binDir, "duckbak"), "#!/bin/sh\n");
    await chmod(join(binDir, "duckbak"), 0o755);
    const real = dailyJob(
      { ...options, binary: join(binDir, "duckbak"), configPath: join(dataDir, "duckbak.toml"), workDir: dataDir, logFile: join(dataDir, "log 1%.txt") },
      "systemd",
    );
    await writeFile(join(tmp, "duckbak-daily.service"), serviceUnit(real));
    await writeFile(join(tmp, "duckbak-daily.timer"), timerUnit(real));
    const v = Bun.spawnSync(["systemd-analyze", "verify", join(tmp, "duckbak-daily.service"), join(tmp, "duckbak-daily.timer")]);
    expect({ exitCode: v.exitCode, stderr: v.stderr.toString() }).toEqual({ exitCode: 0, stderr: "" });
    // The same check fails when the program path is wrong, so the pass above means something.
    await writeFile(join(tmp, "duckbak-daily.service"), serviceUnit({ ...real, binary: join(tmp, "bin dir 50%", "duckbak") }));
    const bad = Bun.spawnSync(["systemd-analyze", "verify", join(tmp, "duckbak-daily.service")]);
    expect(bad.stderr.toString()).toContain(`Command ${join(tmp, "bin dir 50%", "duckbak")} is not executable`);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});
