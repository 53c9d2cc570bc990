// File-system behaviour that differs on Windows, decided here as pure functions (unit-tested on
// Linux; src/core/fsutil.ts does the I/O).
//
// Rename over an open file: POSIX replaces the name whatever has the old file open. Windows
// refuses while another program holds the file open without FILE_SHARE_DELETE (an editor, a log
// viewer, a virus scanner or the search indexer reading a fresh file for a moment): Bun reports
// EPERM (ERROR_ACCESS_DENIED) or EBUSY (ERROR_SHARING_VIOLATION). Scanners let go within
// moments, so the rename is retried for a few seconds, then reported as "in use" by name.
//
// Modes: Windows has no POSIX permission bits (chmod only toggles the read-only attribute), so
// duckbak does not chmod there; files it creates inherit the folder's ACL, which under a user's
// profile is already private to that user.

/** Delays (ms) between attempts at a rename Windows refused because the target is open: ~3 s in all. */
export const WINDOWS_RENAME_RETRY_MS: readonly number[] = [20, 50, 100, 200, 400, 800, 1600];

/** Whether a failed rename may be the target (or source) being open in another program, worth retrying. */
export function renameBlockedByOpenFile(platform: string, code: string | undefined): boolean {
  return platform === "win32" && (code === "EPERM" || code === "EBUSY" || code === "EACCES");
}

/** Whether duckbak sets POSIX modes on this platform. */
export function hasPosixModes(platform: string): boolean {
  return platform !== "win32";
}

/**
 * Whether a failed chmod is a file system without POSIX modes (FAT, exFAT, some SMB mounts) rather
 * than a real refusal: the file then keeps the mount's fixed permissions, and the write goes on.
 */
export function chmodUnsupported(code: string | undefined): boolean {
  return code === "ENOTSUP" || code === "EOPNOTSUPP" || code === "ENOSYS" || code === "EPERM";
}

/**
 * Whether a file may still be open for writing here while DuckDB opens it read-only. Windows:
 * DuckDB's read-only CreateFileW shares read access only, so it fails (a sharing violation)
 * while any handle with write access is open; restore then closes its temporaries first.
 */
export function openableWhileWriting(platform: string): boolean {
  return platform !== "win32";
}
