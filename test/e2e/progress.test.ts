// The progress bar for real: on a terminal (a pty from `script`, a screen from tmux) the long
// commands draw it on stderr and leave one summary line; through a pipe or with --json, nothing.
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { BINARY, runBinary, runSql, tempDir } from "../helpers.ts";

const hasScript = Bun.which("script") !== null;
const hasTmux = Bun.which("tmux") !== null;
if (!hasScript) console.warn("progress.test.ts: `script` (util-linux) is not installed: the pty tests are skipped");
if (!hasTmux) console.warn("progress.test.ts: tmux is not installed: the screen test is skipped (apt-get install tmux)");

const dir = tempDir();
beforeAll(async () => {
  mkdirSync(join(dir, "data"));
  // ~20 MiB: big enough for several redraws on a fast machine.
  await runSql(join(dir, "data/big.duckdb"), ["CREATE TABLE t AS SELECT i, md5(i::VARCHAR) AS h, random() AS r FROM range(800000) r(i)"]);
  const r = await runBinary(["backup", "--name", "b1"], { cwd: dir });
  expect(r.code).toBe(0);
  expect((await runBinary(["init", "--repo", "repo"], { cwd: dir, env: { ...process.env, DUCKBAK_PASSWORD: PASSWORD } })).code).toBe(0);
});

const PASSWORD = "progress-test";
const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/** Runs duckbak on a pty (stdout and stderr both the terminal, as in an interactive shell); the raw bytes written to it. */
async function onPty(args: string[]): Promise<{ raw: string; code: number }> {
  const cmd = `stty cols 120 rows 40; ${[BINARY, ...args].map(quote).join(" ")}`;
  const proc = Bun.spawn(["script", "-q", "-e", "-c", cmd, "/dev/null"], { cwd: dir, stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, TERM: "xterm", COLUMNS: "120", DUCKBAK_PASSWORD: PASSWORD } });
  const [raw, , code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { raw, code };
}

/** The frames drawn: the text between carriage returns / cursor moves, escape codes removed. */
function frames(raw: string): string[] {
  return raw.split(/\r|\n|\x1b\[1G/).map((f) => f.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g, "").trim()).filter(Boolean);
}

describe.skipIf(!hasScript)("on a terminal", () => {
  const cases: [string, string[], RegExp, RegExp][] = [
    ["backup", ["backup", "--name", "b2"], /^backing up {2}\[[=-]+\] +\d+%  [\d.]+ [KMG]?i?B \/ [\d.]+ MiB  (-|[\d.]+ [KMG]?i?B)\/s  ETA /, /^backing up: [\d.]+ MiB in [\d.]+ s \([\d.]+ [KMG]?i?B\/s\)$/],
    ["verify", ["verify", "b1"], /^verifying b1 {2}\[[=-]+\] +\d+%  /, /^verifying b1: [\d.]+ MiB in [\d.]+ s/],
    ["restore", ["restore", "b1", "--restore-dir", "drill"], /^(checking|restoring) b1 {2}\[[=-]+\] +\d+%  /, /^restoring b1: [\d.]+ MiB in [\d.]+ s/],
    ["cleanup", ["cleanup", "--keep-last", "5"], /^verifying b\d {2}\[[=-]+\] +\d+%  /, /^verifying b\d: [\d.]+ MiB in [\d.]+ s/],
    ["export", ["export", "data/big.duckdb", "--out", "exp"], /^exporting {2}\[[=-]+\] +\d+%  [\d,]+ \/ 800,000 rows  /, /^exporting: 800,000 rows in [\d.]+ s/],
    ["import", ["import", "exp", "--into", "imported.duckdb"], /^importing {2}\[[=-]+\] +\d+%  [\d,]+ \/ 800,000 rows  /, /^importing: 800,000 rows in [\d.]+ s/],
    // The repository's backup, through the same module (the repository is created in beforeAll).
    ["backup --repo", ["backup", "--repo", "repo"], /^backing up big\.duckdb {2}\[[=-]+\] +\d+%  /, /^backing up big\.duckdb: [\d.]+ MiB in [\d.]+ s/],
    ["verify --repo --read-data", ["verify", "latest", "--repo", "repo", "--read-data"], /^verifying snapshot [0-9a-f]{8} {2}\[[=-]+\] +\d+%  [\d.]+ [KMG]?i?B \/ [\d.]+ MiB  /, /^verifying snapshot [0-9a-f]{8}: [\d.]+ MiB in [\d.]+ s/],
    ["verify --repo --read-data (whole repository)", ["verify", "--repo", "repo", "--read-data"], /^verifying repository {2}\[[=-]+\] +\d+%  /, /^verifying repository: [\d.]+ MiB in [\d.]+ s/],
    ["restore --repo", ["restore", "latest", "--repo", "repo", "--restore-dir", "drill-repo"], /^restoring snapshot [0-9a-f]{8} {2}\[[=-]+\] +\d+%  [\d.]+ [KMG]?i?B \/ [\d.]+ MiB  /, /^restoring snapshot [0-9a-f]{8}: [\d.]+ MiB in [\d.]+ s/],
    ["sql --repo", ["sql", "latest", "--repo", "repo", "SELECT count(*) FROM t"], /^extracting snapshot [0-9a-f]{8} {2}\[[=-]+\] +\d+%  /, /^extracting snapshot [0-9a-f]{8}: [\d.]+ MiB in [\d.]+ s/],
  ];
  for (const [name, args, bar, summary] of cases) {
    test(`${name}: a bar with percentage, amount, rate and ETA, then one summary line`, async () => {
      const { raw, code } = await onPty(args);
      expect(code).toBe(0);
      const f = frames(raw);
      const bars = f.filter((x) => bar.test(x));
      expect(bars.length).toBeGreaterThan(0);
      expect(bars.some((x) => / 100%  /.test(x))).toBe(true);
      // The bar is cleared and replaced by the summary line, exactly once.
      expect(f.filter((x) => summary.test(x))).toHaveLength(1);
      expect(raw).toMatch(/\x1b\[2K[^\r\n]*: [^\r\n]+ in [\d.]+ s/);
    });
  }

  test("cleanup --repo: repacking, then deleting packs, each a bar in bytes; one summary line", async () => {
    const db = join(dir, "churn.duckdb");
    await runSql(db, ["CREATE TABLE t AS SELECT i, md5(i::VARCHAR) AS h FROM range(300000) r(i)", "CHECKPOINT"]);
    const env = { ...process.env, DUCKBAK_PASSWORD: PASSWORD } as Record<string, string>;
    expect((await runBinary(["backup", "--repo", "repo", db], { cwd: dir, env })).code).toBe(0);
    // Half the rows rewritten: the first snapshot's pack is partly used once it is forgotten.
    await runSql(db, ["UPDATE t SET h = md5(h) WHERE i % 2 = 0", "CHECKPOINT"]);
    expect((await runBinary(["backup", "--repo", "repo", db], { cwd: dir, env })).code).toBe(0);
    const { raw, code } = await onPty(["cleanup", "--repo", "repo", "--keep-last", "1", "--max-unused", "0%"]);
    expect(code).toBe(0);
    const f = frames(raw);
    expect(f.some((x) => /^repacking {2}\[[=-]+\] +\d+%  [\d.]+ [KMG]?i?B \/ [\d.]+ MiB  /.test(x))).toBe(true);
    expect(f.some((x) => /^deleting packs {2}\[[=-]+\] +100%  /.test(x))).toBe(true);
    expect(f.filter((x) => /^deleting packs: [\d.]+ [KM]iB in [\d.]+ s/.test(x))).toHaveLength(1);
    expect(raw).toMatch(/partly used packs? repacked into \d+/);
  });

  test("verify: the reading of every table is its own phase, in rows; the summary tells of the archive read", async () => {
    const { raw, code } = await onPty(["verify", "b1"]);
    expect(code).toBe(0);
    const f = frames(raw);
    expect(f.some((x) => /^verifying big\.duckdb: reading tables {2}\[[=-]+\] +\d+%  [\d,]+ \/ 800,000 rows/.test(x))).toBe(true);
    expect(f.filter((x) => /^verifying b1: [\d.]+ MiB in [\d.]+ s/.test(x))).toHaveLength(1);
  });

  test("--json on a terminal: no bar, and stdout is one JSON document", async () => {
    const { raw, code } = await onPty(["verify", "b1", "--json"]);
    expect(code).toBe(0);
    expect(raw).not.toContain("ETA");
    expect(raw).not.toContain("\x1b[2K");
    expect(JSON.parse(raw.replaceAll("\r\n", "\n")).ok).toBe(true);
  });
});

test("through a pipe (cron, logs): nothing of the bar on stderr or stdout", async () => {
  for (const args of [["verify", "b1"], ["restore", "b1", "--restore-dir", "drill-pipe"], ["backup", "--name", "b3"]]) {
    const r = await runBinary(args, { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).not.toContain("ETA");
    expect(r.stdout).not.toContain("\x1b");
  }
});

test("the repository's commands through a pipe: nothing of the bar", async () => {
  const env = { ...process.env, DUCKBAK_PASSWORD: PASSWORD } as Record<string, string>;
  for (const args of [["verify", "--repo", "repo", "--read-data"], ["restore", "latest", "--repo", "repo", "--restore-dir", "drill-repo-pipe"]]) {
    const r = await runBinary(args, { cwd: dir, env });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).not.toContain("ETA");
    expect(r.stdout).not.toContain("\x1b");
  }
});

describe.skipIf(!hasTmux)("in tmux", () => {
  test("the screen a user sees after verify: the results and one summary line, no leftover bar", async () => {
    const sock = `duckbak-progress-${process.pid}`;
    const tmux = (...a: string[]) => Bun.spawn(["tmux", "-L", sock, "-f", "/dev/null", ...a], { stdout: "pipe", stderr: "pipe" });
    const cmd = `${quote(BINARY)} verify b1; echo "exit=$?"; tmux -L ${sock} wait-for -S done; sleep 30`;
    expect(await tmux("new-session", "-d", "-x", "120", "-y", "30", "-c", dir, "env", "TERM=screen", "sh", "-c", cmd).exited).toBe(0);
    try {
      expect(await tmux("wait-for", "done").exited).toBe(0);
      const cap = tmux("capture-pane", "-p");
      const screen = await new Response(cap.stdout).text();
      expect(screen).toMatch(/^verifying b1: [\d.]+ MiB in [\d.]+ s \([\d.]+ [KMG]?i?B\/s\)$/m);
      expect(screen).toContain("Backup b1 is OK.");
      expect(screen).toContain("exit=0");
      expect(screen).not.toContain("ETA");
      expect(screen).not.toContain("[===");
    } finally {
      await tmux("kill-server").exited;
    }
  });
});
