import type { CAC } from "cac";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { CONFIG_FILE_NAME, DEFAULT_BACKUP_DIR, DEFAULT_DATA_DIR, DEFAULT_LOG_FILE, loadConfig } from "../../core/config.ts";
import { DuckbakError, ExitCode } from "../../core/errors.ts";
import { DEFAULT_LOCK_WAIT_SECONDS } from "../../core/lock.ts";
import { readDuckDBHeader } from "../../core/duckdb/open.ts";
import { DEFAULT_POLICY } from "../../core/retention.ts";
import { AtomicFile } from "../../core/fsutil.ts";
import { Repository } from "../../core/repo/repository.ts";
import { openStore } from "../../core/store/index.ts";
import { expandDatabaseGlob, type CommonFlags } from "../context.ts";
import { REPO_OPTION, repoLocation, repoPassword } from "../repo.ts";
import { displayPath, plural, printJson, printWarning } from "../output.ts";

interface InitFlags extends CommonFlags {
  repo?: string;
}

// Two kinds of init: with a repository location (--repo, DUCKBAK_REPOSITORY, or `repository` in
// the config), a new encrypted snapshot repository; without one, a commented duckbak.toml here.
export function registerInit(cli: CAC): void {
  cli
    .command("init [...databases]", "Write a commented duckbak.toml here for the DuckDB files found (data/*.duckdb, or the paths/globs given); with --repo, create an encrypted snapshot repository")
    .option(...REPO_OPTION)
    .option("--config <file>", "Config file (default: ./duckbak.toml when present); with --repo only")
    .option("--json", "Print the result as JSON")
    .example("duckbak init                              # duckbak.toml listing data/*.duckdb")
    .example("duckbak init 'db/*.duckdb' /srv/app/main.duckdb")
    .example("DUCKBAK_PASSWORD=... duckbak init --repo /mnt/backup/duckbak")
    .action(async (databases: string[], flags: InitFlags) => runInit(databases, flags));
}

async function runInit(databases: string[], flags: InitFlags): Promise<number> {
  // Only ./duckbak.toml (or --config) counts for the repository: a user-wide config must not turn
  // `init` in a new project folder into a repository init.
  const here = existsSync(CONFIG_FILE_NAME);
  const config = flags.repo === undefined && !process.env.DUCKBAK_REPOSITORY && !flags.config && !here ? null : loadConfig(flags.config);
  const location = config && repoLocation(flags.repo, config);
  if (config && location) {
    const repo = await Repository.init(openStore(location, { s3: config.s3 }), repoPassword(config));
    if (flags.json) return printJson("init", { repository: repo.location, id: repo.config.id });
    console.log(`Created repository ${repo.location}. Keep the password safe: without it the snapshots cannot be read.`);
    return 0;
  }
  return writeConfig(databases, flags);
}

/** The DuckDB files to list: those named (globs expanded), else data/*.duckdb; others reported and left out. */
async function findDatabases(args: string[]): Promise<{ entries: string[]; found: string[]; skipped: { path: string; why: string }[] }> {
  const patterns = args.length > 0 ? args : [join(DEFAULT_DATA_DIR, "*.duckdb")];
  const found: string[] = [];
  const skipped: { path: string; why: string }[] = [];
  const entries: string[] = [];
  for (const pattern of patterns) {
    let files: string[];
    try {
      files = expandDatabaseGlob(pattern, "init");
    } catch (err) {
      if (args.length > 0) throw err;
      continue; // no data/*.duckdb yet: the config says where to put them
    }
    const ok: string[] = [];
    for (const f of files) {
      const why = !existsSync(f) ? "no such file" : (await readDuckDBHeader(f).then(() => null, (e: Error) => e.message.replace(`${f}: `, "")));
      if (why) skipped.push({ path: f, why });
      else ok.push(f);
    }
    found.push(...ok);
    // A glob given stays a glob (new databases are picked up); what data/*.duckdb found is listed.
    if (/[*?[{]/.test(pattern) && args.length > 0) entries.push(pattern);
    else entries.push(...ok.map((f) => displayPath(f)));
  }
  return { entries: [...new Set(entries)], found: [...new Set(found)], skipped };
}

/** Writes ./duckbak.toml for the databases found (never over an existing one); also `schedule install --init`. */
export async function createConfig(args: string[]) {
  const path = resolve(CONFIG_FILE_NAME);
  if (existsSync(path)) throw new DuckbakError(`${path}: already exists; not overwritten (edit it, or remove it and run duckbak init again)`, ExitCode.USAGE);
  const { entries, found, skipped } = await findDatabases(args);
  for (const s of skipped) printWarning(`${displayPath(s.path)}: left out, ${s.why}`);
  // Temp + rename without replacing: a config written meanwhile by someone else is not clobbered.
  const file = await AtomicFile.create(path);
  await file.write(new TextEncoder().encode(configText(entries)));
  await file.commitNew([path]);
  return { path, entries, found, skipped };
}

async function writeConfig(args: string[], flags: InitFlags): Promise<number> {
  const { path, entries, found, skipped } = await createConfig(args);
  const next = [
    ["duckbak backup", "a first backup (into data/backups)"],
    ["duckbak list", "the backups; duckbak verify NAME proves one restores"],
    ["duckbak schedule install", "the nightly `duckbak daily` (02:00; --at HH:MM or --every 1h)"],
    ["duckbak status", "for monitoring: exit 12 when backups are stale"],
  ];
  if (flags.json) return printJson("init", { config_file: path, databases: found, entries, skipped: skipped.map((s) => ({ path: s.path, reason: s.why })), next_commands: next.map(([c]) => c) });
  const what = found.length ? `${plural(found.length, "database")}: ${found.map(displayPath).join(", ")}` : `no DuckDB file found yet; it backs up ${entries[0] ?? "data/*.duckdb"}`;
  console.log(`Wrote ${displayPath(path)} (${what}).`);
  console.log("Next:");
  const width = Math.max(...next.map(([c]) => c!.length));
  for (const [c, why] of next) console.log(`  ${c!.padEnd(width)}  # ${why}`);
  return 0;
}

const q = (s: string) => JSON.stringify(s);

/** The config `init` writes: every key a new user needs, defaults spelled out as comments. */
export function configText(entries: string[]): string {
  const dbs = entries.length ? entries : [`${DEFAULT_DATA_DIR}/*.duckdb`];
  return `# duckbak configuration, written by \`duckbak init\`. Relative paths are relative to this
# file's folder. Commented-out lines show the defaults; README.md ("Configuration") has every key.
# Found by duckbak from this folder, or pass --config; see \`duckbak --help\`.

# The DuckDB databases to back up: paths or globs. A glob that matches nothing is an error; a file
# it matches that is not a DuckDB database fails on its own, the others are still backed up.
databases = [
${dbs.map((d) => `  ${q(d)},`).join("\n")}
]

# Where archives go.
# backup_dir = ${q(DEFAULT_BACKUP_DIR)}
# The log of \`duckbak daily\` (one line per step; \`duckbak status\` reads it).
# log_file = ${q(DEFAULT_LOG_FILE)}
# gzip (.tar.gz), zstd (.tar.zst: faster, smaller) or none (.tar).
# compression = "gzip"
# Seconds to wait for a database that a writer holds open (a copy taken while it writes can be torn).
# wait = 0
# Seconds to wait for another duckbak run on the backup folder.
# lock_wait = ${DEFAULT_LOCK_WAIT_SECONDS}
# Permissions of the files duckbak writes (folders get x where r is set).
# file_mode = "0600"

# What \`duckbak cleanup\` and \`duckbak daily\` keep. Without keep_days/keep_minimum, only the
# keep_last/daily/weekly/monthly/yearly rules set apply.
[retention]
# keep_days = ${DEFAULT_POLICY.keepDays}
# keep_minimum = ${DEFAULT_POLICY.keepMinimum}
# keep_last = 3
# keep_daily = 7
# keep_weekly = 4
# keep_monthly = 12
# keep_yearly = "forever"
`;
}
