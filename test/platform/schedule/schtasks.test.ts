// schtasks.exe cannot run here: the exact argv is what is tested, with a recording runner.
import { describe, expect, test } from "bun:test";
import { dailyJob, install, remove, ScheduleError, status, type RunResult } from "../../../src/platform/schedule/index.ts";
import { createArgv, parseNextRun, taskCommand, windowsQuote } from "../../../src/platform/schedule/schtasks.ts";
import { recorder } from "./recorder.ts";

const options = {
  binary: "C:\\Program Files\\duckbak\\duckbak.exe",
  configPath: "C:\\My Data\\duckbak.toml",
  workDir: "C:\\My Data",
  logFile: "C:\\My Data\\duckbak.log",
  at: "02:30",
  method: "schtasks" as const,
};
const job = dailyJob(options, "schtasks");
const COMMAND = '"C:\\Program Files\\duckbak\\duckbak.exe" daily --config "C:\\My Data\\duckbak.toml"';
const CREATE = ["schtasks", "/Create", "/SC", "DAILY", "/ST", "02:30", "/TN", "duckbak daily backup", "/TR", COMMAND, "/F"];
const DELETE = ["schtasks", "/Delete", "/TN", "duckbak daily backup", "/F"];
const QUERY = ["schtasks", "/Query", "/TN", "duckbak daily backup", "/FO", "LIST", "/V"];

const LIST = `
Folder: \\
HostName:                             PC1
TaskName:                             \\duckbak daily backup
Next Run Time:                        1/5/2030 2:30:00 AM
Status:                               Ready
Task To Run:                          ${COMMAND}
`;


const notFound = () => ({ exitCode: 1, stderr: "ERROR: The system cannot find the file specified.\r\n" });

describe("command line", () => {
  test("paths with spaces are quoted, others are not", () => {
    expect(taskCommand(job)).toBe(COMMAND);
    const plain = dailyJob({ ...options, binary: "C:\\duckbak\\duckbak.exe", configPath: "D:\\db\\d.toml" }, "schtasks");
    expect(taskCommand(plain)).toBe("C:\\duckbak\\duckbak.exe daily --config D:\\db\\d.toml");
  });

  test("Windows quoting: backslashes are doubled only before a quote", () => {
    expect(windowsQuote("C:\\a b\\")).toBe('"C:\\a b\\\\"');
    expect(windowsQuote('a"b')).toBe('"a\\"b"');
    expect(windowsQuote('a\\"b')).toBe('"a\\\\\\"b"');
    expect(windowsQuote("")).toBe('""');
  });

  test("the exact /Create argv; /TR is one element without extra quotes", () => {
    expect(createArgv(job)).toEqual(CREATE);
  });

  test("a /TR longer than 261 characters is refused", () => {
    const prefix = '"C:\\Program Files\\duckbak\\duckbak.exe" daily --config C:\\';
    const fits = dailyJob({ ...options, configPath: `C:\\${"d".repeat(261 - prefix.length)}` }, "schtasks");
    expect(taskCommand(fits)).toBe(`${prefix}${"d".repeat(261 - prefix.length)}`);
    expect(taskCommand(fits).length).toBe(261);
    expect(createArgv(fits)[9]).toBe(taskCommand(fits));
    const long = { ...fits, configPath: `${fits.configPath}x` };
    expect(() => createArgv(long)).toThrow(
      new ScheduleError("the task command is 262 characters, over schtasks' /TR limit of 261: move duckbak or the config to a shorter path", "too-long"),
    );
  });

  test("Next Run Time from the LIST output", () => {
    expect(parseNextRun(LIST)).toBe("1/5/2030 2:30:00 AM");
    expect(parseNextRun("Status: Ready\n")).toBeNull();
  });
});

describe("install, remove, status", () => {
  test("install runs /Create; dry run runs nothing", async () => {
    const { calls, run } = recorder();
    expect(await install(options, { run })).toEqual({ method: "schtasks", dryRun: false, argv: CREATE });
    expect(calls).toEqual([CREATE]);
    const dry = recorder();
    expect(await install({ ...options, dryRun: true }, { run: dry.run })).toEqual({ method: "schtasks", dryRun: true, argv: CREATE });
    expect(dry.calls).toEqual([]);
  });

  test("a failing schtasks gives its message on one line", async () => {
    const { run } = recorder(() => ({ exitCode: 1, stderr: "ERROR: Access is denied.\r\n" }));
    const err = await install(options, { run }).catch((e) => e);
    expect(err).toBeInstanceOf(ScheduleError);
    expect(err.message).toBe(`\`${CREATE.join(" ")}\` failed (exit 1): ERROR: Access is denied.`);
  });

  test("remove deletes the task only when the query finds it", async () => {
    const found = recorder();
    expect(await remove({ method: "schtasks" }, { run: found.run })).toEqual({ method: "schtasks", dryRun: false, removed: true, argv: DELETE });
    expect(found.calls).toEqual([QUERY, DELETE]);
    const missing = recorder(notFound);
    expect(await remove({ method: "schtasks" }, { run: missing.run })).toMatchObject({ removed: false });
    expect(missing.calls).toEqual([QUERY]);
  });

  test("status returns the task listing and its next run", async () => {
    const { calls, run } = recorder(() => ({ stdout: LIST }));
    expect(await status({ method: "schtasks" }, { run })).toEqual({
      method: "schtasks",
      installed: true,
      details: LIST,
      nextRunText: "1/5/2030 2:30:00 AM",
    });
    expect(calls).toEqual([QUERY]);
    expect(await status({ method: "schtasks" }, { run: recorder(notFound).run })).toEqual({
      method: "schtasks",
      installed: false,
      details: null,
      nextRunText: null,
    });
  });

  test("off Windows: a clear error", async () => {
    const run = async (argv: readonly string[]): Promise<RunResult> => {
      throw Object.assign(new Error(`Executable not found in $PATH: "${argv[0]}"`), { code: "ENOENT" });
    };
    const err = await status({ method: "schtasks" }, { run }).catch((e) => e);
    expect(err.message).toBe("schtasks not found: schtasks is part of Windows; use the cron or systemd method elsewhere");
  });
});
