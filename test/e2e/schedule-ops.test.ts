// schedule install as a new user meets it: the config found by discovery (or none: say so, or
// --init), --every besides --at, systemd without a bus, schtasks shown from Linux.
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runBinary, tempDir } from "../helpers.ts";

const env = (extra: Record<string, string> = {}) => ({ ...(process.env as Record<string, string>), NO_COLOR: "1", XDG_CONFIG_HOME: "/nonexistent-xdg", ...extra });

describe("schedule install", () => {
  test("without a config: says to run duckbak init (or --init writes one); with one found by discovery, uses it", async () => {
    const dir = tempDir();
    const none = await runBinary(["schedule", "install", "--dry-run"], { cwd: dir, env: env() });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("no config found for the job");
    expect(none.stderr).toContain("run 'duckbak init' here first, or add --init to write one");
    expect((await runBinary(["schedule", "install", "--dry-run", "--init"], { cwd: dir, env: env() })).stderr).toContain("a dry run writes nothing");
    expect(existsSync(join(dir, "duckbak.toml"))).toBe(false);

    // A user-wide config found from another folder is the one the job runs with.
    const xdg = join(dir, "xdg");
    mkdirSync(join(xdg, "duckbak"), { recursive: true });
    writeFileSync(join(xdg, "duckbak/duckbak.toml"), "");
    const found = await runBinary(["schedule", "install", "--dry-run", "--json"], { cwd: dir, env: env({ XDG_CONFIG_HOME: xdg }) });
    expect(found.code).toBe(0);
    expect(JSON.parse(found.stdout).job_command).toEndWith(`daily --config ${join(xdg, "duckbak/duckbak.toml")}`);
  });

  test("--every: cron */N and 0 */N, systemd calendar steps, schtasks MINUTE/HOURLY; bad intervals refused", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "duckbak.toml"), "");
    const entry = async (every: string) => JSON.parse((await runBinary(["schedule", "install", "--every", every, "--method", "cron", "--dry-run", "--json"], { cwd: dir, env: env() })).stdout).entry;
    expect(await entry("15m")).toStartWith("*/15 * * * * ");
    expect(await entry("1h")).toStartWith("0 * * * * ");
    expect(await entry("6h")).toStartWith("0 */6 * * * ");
    const systemd = JSON.parse((await runBinary(["schedule", "install", "--every", "30m", "--method", "systemd", "--dry-run", "--json"], { cwd: dir, env: env() })).stdout);
    expect(systemd.units[1].content).toContain("\nOnCalendar=*-*-* *:00/30:00\n");
    const win = JSON.parse((await runBinary(["schedule", "install", "--every", "2h", "--method", "schtasks", "--dry-run", "--json"], { cwd: dir, env: env() })).stdout);
    expect(win.argv.slice(1, 7)).toEqual(["/Create", "/SC", "HOURLY", "/MO", "2", "/ST"]);
    for (const bad of ["7m", "5h", "90m", "1d"]) {
      const r = await runBinary(["schedule", "install", "--every", bad, "--dry-run"], { cwd: dir, env: env() });
      expect(r.code, bad).not.toBe(0);
      expect(r.stderr).toContain(`invalid interval "${bad}"`);
    }
    expect((await runBinary(["schedule", "install", "--every", "1h", "--at", "03:00", "--dry-run"], { cwd: dir, env: env() })).stderr).toContain("--at and --every exclude each other");
  });

  test("schtasks --dry-run on Linux prints a command Windows accepts: drive-letter paths, .exe, quoted arguments", async () => {
    if (process.platform === "win32") return;
    const dir = tempDir();
    writeFileSync(join(dir, "duckbak.toml"), "");
    const r = await runBinary(["schedule", "install", "--method", "schtasks", "--dry-run"], { cwd: dir, env: env() });
    expect(r.code).toBe(0);
    const winDir = `C:${dir.replace(/\//g, "\\")}`;
    expect(r.stdout).toContain(`/TN "duckbak daily backup" /TR "C:`);
    expect(r.stdout).toContain(`duckbak.exe daily --config ${winDir}\\duckbak.toml" /F`);
    expect(r.stdout).not.toMatch(/\/TR "?\\/);
    expect(r.stderr).toContain("shown as Windows paths on drive C:");
    // Not a dry run: this is no Windows host.
    expect((await runBinary(["schedule", "install", "--method", "schtasks"], { cwd: dir, env: env() })).stderr).toContain("run it on the Windows host");
  });

  test("systemd without a bus: the error says so and suggests cron", async () => {
    const probe = Bun.spawnSync(["systemctl", "--user", "show", "--property=Version"], { stderr: "pipe" });
    const noBus = probe.exitCode !== 0 && /bus|booted/i.test(new TextDecoder().decode(probe.stderr));
    if (!noBus) return; // a host with a user systemd: nothing to check here
    const dir = tempDir();
    writeFileSync(join(dir, "duckbak.toml"), "");
    const r = await runBinary(["schedule", "install", "--method", "systemd"], { cwd: dir, env: env() });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("systemd cannot be reached");
    expect(r.stderr).toContain("use --method cron instead");
  });
});
