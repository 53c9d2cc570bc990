// First contact: `duckbak init` writes a commented duckbak.toml for the databases it finds; the
// config is found from anywhere (--config, DUCKBAK_CONFIG, ./, XDG, /etc); databases accepts globs.
import { describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createSampleDatabases, runBinary, tempDir } from "../helpers.ts";

const env = (extra: Record<string, string> = {}) => ({ ...(process.env as Record<string, string>), NO_COLOR: "1", ...extra });

describe("duckbak init (without --repo)", () => {
  test("lists the DuckDB files of data/, leaves out others with a warning, prints the next commands, refuses to overwrite", async () => {
    const dir = tempDir();
    await createSampleDatabases(join(dir, "data"), { trades: 200 });
    writeFileSync(join(dir, "data/notes.duckdb"), "not a database");
    const r = await runBinary(["init"], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("data/notes.duckdb: left out, not a DuckDB database");
    expect(r.stdout).toStartWith("Wrote duckbak.toml (3 databases: data/audit_trail.duckdb, data/results.duckdb, data/tca.duckdb).\nNext:\n");
    expect(r.stdout).toContain("duckbak schedule install");
    const text = readFileSync(join(dir, "duckbak.toml"), "utf8");
    expect(text).toContain('databases = [\n  "data/audit_trail.duckdb",\n  "data/results.duckdb",\n  "data/tca.duckdb",\n]');
    expect(text).toContain('# backup_dir = "data/backups"');
    expect(text).toContain("# keep_days = 30");

    // The config it wrote works as written, and is not overwritten by a second init.
    expect((await runBinary(["backup", "--name", "first"], { cwd: dir })).code).toBe(0);
    const again = await runBinary(["init"], { cwd: dir });
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("duckbak.toml: already exists; not overwritten");
    expect(readFileSync(join(dir, "duckbak.toml"), "utf8")).toBe(text);
  });

  test("a glob given stays a glob; one that matches nothing is an error; --json", async () => {
    const dir = tempDir();
    await createSampleDatabases(join(dir, "db"), { trades: 100 });
    expect((await runBinary(["init", "nope/*.duckdb"], { cwd: dir })).stderr).toContain("'nope/*.duckdb' matches no file");
    const r = await runBinary(["init", "db/*.duckdb", "--json"], { cwd: dir });
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ ok: true, command: "init", entries: ["db/*.duckdb"], config_file: join(dir, "duckbak.toml") });
    expect(j.databases.length).toBe(3);
  });
});

describe("databases globs", () => {
  test("a glob's DuckDB files are backed up; a non-DuckDB file it matches fails alone (exit 3); no match is an error", async () => {
    const dir = tempDir();
    await createSampleDatabases(join(dir, "db"), { trades: 100 });
    writeFileSync(join(dir, "duckbak.toml"), 'databases = ["db/*.duckdb"]\n');
    const ok = await runBinary(["backup", "--name", "g1", "--json"], { cwd: dir });
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).databases.map((d: any) => d.entry)).toEqual(["audit_trail.duckdb", "results.duckdb", "tca.duckdb"]);

    writeFileSync(join(dir, "db/zz_notes.duckdb"), "plain text");
    const partial = await runBinary(["backup", "--name", "g2"], { cwd: dir });
    expect(partial.code).toBe(3);
    expect(partial.stderr).toContain("zz_notes.duckdb: not a DuckDB database");

    writeFileSync(join(dir, "duckbak.toml"), 'databases = ["missing/*.duckdb"]\n');
    const none = await runBinary(["backup"], { cwd: dir });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("missing/*.duckdb' matches no file");
  });
});

describe("config discovery", () => {
  test("--config, DUCKBAK_CONFIG, ./duckbak.toml, then $XDG_CONFIG_HOME/duckbak; said when not found here", async () => {
    const root = tempDir();
    const xdg = join(root, "xdg");
    const project = join(root, "project");
    const elsewhere = join(root, "elsewhere");
    for (const d of [join(xdg, "duckbak"), project, elsewhere]) mkdirSync(d, { recursive: true });
    writeFileSync(join(xdg, "duckbak/duckbak.toml"), `backup_dir = ${JSON.stringify(join(root, "user-backups"))}\n`);
    writeFileSync(join(project, "duckbak.toml"), `backup_dir = ${JSON.stringify(join(root, "project-backups"))}\n`);
    const list = async (cwd: string, extra: Record<string, string> = {}, args: string[] = []) => {
      const r = await runBinary(["list", "--json", ...args], { cwd, env: env({ XDG_CONFIG_HOME: xdg, ...extra }) });
      return { dir: JSON.parse(r.stdout).backup_dir as string, stderr: r.stderr };
    };
    // From elsewhere: the user's config, and a note saying so.
    const user = await list(elsewhere);
    expect(user.dir).toBe(join(root, "user-backups"));
    expect(user.stderr).toContain(`duckbak: using the config ${join(xdg, "duckbak/duckbak.toml")} (no duckbak.toml here)`);
    // In the project: its own, silently.
    expect(await list(project)).toEqual({ dir: join(root, "project-backups"), stderr: "" });
    // DUCKBAK_CONFIG beats ./duckbak.toml, --config beats both.
    expect((await list(project, { DUCKBAK_CONFIG: join(xdg, "duckbak/duckbak.toml") })).dir).toBe(join(root, "user-backups"));
    const viaFlag = await list(elsewhere, { DUCKBAK_CONFIG: join(xdg, "duckbak/duckbak.toml") }, ["--config", join(project, "duckbak.toml")]);
    expect(viaFlag.dir).toBe(join(root, "project-backups"));
    const missing = await runBinary(["list"], { cwd: elsewhere, env: env({ DUCKBAK_CONFIG: join(root, "nope.toml") }) });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("nope.toml: config file not found (DUCKBAK_CONFIG)");
    // No config anywhere, no backup folder: not silently the wrong place.
    const none = await list(elsewhere, { XDG_CONFIG_HOME: join(root, "empty") });
    expect(none.dir).toBe(join(elsewhere, "data/backups"));
    expect(none.stderr).toContain("no config found (looked for");
    expect(none.stderr).toContain("run 'duckbak init' here, or pass --config or --backup-dir");
  });

  test("a mistyped config key suggests the right one", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "duckbak.toml"), "backupdir = 'x'\n[retention]\nkeep_day = 3\n");
    expect((await runBinary(["list"], { cwd: dir })).stderr).toContain("unknown key 'backupdir'; did you mean backup_dir?");
    writeFileSync(join(dir, "duckbak.toml"), "[retention]\nkeep_day = 3\n");
    expect((await runBinary(["list"], { cwd: dir })).stderr).toContain("unknown key 'retention.keep_day'; did you mean keep_days?");
  });
});
