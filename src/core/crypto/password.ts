// Where the repository password comes from: DUCKBAK_PASSWORD, else the file DUCKBAK_PASSWORD_FILE
// names, else the output of `password_command` from duckbak.toml. The password never appears in
// output, logs or errors.
import { readFileSync } from "node:fs";
import { childEnv } from "../child-env.ts";
import { DuckbakError, UsageError } from "../errors.ts";

export interface PasswordSources {
  env?: Record<string, string | undefined>;
  /**
   * The variable holding the password (its file: the same name with _FILE): DUCKBAK_PASSWORD
   * (default), DUCKBAK_NEW_PASSWORD (key add), DUCKBAK_TO_PASSWORD (copy's destination). Errors
   * name these.
   */
  variable?: "DUCKBAK_PASSWORD" | "DUCKBAK_NEW_PASSWORD" | "DUCKBAK_TO_PASSWORD";
  /** `password_command` from duckbak.toml, run with the shell. */
  command?: string;
}

/** The first line of a file or a command's output, without its line ending. */
function firstLine(text: string): string {
  return text.split(/\r?\n/)[0] ?? "";
}

export function resolvePassword(src: PasswordSources = {}): string {
  const env = src.env ?? process.env;
  const name = src.variable ?? "DUCKBAK_PASSWORD";
  const fileName = `${name}_FILE`;
  if (env[name]) return env[name];
  const file = env[fileName];
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new DuckbakError(`${file}: cannot read the password file (${fileName}): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const pw = firstLine(text);
    if (!pw) throw new UsageError(`${file}: the password file (${fileName}) is empty`);
    return pw;
  }
  if (src.command) {
    const proc = Bun.spawnSync(["sh", "-c", src.command], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: childEnv() });
    if (proc.exitCode !== 0) {
      const said = firstLine(proc.stderr.toString()).slice(0, 200);
      throw new DuckbakError(`password_command failed with exit code ${proc.exitCode}${said ? `: ${said}` : " (it printed nothing on stderr)"}`);
    }
    const pw = firstLine(proc.stdout.toString());
    if (!pw) throw new UsageError("password_command printed no password");
    return pw;
  }
  if (name === "DUCKBAK_NEW_PASSWORD") throw new UsageError(`key add needs the new password: set ${name} or ${fileName}`);
  throw new UsageError(`the repository needs a password: set ${name} or ${fileName}${name === "DUCKBAK_PASSWORD" ? ", or password_command in duckbak.toml" : ""}`);
}
