// before_backup / after_backup: shell commands that let an application step aside while its
// database is copied. The pair wraps only the lock-holding copy of one database (snapshot.ts), and
// an after command runs exactly once whenever its before command ran: on success, on failure, when
// the before command itself fails or times out, and on SIGINT/SIGTERM (runInterruptedHooks), so an
// application is never left stopped because of us.
import { spawn, spawnSync } from "node:child_process";
import { closeSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { childEnv } from "./child-env.ts";
import { DuckbakError, ExitCode } from "./errors.ts";

export type HookName = "before_backup" | "after_backup";

export interface HookSpec {
  beforeBackup?: string;
  afterBackup?: string;
  timeoutSeconds: number;
}

export interface HookRun {
  hook: HookName;
  database: string;
  ok: boolean;
  exitCode: number | null;
  timedOut: boolean;
  durationMs: number;
  /** Lines the command wrote to stdout and stderr, in order. */
  output: string[];
}

/** Environment of a hook: the caller's (without passwords) plus the database, the backup being made and (after) its result. */
function hookEnv(database: string, backup: string, result?: "ok" | "failed"): NodeJS.ProcessEnv {
  const env = childEnv({ DUCKBAK_DATABASE: database, DUCKBAK_BACKUP: backup });
  if (result) env.DUCKBAK_RESULT = result;
  else delete env.DUCKBAK_RESULT;
  return env;
}

// Output goes to a private file, not a pipe: an after command that starts a daemon (`app &`) keeps
// a pipe open for ever, and the hook must count as done when its shell exits.
function outputFile(): string {
  return join(tmpdir(), `duckbak-hook.${process.pid}.${Math.random().toString(36).slice(2, 10)}.out`);
}

function takeOutput(file: string): string[] {
  try {
    const text = readFileSync(file, "utf8");
    return text.split("\n").map((l) => l.replace(/\r$/, "")).filter((l, i, all) => l !== "" || i < all.length - 1);
  } catch {
    return [];
  } finally {
    rmSync(file, { force: true });
  }
}

const KILL_GRACE_MS = 5000;

/** Runs one hook through the shell in its own process group, killed (group and all) at the timeout. */
export async function runHook(hook: HookName, command: string, timeoutSeconds: number, database: string, backup: string, result?: "ok" | "failed"): Promise<HookRun> {
  const started = performance.now();
  const file = outputFile();
  const fd = openSync(file, "wx", 0o600);
  let timedOut = false;
  let exitCode: number | null = null;
  try {
    exitCode = await new Promise<number | null>((resolveExit) => {
      const child = spawn(command, { shell: true, detached: process.platform !== "win32", stdio: ["ignore", fd, fd], env: hookEnv(database, backup, result) });
      current.add(child.pid!);
      const kill = (signal: NodeJS.Signals) => {
        try {
          if (process.platform === "win32") child.kill(signal);
          else process.kill(-child.pid!, signal);
        } catch {
          // already gone
        }
      };
      let hard: ReturnType<typeof setTimeout> | undefined;
      const timer = setTimeout(() => {
        timedOut = true;
        kill("SIGTERM");
        hard = setTimeout(() => kill("SIGKILL"), KILL_GRACE_MS);
      }, timeoutSeconds * 1000);
      child.on("error", () => resolveExit(null));
      child.on("exit", (code) => {
        clearTimeout(timer);
        clearTimeout(hard);
        current.delete(child.pid!);
        resolveExit(code);
      });
    });
  } finally {
    closeSync(fd);
  }
  return {
    hook,
    database,
    ok: exitCode === 0 && !timedOut,
    exitCode,
    timedOut,
    durationMs: Math.round(performance.now() - started),
    output: takeOutput(file),
  };
}

/** Process groups of hooks running now, ended by an interrupt before the after hooks run. */
const current = new Set<number>();

interface Pending {
  database: string;
  backup: string;
  command: string;
  timeoutSeconds: number;
  onRun: (run: HookRun) => void;
}
/** After hooks owed: their before hook ran and they have not run yet. */
const pending = new Set<Pending>();

/** Why a hook failed, in one line. */
export function hookFailure(run: HookRun, timeoutSeconds: number): string {
  if (run.timedOut) return `${run.hook} timed out after ${timeoutSeconds}s (hook_timeout) and was killed`;
  const last = run.output.at(-1);
  return `${run.hook} failed (${run.exitCode === null ? "killed by a signal" : `exit code ${run.exitCode}`})${last ? `: ${last}` : ""}`;
}

export class HookError extends DuckbakError {
  constructor(database: string, detail: string) {
    super(`${database}: ${detail}; not backed up`, ExitCode.PARTIAL);
  }
}

/**
 * Runs `work` between the database's before and after hooks. A failing before hook fails the
 * database (HookError) after its after hook ran. The after hook sees DUCKBAK_RESULT=ok only when
 * `work` succeeded; its own failure is reported through `onRun` but does not undo a good copy.
 */
export async function withHooks<T>(spec: HookSpec, database: string, backup: string, onRun: (run: HookRun) => void, work: () => Promise<T>): Promise<T> {
  const before = spec.beforeBackup || undefined;
  const after = spec.afterBackup || undefined;
  if (!before && !after) return work();
  const owed: Pending | null = after ? { database, backup, command: after, timeoutSeconds: spec.timeoutSeconds, onRun } : null;
  // Registered before the before hook starts: an interrupt while it runs still owes the after hook.
  if (owed) pending.add(owed);
  let ok = false;
  try {
    if (before) {
      const run = await runHook("before_backup", before, spec.timeoutSeconds, database, backup);
      onRun(run);
      if (!run.ok) throw new HookError(database, hookFailure(run, spec.timeoutSeconds));
    }
    const value = await work();
    ok = true;
    return value;
  } finally {
    if (owed && pending.delete(owed)) onRun(await runHook("after_backup", owed.command, owed.timeoutSeconds, database, backup, ok ? "ok" : "failed"));
  }
}

/**
 * For a SIGINT/SIGTERM handler, just before exiting: ends running hooks and runs every owed after
 * hook (DUCKBAK_RESULT=failed), synchronously, each within its timeout.
 */
export function runInterruptedHooks(): void {
  for (const pid of current) {
    try {
      process.kill(process.platform === "win32" ? pid : -pid, "SIGTERM");
    } catch {
      // already gone
    }
  }
  current.clear();
  for (const owed of [...pending]) {
    pending.delete(owed);
    const started = performance.now();
    const file = outputFile();
    const fd = openSync(file, "wx", 0o600);
    let r;
    try {
      r = spawnSync(owed.command, {
        shell: true,
        stdio: ["ignore", fd, fd],
        env: hookEnv(owed.database, owed.backup, "failed"),
        timeout: owed.timeoutSeconds * 1000,
        killSignal: "SIGKILL",
      });
    } finally {
      closeSync(fd);
    }
    const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === "ETIMEDOUT";
    owed.onRun({
      hook: "after_backup",
      database: owed.database,
      ok: r.status === 0 && !timedOut,
      exitCode: r.status,
      timedOut,
      durationMs: Math.round(performance.now() - started),
      output: takeOutput(file),
    });
  }
}
