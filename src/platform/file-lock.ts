// DuckDB's cross-process lock, taken without DuckDB: a POSIX fcntl(F_SETLK) lock on the whole main
// file (DuckDB's LocalFileSystem takes F_RDLCK for read-only opens, F_WRLCK for writers). Holding
// a read lock keeps every DuckDB writer out, like a read-only DuckDB open, for files the embedded
// DuckDB cannot open (a newer storage version, a WAL it fails to replay). The lock lives as long
// as the descriptor and belongs to the process: only the snapshot holder takes it.
import { openSync, closeSync } from "node:fs";
import { readlink } from "node:fs/promises";

// Linux x86_64 and aarch64 share asm-generic's struct flock (LP64):
//   short l_type @0; short l_whence @2; off_t l_start @8; off_t l_len @16; pid_t l_pid @24; size 32.
// F_RDLCK = 0, SEEK_SET = 0, start 0, length 0 (= to the end): a zeroed struct is a whole-file read lock.
const FLOCK_SIZE = 32;
const F_GETLK = 5;
const F_SETLK = 6;
const EAGAIN = 11;
const EACCES = 13;

export type RawLockResult = { ok: true; fd: number } | { ok: false; locked: boolean; error: string };

let libc: { fcntl: (fd: number, cmd: number, arg: unknown) => number; errno: () => number } | null = null;

async function loadLibc() {
  if (libc) return libc;
  const { dlopen, FFIType, read } = await import("bun:ffi");
  const symbols = {
    fcntl: { args: [FFIType.i32, FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  } as const;
  let lib;
  try {
    lib = dlopen("libc.so.6", symbols);
  } catch {
    lib = dlopen("libc.so", symbols);
  }
  libc = {
    // fcntl is variadic; on x86_64 and aarch64 Linux a pointer third argument is passed as a fixed one would be.
    fcntl: (fd, cmd, arg) => lib.symbols.fcntl(fd, cmd, arg as never),
    errno: () => read.i32(lib.symbols.__errno_location()!, 0),
  };
  return libc;
}

export function rawLockSupported(): string | null {
  if (process.platform !== "linux") return `taking DuckDB's lock without DuckDB is implemented for Linux only, not ${process.platform}`;
  if (process.arch !== "x64" && process.arch !== "arm64") return `taking DuckDB's lock without DuckDB is implemented for x64 and arm64 only, not ${process.arch}`;
  return null;
}

/** Takes a shared whole-file fcntl lock on `path`; the descriptor must stay open while the lock matters. */
export async function takeReadLock(path: string): Promise<RawLockResult> {
  const unsupported = rawLockSupported();
  if (unsupported) return { ok: false, locked: false, error: unsupported };
  const { fcntl, errno } = await loadLibc();
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    return { ok: false, locked: false, error: (err as Error).message };
  }
  const flock = new Uint8Array(FLOCK_SIZE);
  if (fcntl(fd, F_SETLK, flock) === 0) return { ok: true, fd };
  const code = errno();
  try {
    if (code === EAGAIN || code === EACCES) {
      // Who holds it, in DuckDB's words, so that the usual lock message names the writer.
      const probe = new Uint8Array(FLOCK_SIZE);
      const pid = fcntl(fd, F_GETLK, probe) === 0 ? new DataView(probe.buffer).getInt32(24, true) : 0;
      const program = pid > 0 ? await readlink(`/proc/${pid}/exe`).catch(() => "unknown") : "unknown";
      return { ok: false, locked: true, error: `Could not set lock on file "${path}": Conflicting lock is held in ${program} (PID ${pid})` };
    }
  } finally {
    closeSync(fd);
  }
  return { ok: false, locked: false, error: `fcntl(F_SETLK) failed on ${path}: errno ${code}` };
}
