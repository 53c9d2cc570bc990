// The processes duckbak starts (hooks, notify_command, password_command) never see a repository
// password: every DUCKBAK_*PASSWORD* variable is removed from their environment (child-env.ts),
// while the rest (AWS_* credentials a hook may need, PATH) is passed on.
import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createSampleDatabases, runBinary, tempDir } from "../helpers.ts";

const SECRETS = {
  DUCKBAK_PASSWORD: "pw-main-7f3a",
  DUCKBAK_NEW_PASSWORD: "pw-new-91c2",
  DUCKBAK_TO_PASSWORD: "pw-to-55d0",
};

/** The lines of an `env` dump that give a password, or name its file. */
const passwordLines = (dump: string) => dump.split("\n").filter((l) => /^DUCKBAK_(NEW_|TO_)?PASSWORD/.test(l) || Object.values(SECRETS).some((s) => l.includes(s)));

describe("child processes get no password", () => {
  test("hooks and notify_command of a daily run (archive and repository) see no DUCKBAK_*PASSWORD*, but AWS_* and their own variables", async () => {
    const dir = tempDir();
    await createSampleDatabases(join(dir, "data"), { trades: 200 });
    const pwFile = join(dir, "pw");
    writeFileSync(pwFile, SECRETS.DUCKBAK_PASSWORD + "\n", { mode: 0o600 });
    const base = { ...process.env, NO_COLOR: "1", ...SECRETS, DUCKBAK_PASSWORD_FILE: pwFile, DUCKBAK_NEW_PASSWORD_FILE: pwFile, AWS_ACCESS_KEY_ID: "AKIAKEEPME" } as Record<string, string>;
    expect((await runBinary(["init", "--repo", join(dir, "repo")], { env: base })).code).toBe(0);
    writeFileSync(
      join(dir, "duckbak.toml"),
      `databases = ["data/results.duckdb"]\nbackup_dir = "bk"\nrepository = "repo"\n` +
        `notify_command = "env > notify.env"\n` +
        `[[database]]\npath = "data/results.duckdb"\nbefore_backup = "env >> before.env"\nafter_backup = "env >> after.env"\n`,
    );
    const r = await runBinary(["daily", "--json"], { cwd: dir, env: base });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.archive ?? out.backup?.archive).toBeTruthy();
    expect(out.snapshot).toBeTruthy();
    for (const name of ["before.env", "after.env", "notify.env"]) {
      const dump = readFileSync(join(dir, name), "utf8");
      expect([name, passwordLines(dump)]).toEqual([name, []]);
      expect(dump).toContain("AWS_ACCESS_KEY_ID=AKIAKEEPME\n");
    }
    expect(readFileSync(join(dir, "before.env"), "utf8")).toContain(`DUCKBAK_DATABASE=${join(dir, "data/results.duckdb")}\n`);
    expect(readFileSync(join(dir, "notify.env"), "utf8")).toContain("DUCKBAK_COMMAND=daily\n");
  });

  test("password_command does not see the other passwords (key add with DUCKBAK_NEW_PASSWORD)", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "pw"), SECRETS.DUCKBAK_PASSWORD + "\n", { mode: 0o600 });
    const env = { ...process.env, NO_COLOR: "1" } as Record<string, string>;
    delete env.DUCKBAK_PASSWORD;
    delete env.DUCKBAK_PASSWORD_FILE;
    expect((await runBinary(["init", "--repo", join(dir, "repo")], { env: { ...env, DUCKBAK_PASSWORD: SECRETS.DUCKBAK_PASSWORD } })).code).toBe(0);
    writeFileSync(join(dir, "duckbak.toml"), `repository = "repo"\npassword_command = "env > command.env; cat pw"\n`);
    const r = await runBinary(["key", "add"], { cwd: dir, env: { ...env, DUCKBAK_NEW_PASSWORD: SECRETS.DUCKBAK_NEW_PASSWORD, DUCKBAK_TO_PASSWORD: SECRETS.DUCKBAK_TO_PASSWORD } });
    expect(r.code).toBe(0);
    const dump = readFileSync(join(dir, "command.env"), "utf8");
    expect(dump).toContain("PATH=");
    expect(passwordLines(dump)).toEqual([]);
  });
});
