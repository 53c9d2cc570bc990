// notify_command: a shell command run after daily, backup and cleanup with the result in its
// environment (DUCKBAK_*) and the JSON summary on stdin. Its failure is reported, never fatal.
import { childEnv } from "../child-env.ts";
import { outcomeJson, outcomeLine, type RunOutcome } from "./outcome.ts";

export const NOTIFY_TIMEOUT_MS = 60_000;

/** The environment variables the command gets, besides the inherited ones (childEnv: no passwords). */
export function notifyEnvironment(o: RunOutcome): Record<string, string> {
  return {
    DUCKBAK_COMMAND: o.command,
    DUCKBAK_STATUS: o.status,
    DUCKBAK_OK: o.status === "ok" ? "1" : "0",
    DUCKBAK_EXIT_CODE: String(o.exitCode),
    DUCKBAK_SUMMARY: outcomeLine(o),
    // Empty when not used, so an inherited value cannot pass for this run's.
    DUCKBAK_BACKUP_DIR: o.backupDir ?? "",
    DUCKBAK_ARCHIVE: o.archive ?? "",
    DUCKBAK_REPOSITORY: o.repository ?? "",
    DUCKBAK_SNAPSHOT: o.snapshot ?? "",
    DUCKBAK_DURATION_SECONDS: String((o.endedAt.getTime() - o.startedAt.getTime()) / 1000),
    DUCKBAK_DATABASES_OK: String(o.databases.filter((d) => d.ok).length),
    DUCKBAK_DATABASES_FAILED: String(o.databases.filter((d) => !d.ok).length),
    DUCKBAK_ERRORS: o.errors.join("\n"),
  };
}

/** Runs the command; null when it succeeded, else why not (one line). */
export async function runNotifyCommand(command: string, o: RunOutcome, timeoutMs = NOTIFY_TIMEOUT_MS): Promise<string | null> {
  const shell = process.platform === "win32" ? ["cmd.exe", "/d", "/s", "/c", command] : ["/bin/sh", "-c", command];
  let proc: Bun.Subprocess<"pipe", "ignore", "pipe">;
  try {
    proc = Bun.spawn(shell, { stdin: "pipe", stdout: "ignore", stderr: "pipe", env: childEnv(notifyEnvironment(o)) });
  } catch (err) {
    return `notify_command could not start: ${(err as Error).message}`;
  }
  try {
    proc.stdin.write(JSON.stringify(outcomeJson(o), null, 2) + "\n");
    proc.stdin.end();
  } catch {
    // The command does not read its stdin: fine.
  }
  const stderr = new Response(proc.stderr).text();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, timeoutMs);
  const code = await proc.exited;
  clearTimeout(timer);
  if (timedOut) return `notify_command did not finish within ${timeoutMs / 1000}s and was killed`;
  if (code === 0) return null;
  const last = (await stderr).trim().split("\n").pop() ?? "";
  return `notify_command exited ${code}${last ? `: ${last}` : ""}`;
}
