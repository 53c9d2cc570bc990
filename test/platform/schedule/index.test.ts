import { describe, expect, test } from "bun:test";
import { DuckbakError, ExitCode } from "../../../src/core/errors.ts";
import { chooseMethod, dailyJob, install, parseTime, remove, ScheduleError, status } from "../../../src/platform/schedule/index.ts";

const options = {
  binary: "/usr/local/bin/duckbak",
  configPath: "/srv/db/duckbak.toml",
  workDir: "/srv/db",
  logFile: "/srv/db/duckbak.log",
  at: "02:30",
  method: "cron" as const,
};

async function failure(p: Promise<unknown>): Promise<ScheduleError> {
  const err = await p.then(
    () => null,
    (e) => e,
  );
  expect(err).toBeInstanceOf(ScheduleError);
  return err;
}

describe("chooseMethod", () => {
  test("auto: schtasks on Windows, cron elsewhere", () => {
    expect(chooseMethod("auto", "win32")).toBe("schtasks");
    expect(chooseMethod("auto", "linux")).toBe("cron");
    expect(chooseMethod("auto", "darwin")).toBe("cron");
  });

  test("explicit methods pass through; others are a usage error", () => {
    expect(chooseMethod("systemd", "linux")).toBe("systemd");
    expect(chooseMethod("schtasks", "linux")).toBe("schtasks");
    expect(() => chooseMethod("launchd", "darwin")).toThrow('unknown schedule method "launchd": expected auto, cron, systemd or schtasks');
  });
});

describe("time of day", () => {
  test("HH:MM from 00:00 to 23:59", () => {
    expect(parseTime("00:00")).toEqual({ hour: 0, minute: 0 });
    expect(parseTime("23:59")).toEqual({ hour: 23, minute: 59 });
    expect(parseTime("07:05")).toEqual({ hour: 7, minute: 5 });
  });

  test.each(["24:00", "23:60", "7:05", "07:5", "0730", " 07:30", "07:30:00", ""])("%p is refused", (at) => {
    expect(() => parseTime(at)).toThrow(`invalid time "${at}": expected HH:MM from 00:00 to 23:59`);
  });

  test("install refuses a bad time before touching anything", async () => {
    let ran = false;
    const run = async () => {
      ran = true;
      return { exitCode: 0, stdout: "", stderr: "" };
    };
    const err = await failure(install({ ...options, at: "25:00" }, { run }));
    expect(err.message).toBe('invalid time "25:00": expected HH:MM from 00:00 to 23:59');
    expect(err.code).toBe("invalid-time");
    expect(ran).toBe(false);
  });
});

describe("errors", () => {
  test("ScheduleError is a DuckbakError with a usage or error exit code, on one line", () => {
    const usage = new ScheduleError("bad", "invalid-time");
    expect(usage).toBeInstanceOf(DuckbakError);
    expect(usage.name).toBe("ScheduleError");
    expect(usage.exitCode).toBe(ExitCode.USAGE);
    const failed = new ScheduleError("first\n  second\r\n\nthird\n", "command-failed");
    expect(failed.exitCode).toBe(ExitCode.ERROR);
    expect(failed.message).toBe("first; second; third");
  });

  test("a system-wide schedule is only for systemd", async () => {
    for (const call of [
      install({ ...options, system: true }),
      remove({ method: "cron", system: true }),
      status({ method: "schtasks", system: true }),
    ]) {
      expect((await failure(call)).code).toBe("unsupported");
    }
    expect((await failure(install({ ...options, system: true }))).message).toBe(
      "a system-wide schedule is only available with systemd, not cron",
    );
  });

  test("paths with line breaks or other control characters are refused", () => {
    expect(() => dailyJob({ ...options, configPath: "/srv/db\n* * * * * rm -rf /" }, "cron")).toThrow(
      'config path "/srv/db\\n* * * * * rm -rf /" contains a control character',
    );
    expect(() => dailyJob({ ...options, logFile: "" }, "cron")).toThrow("log file path is empty");
  });
});
