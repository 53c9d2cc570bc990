// The snapshot repository as commands reach it: --repo, else DUCKBAK_REPOSITORY, else
// `repository` in duckbak.toml; the password from DUCKBAK_PASSWORD, DUCKBAK_PASSWORD_FILE or
// `password_command`.
import { resolve } from "node:path";
import type { Config } from "../core/config.ts";
import { UsageError } from "../core/errors.ts";
import { resolvePassword } from "../core/crypto/password.ts";
import { Repository } from "../core/repo/repository.ts";
import { openStore } from "../core/store/index.ts";
import { printNote } from "./output.ts";
import type { RepoLockInfo } from "../core/repo/locks.ts";
import { DEFAULT_LOCK_WAIT_SECONDS } from "../core/lock.ts";
import type { RepositoryOpening } from "../core/repo/backup.ts";

// Commands that only read a repository (verify, sql) wait for a cleanup, never for a backup.
export const REPO_LOCK_WAIT_OPTION = [
  "--lock-wait <seconds>",
  `Repository: wait up to this long for a cleanup that holds it (default: lock_wait from the config, else ${DEFAULT_LOCK_WAIT_SECONDS})`,
] as const;

export const REPO_OPTION = ["--repo <location>", "Snapshot repository instead of the backup folder (default: DUCKBAK_REPOSITORY, else repository from the config)"] as const;

const isUrl = (s: string) => /^[a-z][a-z0-9+.-]*:\/\//i.test(s);

/** The repository location in force, or null when archives are meant. */
export function repoLocation(flag: unknown, config: Config): string | null {
  const raw = flag !== undefined && flag !== true ? String(flag) : process.env.DUCKBAK_REPOSITORY || config.repository;
  if (!raw) return null;
  return isUrl(raw) ? raw : resolve(raw);
}

/**
 * The repository a command that reads one target (list, verify, restore, ls, sql) reads, or null
 * for the backup folder's archives: --backup-dir given means the archives (over a configured
 * repository); with --repo too it is refused rather than one of them silently ignored.
 */
export function readLocation(flags: { repo?: unknown; backupDir?: unknown }, config: Config): string | null {
  if (flags.backupDir === undefined) return repoLocation(flags.repo, config);
  if (flags.repo !== undefined) throw new UsageError("--repo and --backup-dir: give one (the repository's snapshots, or the folder's archives)");
  return null;
}

/** Whether the backup folder's archives are in use: a repository alone replaces them; with backup_dir (or --backup-dir) too, both are made. */
export function archivesInUse(location: string | null, config: Config, backupDirFlag: unknown): boolean {
  return !location || config.backupDir !== undefined || backupDirFlag !== undefined;
}

export function repoPassword(config: Config): string {
  return resolvePassword({ command: config.passwordCommand });
}

export async function openRepository(location: string, config: Config, password = repoPassword(config)): Promise<Repository> {
  return Repository.open(openStore(location, { s3: config.s3 }), password);
}

/** A repository opened at most once, however many times `open` is called (a run, then its monitoring). */
export function repositoryOnce(location: string, config: Config, password = () => repoPassword(config)): { location: string; open: () => Promise<Repository> } {
  let opening: Promise<Repository> | undefined;
  return { location, open: () => (opening ??= openRepository(location, config, password())) };
}

/**
 * Starts opening a repository: its config arrives first, then (the password's key derived) the
 * repository; `whileDeriving` runs once the derivation is under way (Repository.open).
 */
export function startOpening(location: string, config: Config, whileDeriving?: () => void): RepositoryOpening {
  const store = openStore(location, { s3: config.s3 });
  const repoConfig = Repository.readConfig(store);
  const repository = (async () => Repository.open(store, repoPassword(config), repoConfig, whileDeriving))();
  // Awaited by their user.
  repoConfig.catch(() => {});
  repository.catch(() => {});
  return { location, config: repoConfig, repository };
}

/** A destination location (copy --to, offsite): URLs as given, folders made absolute. */
export function targetLocation(raw: string): string {
  return isUrl(raw) ? raw : resolve(raw);
}

/** The destination's password: DUCKBAK_TO_PASSWORD or DUCKBAK_TO_PASSWORD_FILE, else the source's. */
export function targetPassword(config: Config, env: Record<string, string | undefined> = process.env): string {
  if (env.DUCKBAK_TO_PASSWORD || env.DUCKBAK_TO_PASSWORD_FILE)
    return resolvePassword({ env, variable: "DUCKBAK_TO_PASSWORD" });
  return repoPassword(config);
}

export function repoLockNotice(waitSeconds: number) {
  return (h: Pick<RepoLockInfo, "command" | "pid" | "host">) =>
    printNote(`repository locked by ${h.command} (PID ${h.pid} on ${h.host}); waiting up to ${waitSeconds}s`);
}
