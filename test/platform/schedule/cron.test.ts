// Pure crontab editing, cron's I/O around an injected runner, and the same against the real
// `crontab` command (the current user's crontab, root's in CI, is saved and restored around it).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CRON_MARKER,
  type CronInstallResult,
  cronEntry,
  cronWord,
  shQuote,
  findCronEntry,
  installCronEntry,
  nextCronRun,
  nextDailyRun,
  removeCronEntry,
} from "../../../src/platform/schedule/cron.ts";
import { dailyJob, install, remove, ScheduleError, status, type InstallOptions, type RunResult } from "../../../src/platform/schedule/index.ts";

const options = {
  binary: "/opt/duck bak/duckbak",
  configPath: "/srv/my data/duckbak.toml",
  workDir: "/srv/my data",
  logFile: "/var/log/duckbak daily.log",
  at: "02:30",
  method: "cron" as const,
};
const job = dailyJob(options, "cron");
const ENTRY =
  "30 2 * * * { cd '/srv/my data' && '/opt/duck bak/duckbak' daily --config '/srv/my data/duckbak.toml'; } >> '/var/log/duckbak daily.log' 2>&1 " +
  "# duckbak daily backup (managed by duckbak; do not edit this line)";
const LATER = cronEntry({ ...job, at: "23:05", hour: 23, minute: 5 });

/**
 * What cron does to a line's command part before handing it to sh: `\\%` becomes `%`, a bare `%`
 * ends the command; Debian's cron also turns `\\\\` into `\\` (cronie does not).
 */
function cronDecode(command: string, debian: boolean): string {
  let out = "";
  let escaped = false;
  for (const ch of command) {
    if (escaped) {
      escaped = false;
      out = ch === "%" || (debian && ch === "\\") ? out.slice(0, -1) + ch : out + ch;
    } else if (ch === "%") break;
    else {
      escaped = ch === "\\";
      out += ch;
    }
  }
  return out;
}

/** install() as the cron method, so that the result's cron fields type-check. */
async function installCron(o: InstallOptions): Promise<CronInstallResult> {
  const result = await install(o);
  if (result.method !== "cron") throw new Error(`expected a cron result, not ${result.method}`);
  return result;
}

function fakeCrontab(initial: string | null, failWrite = false) {
  const state = { crontab: initial, calls: [] as string[][] };
  const run = async (argv: readonly string[], stdin?: string): Promise<RunResult> => {
    state.calls.push([...argv]);
    if (argv[1] === "-l") {
      return state.crontab === null
        ? { exitCode: 1, stdout: "", stderr: "no crontab for root\n" }
        : { exitCode: 0, stdout: state.crontab, stderr: "" };
    }
    if (failWrite) return { exitCode: 1, stdout: "", stderr: '"-":1: bad minute\nerrors in crontab file, can\'t install.\n' };
    state.crontab = stdin ?? "";
    return { exitCode: 0, stdout: "", stderr: "" };
  };
  return { state, run };
}

describe("cron entry text", () => {
  test("absolute, quoted paths; log gets stdout and stderr; marker at the end", () => {
    expect(cronEntry(job)).toBe(ENTRY);
    expect(CRON_MARKER).toBe("# duckbak daily backup (managed by duckbak; do not edit this line)");
  });

  test("minutes and hours without leading zeros", () => {
    expect(cronEntry(dailyJob({ ...options, at: "00:00" }, "cron")).slice(0, 10)).toBe("0 0 * * * ");
    expect(cronEntry(dailyJob({ ...options, at: "23:59" }, "cron")).slice(0, 12)).toBe("59 23 * * * ");
  });

  test("single quotes, percent signs and backslashes are escaped for sh and for cron", () => {
    expect(cronWord("/home/o'brien/db")).toBe(`'/home/o'\\''brien/db'`);
    expect(cronWord("/data/50%/x")).toBe(`'/data/50'\\%'/x'`);
    // A backslash right before % must stay a backslash after cron strips the one in front of %.
    expect(cronWord("/a\\%b")).toBe(`'/a\\'\\%'b'`);
    expect(cronWord("/a\\\\b")).toBe(`'/a\\''\\b'`);
  });

  test("cron (Debian's and cronie's rules) then sh give every word back unchanged", () => {
    const words = ["/srv/my data", "/home/o'brien", "/data/50%/x%", "/a\\%b", "/a\\\\b", "/x\\", "%%", "a\\'b", '$HOME `id` "q" * ; #'];
    for (const word of words) {
      for (const debian of [true, false]) {
        const command = cronDecode(`printf ${cronWord("%s")} ${cronWord(word)}`, debian);
        const sh = Bun.spawnSync(["/bin/sh", "-c", command]);
        expect({ word, debian, out: sh.stdout.toString() }).toEqual({ word, debian, out: word });
      }
    }
  });

  test("relative paths are made absolute", () => {
    const rel = dailyJob({ ...options, binary: "dist/duckbak", configPath: "conf/d.toml", workDir: "conf", logFile: "d.log" }, "cron");
    expect(rel.binary).toBe(`${process.cwd()}/dist/duckbak`);
    expect(rel.configPath).toBe(`${process.cwd()}/conf/d.toml`);
    expect(rel.workDir).toBe(`${process.cwd()}/conf`);
    expect(rel.logFile).toBe(`${process.cwd()}/d.log`);
  });
});

describe("crontab editing", () => {
  const others = '# my jobs\n\nSHELL=/bin/bash\nMAILTO=""\n*/5 * * * * /usr/bin/foo  --bar \\% baz\n';

  test("empty crontab gets just our line", () => {
    expect(installCronEntry("", ENTRY)).toBe(`${ENTRY}\n`);
  });

  test("appends after other lines, which stay byte for byte", () => {
    expect(installCronEntry(others, ENTRY)).toBe(`${others}${ENTRY}\n`);
  });

  test("installing again replaces only our line, in place", () => {
    const before = `# top\n${ENTRY}\n\nMAILTO=x\n`;
    expect(installCronEntry(before, LATER)).toBe(`# top\n${LATER}\n\nMAILTO=x\n`);
  });

  test("duplicates of our line are dropped, the first one replaced", () => {
    expect(installCronEntry(`${ENTRY}\nA=1\n${ENTRY}\n`, LATER)).toBe(`${LATER}\nA=1\n`);
  });

  test("a last line without newline is kept; ours always ends with one", () => {
    expect(installCronEntry("A=1\n0 1 * * * foo", ENTRY)).toBe(`A=1\n0 1 * * * foo\n${ENTRY}\n`);
    expect(installCronEntry(`A=1\n${ENTRY}`, LATER)).toBe(`A=1\n${LATER}\n`);
    expect(removeCronEntry(`0 1 * * * foo\n${ENTRY}\n# tail`)).toBe("0 1 * * * foo\n# tail");
  });

  test("remove leaves every other line and returns the same text when ours is absent", () => {
    expect(removeCronEntry(`${others}${ENTRY}\n`)).toBe(others);
    expect(removeCronEntry(`# a\n${ENTRY}\n\n# b\n`)).toBe("# a\n\n# b\n");
    expect(removeCronEntry(others)).toBe(others);
    expect(removeCronEntry(`${ENTRY}\n`)).toBe("");
  });

  test("find returns our line only when the marker ends it", () => {
    expect(findCronEntry(`${others}${ENTRY}\n`)).toBe(ENTRY);
    expect(findCronEntry(`A=1\r\n${ENTRY}\r\n`)).toBe(`${ENTRY}\r`);
    expect(findCronEntry(others)).toBeNull();
    expect(findCronEntry(`0 1 * * * echo '${CRON_MARKER}' > /tmp/x\n`)).toBeNull();
  });
});

describe("next run", () => {
  test("today if still ahead, else tomorrow, across month ends", () => {
    expect(nextDailyRun(2, 30, new Date(2024, 0, 10, 1, 0))).toEqual(new Date(2024, 0, 10, 2, 30));
    expect(nextDailyRun(2, 30, new Date(2024, 0, 10, 2, 30, 0, 0))).toEqual(new Date(2024, 0, 11, 2, 30));
    expect(nextDailyRun(2, 30, new Date(2024, 0, 31, 23, 59))).toEqual(new Date(2024, 1, 1, 2, 30));
  });

  test("read back from the entry; an edited entry has no computed next run", () => {
    expect(nextCronRun(ENTRY, new Date(2024, 5, 1, 12, 0))).toEqual(new Date(2024, 5, 2, 2, 30));
    expect(nextCronRun(`*/5 * * * 1-5 x ${CRON_MARKER}`, new Date())).toBeNull();
    // Our --every forms: the next multiple of the interval.
    expect(nextCronRun(`*/15 * * * * x ${CRON_MARKER}`, new Date(2024, 5, 1, 12, 7))).toEqual(new Date(2024, 5, 1, 12, 15));
    expect(nextCronRun(`0 */6 * * * x ${CRON_MARKER}`, new Date(2024, 5, 1, 12, 0))).toEqual(new Date(2024, 5, 1, 18, 0));
  });
});

describe("cron I/O through the crontab command", () => {
  test("no crontab yet counts as empty; the new text goes to `crontab -`", async () => {
    const { state, run } = fakeCrontab(null);
    const result = await install(options, { run });
    expect(result).toEqual({ method: "cron", dryRun: false, entry: ENTRY, crontab: `${ENTRY}\n`, replaced: false });
    expect(state.calls).toEqual([["crontab", "-l"], ["crontab", "-"]]);
    expect(state.crontab).toBe(`${ENTRY}\n`);
  });

  test("dry run reads but does not write", async () => {
    const { state, run } = fakeCrontab("A=1\n");
    const result = await install({ ...options, dryRun: true }, { run });
    expect(result.dryRun).toBe(true);
    expect(result).toMatchObject({ crontab: `A=1\n${ENTRY}\n`, replaced: false });
    expect(state.calls).toEqual([["crontab", "-l"]]);
    expect(state.crontab).toBe("A=1\n");
  });

  test("remove and status", async () => {
    const { state, run } = fakeCrontab(`A=1\n${ENTRY}\n`);
    expect(await status({ method: "cron" }, { run, now: new Date(2024, 0, 1, 3, 0) })).toEqual({
      method: "cron",
      installed: true,
      entry: ENTRY,
      nextRun: new Date(2024, 0, 2, 2, 30),
    });
    expect(await remove({ method: "cron" }, { run })).toEqual({ method: "cron", dryRun: false, removed: true, crontab: "A=1\n" });
    expect(state.crontab).toBe("A=1\n");
    expect(await remove({ method: "cron" }, { run })).toEqual({ method: "cron", dryRun: false, removed: false, crontab: "A=1\n" });
    expect(state.calls.filter((c) => c[1] === "-")).toHaveLength(1);
    expect(await status({ method: "cron" }, { run })).toEqual({ method: "cron", installed: false, entry: null, nextRun: null });
  });

  test("a rejected crontab is a one-line ScheduleError", async () => {
    const { run } = fakeCrontab("", true);
    const err = await install(options, { run }).catch((e) => e);
    expect(err).toBeInstanceOf(ScheduleError);
    expect(err.code).toBe("command-failed");
    expect(err.message).toBe('`crontab -` failed (exit 1): "-":1: bad minute; errors in crontab file, can\'t install.');
  });

  test("a missing crontab command says what to install", async () => {
    const run = async (argv: readonly string[]): Promise<RunResult> => {
      throw Object.assign(new Error(`Executable not found in $PATH: "${argv[0]}"`), { code: "ENOENT" });
    };
    const err = await status({ method: "cron" }, { run }).catch((e) => e);
    expect(err).toBeInstanceOf(ScheduleError);
    expect(err.code).toBe("command-missing");
    expect(err.message).toBe("crontab not found: install cron (Debian/Ubuntu: apt-get install cron)");
  });
});

describe("the real crontab command", () => {
  const present = Bun.which("crontab") !== null;
  const others = '# keep me\n\nMAILTO=""\nSHELL=/bin/sh\n17 3 * * * /bin/true \\% not ours\n';
  let saved: string | null = null;
  let tmp = "";
  let opts: InstallOptions;

  function crontab(args: string[], stdin?: string): RunResult {
    requireCrontab();
    const r = Bun.spawnSync(["crontab", ...args], { stdin: stdin === undefined ? "ignore" : Buffer.from(stdin) });
    return { exitCode: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  }

  function requireCrontab(): void {
    if (!present) throw new Error("crontab not found: these tests need the real crontab; install Debian's cron package (apt-get install -y cron)");
  }

  /** Fails up front with the install hint, rather than with whatever the first spawn says. */
  function realTest(name: string, fn: () => Promise<void>): void {
    test(name, async () => {
      requireCrontab();
      await fn();
    });
  }

  function setCrontab(text: string): void {
    const r = crontab(["-"], text);
    if (r.exitCode !== 0) throw new Error(`crontab - failed: ${r.stderr}`);
  }

  function currentCrontab(): string {
    const r = crontab(["-l"]);
    if (r.exitCode !== 0) throw new Error(`crontab -l failed: ${r.stderr}`);
    return r.stdout;
  }

  beforeAll(async () => {
    if (present) {
      const r = crontab(["-l"]);
      if (r.exitCode === 0) saved = r.stdout;
      else if (!/no crontab for/.test(r.stderr)) throw new Error(`cannot save the current crontab: ${r.stderr}`);
    }
    // Spaces, a quote, a percent sign and a double backslash: everything cron and sh treat specially.
    tmp = await mkdtemp(join(tmpdir(), "duckbak cron-"));
    const binDir = join(tmp, "bin dir's 100%");
    const dataDir = join(tmp, "my data \\\\ 50%");
    await mkdir(binDir);
    await mkdir(dataDir);
    const binary = join(binDir, "duckbak");
    await writeFile(
      binary,
      [
        "#!/bin/sh",
        "# Stand-in for duckbak: records how cron's shell started it.",
        "{",
        `  printf 'argc=%s\\n' "$#"`,
        `  for a in "$@"; do printf 'arg=%s\\n' "$a"; done`,
        `  printf 'cwd=%s\\n' "$(pwd)"`,
        `  printf 'home=%s\\n' "\${HOME-unset}"`,
        `} > ${shQuote(join(tmp, "calls.txt"))}`,
        "echo 'out line'",
        "echo 'err line' >&2",
        "",
      ].join("\n"),
    );
    await chmod(binary, 0o755);
    await writeFile(join(dataDir, "duckbak.toml"), "");
    opts = {
      binary,
      configPath: join(dataDir, "duckbak.toml"),
      workDir: dataDir,
      logFile: join(dataDir, "daily log.txt"),
      at: "02:30",
      method: "cron",
    };
  });

  afterAll(async () => {
    if (present) {
      const r = saved === null ? crontab(["-r"]) : crontab(["-"], saved);
      if (r.exitCode !== 0 && !/no crontab for/.test(r.stderr)) throw new Error(`could not restore the crontab: ${r.stderr}`);
    }
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  realTest("install appends our line; every other line stays byte for byte", async () => {
    setCrontab(others);
    const result = await installCron(opts);
    expect(result.entry).toBe(cronEntry(dailyJob(opts, "cron")));
    expect(currentCrontab()).toBe(`${others}${result.entry}\n`);
  });

  realTest("installing again replaces only our line, in place", async () => {
    const first = await installCron(opts);
    setCrontab(`${currentCrontab()}# added after ours\n`);
    const again = await installCron({ ...opts, at: "04:15" });
    expect(again.replaced).toBe(true);
    expect(again.entry.startsWith("15 4 * * * ")).toBe(true);
    expect(currentCrontab()).toBe(`${others}${again.entry}\n# added after ours\n`);
    expect(again.entry).not.toBe(first.entry);
  });

  realTest("status reads our line back with the next run", async () => {
    setCrontab(others);
    const { entry } = await installCron(opts);
    const now = new Date(2030, 5, 1, 12, 0);
    expect(await status({ method: "cron" }, { now })).toEqual({ method: "cron", installed: true, entry, nextRun: new Date(2030, 5, 2, 2, 30) });
  });

  realTest("remove deletes only our line, and is a no-op when it is gone", async () => {
    setCrontab(`${others}${cronEntry(dailyJob(opts, "cron"))}\n# tail\n`);
    expect(await remove({ method: "cron" })).toEqual({ method: "cron", dryRun: false, removed: true, crontab: `${others}# tail\n` });
    expect(currentCrontab()).toBe(`${others}# tail\n`);
    expect(await remove({ method: "cron" })).toMatchObject({ removed: false });
    expect(currentCrontab()).toBe(`${others}# tail\n`);
  });

  realTest("with no crontab at all: install creates it, remove leaves it empty", async () => {
    crontab(["-r"]);
    const { entry } = await installCron(opts);
    expect(currentCrontab()).toBe(`${entry}\n`);
    await remove({ method: "cron" });
    expect(currentCrontab()).toBe("");
    expect(await status({ method: "cron" })).toEqual({ method: "cron", installed: false, entry: null, nextRun: null });
  });

  realTest("the installed line runs in cron's bare environment: env -i /bin/sh -c", async () => {
    setCrontab(others);
    await installCron(opts);
    const line = findCronEntry(currentCrontab());
    expect(line).not.toBeNull();
    // The part after the five time fields, as this (Debian) cron hands it to sh.
    const command = cronDecode(line!.replace(/^(\S+\s+){5}/, ""), true);
    const sh = Bun.spawnSync(["env", "-i", "/bin/sh", "-c", command], { cwd: "/" });
    expect({ exitCode: sh.exitCode, stdout: sh.stdout.toString(), stderr: sh.stderr.toString() }).toEqual({ exitCode: 0, stdout: "", stderr: "" });
    expect(await readFile(join(tmp, "calls.txt"), "utf8")).toBe(
      `argc=3\narg=daily\narg=--config\narg=${opts.configPath}\ncwd=${opts.workDir}\nhome=unset\n`,
    );
    expect(await readFile(opts.logFile, "utf8")).toBe("out line\nerr line\n");
  });
});
