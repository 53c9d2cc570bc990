// `duckbak schedule` through the compiled binary against the real `crontab` (Debian's cron; CI runs
// as root, whose crontab is saved before and restored after these tests).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CRON_MARKER } from "../../src/platform/schedule/cron.ts";
import { BINARY, createSampleDatabases, ROOT, runBinary, tempDir } from "../helpers.ts";

function crontab(args: string[], stdin?: string) {
  const r = Bun.spawnSync(["crontab", ...args], { stdin: stdin === undefined ? "ignore" : Buffer.from(stdin) });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

function currentCrontab(): string {
  const r = crontab(["-l"]);
  return r.code === 0 ? r.stdout : "";
}

const OTHERS = '# keep me\nMAILTO=""\n17 3 * * * /bin/true not ours\n';
let saved: string | null = null;

beforeAll(() => {
  if (!Bun.which("crontab")) throw new Error("crontab not found: install Debian's cron package (apt-get install -y cron)");
  const r = crontab(["-l"]);
  if (r.code === 0) saved = r.stdout;
  else if (!/no crontab for/.test(r.stderr)) throw new Error(`cannot save the current crontab: ${r.stderr}`);
});

afterAll(() => {
  if (saved === null) crontab(["-r"]);
  else crontab(["-"], saved);
});

/** A project in a folder with a space in its name, as users have. */
async function project(): Promise<{ app: string; configPath: string }> {
  const app = join(tempDir(), "my app");
  mkdirSync(app);
  await createSampleDatabases(join(app, "data"), { trades: 1000 });
  const configPath = join(app, "duckbak.toml");
  writeFileSync(configPath, "[retention]\nkeep_days = 7\n");
  return { app, configPath };
}

describe("duckbak schedule (cron)", () => {
  test("install, dry run, re-install and remove touch only duckbak's line", async () => {
    const { app, configPath } = await project();
    crontab(["-"], OTHERS);

    const dry = await runBinary(["schedule", "install", "--config", configPath, "--dry-run"]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`Would install the daily job (cron, 02:00 local time): ${BINARY} daily --config ${configPath}`);
    expect(dry.stdout).toContain("Dry run: nothing was changed.");
    expect(currentCrontab()).toBe(OTHERS);

    const r = await runBinary(["schedule", "install", "--config", configPath, "--at", "03:15"], { cwd: "/" });
    expect(r.code).toBe(0);
    const entry = `15 3 * * * { cd '${app}' && '${BINARY}' daily --config '${configPath}'; } >> '${app}/data/backup.output.log' 2>&1 ${CRON_MARKER}`;
    expect(currentCrontab()).toBe(`${OTHERS}${entry}\n`);
    expect(r.stdout).toContain(`Installed the daily job (cron, 03:15 local time)`);
    expect(r.stdout).toContain(`backup log: ${app}/data/backup.log; what the job prints: ${app}/data/backup.output.log`);
    // Created private by install, so that cron's `>>` (umask 022) appends instead of creating it 0644.
    expect((statSync(`${app}/data/backup.output.log`).mode & 0o777).toString(8)).toBe("600");

    crontab(["-"], `${currentCrontab()}# added after ours\n`);
    const again = await runBinary(["schedule", "install", "--config", configPath], { cwd: app });
    expect(again.stdout).toContain("replacing the earlier duckbak line");
    expect(currentCrontab()).toBe(`${OTHERS}${entry.replace("15 3 ", "0 2 ")}\n# added after ours\n`);

    const status = JSON.parse((await runBinary(["schedule", "status", "--json"], { cwd: app })).stdout);
    expect(status).toMatchObject({ method: "cron", installed: true, entry: entry.replace("15 3 ", "0 2 "), last_daily: null });
    expect(status.next_run_text).toMatch(/^\d{4}-\d\d-\d\d 02:00 local time$/);
    expect(new Date(status.next_run).getHours()).toBe(2);

    const removed = await runBinary(["schedule", "remove"]);
    expect(removed.stdout).toBe("Removed the duckbak daily job from the crontab.\n");
    expect(currentCrontab()).toBe(`${OTHERS}# added after ours\n`);
    expect((await runBinary(["schedule", "remove"])).stdout).toBe("No duckbak daily job in the crontab; nothing to remove.\n");
    expect((await runBinary(["schedule", "status"], { cwd: app })).stdout).toStartWith("Schedule: no duckbak daily job (cron)\n");
  });

  test("the installed line, run as cron runs it (env -i /bin/sh -c), backs up and logs", async () => {
    const { app, configPath } = await project();
    crontab(["-"], OTHERS);
    expect((await runBinary(["schedule", "install", "--config", configPath])).code).toBe(0);
    const line = currentCrontab().split("\n").find((l) => l.endsWith(CRON_MARKER))!;
    // No % or backslash in these paths, so cron hands sh the command part as it is.
    const command = line.replace(/^(\S+\s+){5}/, "");
    const sh = Bun.spawnSync(["env", "-i", "/bin/sh", "-c", command], { cwd: "/" });
    expect({ code: sh.exitCode, out: sh.stdout.toString(), err: sh.stderr.toString() }).toEqual({ code: 0, out: "", err: "" });

    expect(readdirSync(join(app, "data/backups")).filter((f) => f.endsWith(".tar.gz")).length).toBe(1);
    const log = readFileSync(join(app, "data/backup.log"), "utf8");
    expect(log).toContain(`event=start run=`);
    expect(log).toContain(`config="${configPath}"`);
    expect(log).toMatch(/event=cleanup run=\w+ policy="keep backups from the last 7 days, at least the 5 newest/);
    expect(log).toMatch(/level=info event=end run=\w+ status=ok exit_code=0 /);
    expect(readFileSync(join(app, "data/backup.output.log"), "utf8")).toMatch(/^Daily run \w+: ok \(exit 0\), logged to /m);

    const status = await runBinary(["schedule", "status", "--config", configPath]);
    expect(status.stdout).toContain(`Schedule: installed (cron): ${line}\nNext run: `);
    expect(status.stdout).toMatch(/Last daily run, from .*backup\.log:\n {2}\S+ level=info event=end run=\w+ status=ok exit_code=0/);
  });

  test("install needs an existing config, and the compiled binary", async () => {
    crontab(["-"], OTHERS);
    const dir = tempDir();
    const r = await runBinary(["schedule", "install"], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`no config found for the job (looked for ${join(dir, "duckbak.toml")}`);
    writeFileSync(join(dir, "duckbak.toml"), "");
    const dev = Bun.spawnSync([process.execPath, join(ROOT, "src/cli/main.ts"), "schedule", "install"], { cwd: dir });
    expect(dev.exitCode).toBe(1);
    expect(dev.stderr.toString()).toContain("schedule install must be run from the built duckbak binary");
    expect(currentCrontab()).toBe(OTHERS);
  });
});
