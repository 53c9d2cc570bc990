// The environment of every process duckbak starts (hooks, notify_command, password_command,
// encryption_key_command, its own helper processes, the scheduler tools): ours without the
// variables that give a repository password, so a hook that runs `env` or forwards its
// environment to a webhook cannot leak one. The _FILE forms go too: they say where a password
// lies, and removing a password together with its file keeps the rule simple (a child that needs
// a password gets it set explicitly). S3 credentials (AWS_*) stay: hooks may need them.
export const SECRET_ENV_VARIABLES = [
  "DUCKBAK_PASSWORD",
  "DUCKBAK_PASSWORD_FILE",
  "DUCKBAK_NEW_PASSWORD",
  "DUCKBAK_NEW_PASSWORD_FILE",
  "DUCKBAK_TO_PASSWORD",
  "DUCKBAK_TO_PASSWORD_FILE",
] as const;

/** process.env without the secret variables, plus `extra`. */
export function childEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries({ ...process.env, ...extra })) if (value !== undefined) env[name] = value;
  for (const name of SECRET_ENV_VARIABLES) delete env[name];
  return env;
}
