// Every failure a user can act on has its own class, a one-line message naming the file, and an
// exit code that scripts can rely on (documented in the README).

export const ExitCode = {
  OK: 0,
  /** The command failed; nothing (or nothing more) was done. */
  ERROR: 1,
  /** Bad arguments, unknown option, invalid config. */
  USAGE: 2,
  /** A batch where some databases succeeded and at least one failed. */
  PARTIAL: 3,
  /** A backup failed verification: it would not restore as it was taken. */
  VERIFY_FAILED: 4,
  /** `diff`: the comparison ran and found differences between a backup and the current databases. */
  DIFFERENT: 5,
  /** Repository: the password opens none of the repository's keys. */
  WRONG_PASSWORD: 6,
  /** `backup`: the backup was made, but a source database failed its own block checksums. */
  SOURCE_DAMAGED: 7,
  /** A remote store (S3) refused or failed: credentials, bucket, permissions, network after retries. */
  STORE_ERROR: 8,
  /** The named backup or archive does not exist. */
  NOT_FOUND: 10,
  /** The backup folder is locked by another duckbak run. */
  REPO_LOCKED: 11,
  /** `status`: a database has no recent backup, or the last daily run failed. */
  STALE: 12,
  INTERRUPTED: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export class DuckbakError extends Error {
  readonly exitCode: ExitCode;
  constructor(message: string, exitCode: ExitCode = ExitCode.ERROR, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.exitCode = exitCode;
  }
}

export class UsageError extends DuckbakError {
  constructor(message: string) {
    super(message, ExitCode.USAGE);
  }
}

export class ConfigError extends DuckbakError {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`, ExitCode.USAGE);
  }
}

export class DatabaseNotFoundError extends DuckbakError {
  constructor(readonly path: string) {
    super(`${path}: database file not found`);
  }
}

export class NotADuckDBError extends DuckbakError {
  constructor(readonly path: string, detail = "not a DuckDB database (no DUCK magic in its header)") {
    super(`${path}: ${detail}`);
  }
}

/**
 * Another process holds DuckDB's lock on the file: copying now could produce a torn backup.
 * `consequence` says what was not done, for commands other than backup.
 */
export class DatabaseLockedError extends DuckbakError {
  constructor(
    readonly path: string,
    readonly holder: { pid?: number; program?: string },
    waitedSeconds: number,
    consequence = "not copied, because a copy taken while a writer runs can be torn",
    remedy = "stop the writer or retry with --wait SECONDS",
  ) {
    const who = holder.pid ? `PID ${holder.pid}${holder.program ? ` (${holder.program})` : ""}` : "another process";
    const waited = waitedSeconds > 0 ? ` after waiting ${waitedSeconds}s` : "";
    super(`${path}: locked by ${who}${waited}; ${consequence} (${remedy})`);
  }
}

/** A restore target a writer has open: what restore says instead of a backup's words. */
export const restoreTargetLocked = (path: string, holder: { pid?: number; program?: string }) =>
  new DatabaseLockedError(path, holder, 0, "not restored over, because the writer would corrupt the restored file or be corrupted", "stop the writer, then restore again");

export class ArchiveNotFoundError extends DuckbakError {
  constructor(readonly ref: string, where: string, hint = "") {
    super(`${ref}: no such backup in ${where}${hint}`, ExitCode.NOT_FOUND);
  }
}

export class CorruptArchiveError extends DuckbakError {
  constructor(
    readonly path: string,
    readonly detail: string,
  ) {
    super(`${path}: ${detail}`, ExitCode.VERIFY_FAILED);
  }
}

/** Turns a Node/Bun file-system error into one line naming the file and the cause. */
export function fsError(err: unknown, path: string, action: string): DuckbakError {
  if (err instanceof DuckbakError) return err;
  const code = (err as NodeJS.ErrnoException)?.code;
  const cause = { cause: err };
  switch (code) {
    case "ENOENT":
      return new DuckbakError(`${path}: no such file or folder (${action})`, ExitCode.ERROR, cause);
    case "EACCES":
    case "EPERM":
      return new DuckbakError(`${path}: permission denied (${action})`, ExitCode.ERROR, cause);
    case "ENOSPC":
    case "EDQUOT":
      return new DuckbakError(`${path}: no space left on device (${action})`, ExitCode.ERROR, cause);
    case "EROFS":
      return new DuckbakError(`${path}: read-only file system (${action})`, ExitCode.ERROR, cause);
    case "ENOTDIR":
      return new DuckbakError(`${path}: a path component is not a folder (${action})`, ExitCode.ERROR, cause);
    case "EISDIR":
      return new DuckbakError(`${path}: is a folder, not a file (${action})`, ExitCode.ERROR, cause);
    // mkdir (recursive or not) on a path that is taken by a file.
    case "EEXIST":
      if (action === "create folder") return new DuckbakError(`${path}: is a file, not a folder`, ExitCode.ERROR, cause);
      return new DuckbakError(`${path}: already exists (${action})`, ExitCode.ERROR, cause);
    default: {
      const msg = err instanceof Error ? err.message : String(err);
      return new DuckbakError(`${path}: ${action} failed: ${msg}`, ExitCode.ERROR, cause);
    }
  }
}
