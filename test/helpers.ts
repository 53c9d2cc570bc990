import { afterAll } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { readFileSync } from "node:fs";

export { runSql, createSampleDatabases } from "../scripts/sample-databases.ts";

export const ROOT = resolve(import.meta.dir, "..");
export const WRITER = join(ROOT, "test/fixtures/writer.ts");
// DUCKBAK_BINARY lets a test run use a binary built elsewhere (DUCKBAK_OUTFILE of scripts/build.ts).
export const BINARY = process.env.DUCKBAK_BINARY ?? join(ROOT, "dist", process.platform === "win32" ? "duckbak.exe" : "duckbak");

/** A temporary folder removed after the test file. */
export function tempDir(prefix = "duckbak-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the compiled binary (built by `npm test` before bun test starts). */
export async function runBinary(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<RunResult> {
  if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run 'npm run build' (npm test does it)`);
  const proc = Bun.spawn([BINARY, ...args], {
    cwd: opts.cwd,
    env: opts.env ?? { ...process.env, NO_COLOR: "1" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

/** Runs a query on a database opened read-only, returning plain rows. */
export async function query(path: string, sql: string): Promise<unknown[][]> {
  const instance = await DuckDBInstance.create(path, { access_mode: "READ_ONLY" });
  const con = await instance.connect();
  try {
    return (await con.runAndReadAll(sql)).getRows();
  } finally {
    con.closeSync();
    instance.closeSync();
  }
}

/** Runs a command, failing the test with its stderr when it exits non-zero. */
export async function sh(argv: string[], cwd?: string): Promise<string> {
  const proc = Bun.spawn(argv, { cwd, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`${argv.join(" ")} exited ${code}: ${err}`);
  return out;
}

/** Starts test/fixtures/writer.ts holding `db` open read-write; resolves once it has the lock. */
export async function startWriter(db: string, holdMs?: number): Promise<{ pid: number; stop: () => Promise<void> }> {
  const args = holdMs === undefined ? ["hold", db] : ["hold-ms", db, String(holdMs)];
  const proc = Bun.spawn([process.execPath, WRITER, ...args], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
  const reader = proc.stdout.getReader();
  const { value } = await reader.read();
  if (!new TextDecoder().decode(value).includes("ready")) throw new Error("writer did not start");
  reader.releaseLock();
  return {
    pid: proc.pid,
    stop: async () => {
      proc.stdin.end();
      await proc.exited;
    },
  };
}

/** Tries to open `db` read-write from another process: "opened", or DuckDB's error. */
export async function tryOpenReadWrite(db: string): Promise<string> {
  return (await sh([process.execPath, WRITER, "try-open", db])).trim();
}

export function sha256File(path: string): string {
  return new Bun.CryptoHasher("sha256").update(readFileSync(path)).digest("hex");
}

/** Opens `path` with `options`, runs `work` on a connection, and closes both. */
export async function withDb<T>(path: string, options: Record<string, string>, work: (c: DuckDBConnection) => Promise<T>): Promise<T> {
  const instance = await DuckDBInstance.create(path, options);
  const connection = await instance.connect();
  try {
    return await work(connection);
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** Runs `fn` on a folder of a `size` tmpfs (a disk that fills up), unmounted afterwards. Needs root. */
export async function withSmallDisk<T>(parent: string, size: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const mnt = join(parent, "small-disk");
  mkdirSync(mnt);
  await sh(["mount", "-t", "tmpfs", "-o", `size=${size}`, "tmpfs", mnt]);
  try {
    return await fn(mnt);
  } finally {
    await sh(["umount", mnt]);
  }
}

/**
 * Runs the binary with DUCKBAK_TEST_PAUSE=`point` (src/core/pause.ts), waits until it stops there
 * and kills it with SIGKILL (a crash at exactly that instant), or `signal` (Ctrl-C is SIGINT);
 * `atPause` runs first, to look at the state there; `exe` runs a script instead of the binary (for
 * library paths the binary cannot be steered into). Throws if it ends without pausing.
 */
export async function killAtPause(
  args: string[],
  point: string,
  opts: { cwd?: string; env?: Record<string, string>; signal?: "SIGKILL" | "SIGINT" | "SIGTERM"; atPause?: () => void; exe?: string } = {},
): Promise<{ code: number; stderr: string }> {
  const proc = Bun.spawn([opts.exe ?? BINARY, ...args], {
    cwd: opts.cwd,
    env: { ...(opts.env ?? process.env), NO_COLOR: "1", DUCKBAK_TEST_PAUSE: point },
    stdout: "ignore",
    stderr: "pipe",
  });
  const decoder = new TextDecoder();
  let err = "";
  let paused = false;
  for await (const chunk of proc.stderr) {
    err += decoder.decode(chunk, { stream: true });
    if (!paused && err.includes(`duckbak-test-paused ${point}\n`)) {
      paused = true;
      opts.atPause?.();
      proc.kill(opts.signal ?? "SIGKILL");
    }
  }
  const code = await proc.exited;
  if (!paused) throw new Error(`duckbak ${args.join(" ")} ended (exit ${code}) without reaching ${point}: ${err.trim()}`);
  return { code, stderr: err };
}

/** Runs the binary and returns its exit code and peak RSS in bytes (polled from /proc). */
export async function peakRss(args: string[], env: Record<string, string> = {}): Promise<{ code: number; peak: number }> {
  const proc = Bun.spawn([BINARY, ...args], { stdout: "ignore", stderr: "pipe", env: { ...process.env, NO_COLOR: "1", ...env } });
  let peak = 0;
  const poll = setInterval(() => {
    try {
      const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${proc.pid}/status`, "utf8"));
      if (m) peak = Math.max(peak, Number(m[1]) * 1024);
    } catch {
      // exited
    }
  }, 10);
  const code = await proc.exited;
  clearInterval(poll);
  if (code !== 0) console.error(await new Response(proc.stderr).text());
  return { code, peak };
}
