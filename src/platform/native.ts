// What differs per OS for DuckDB's native library: the files of each platform's
// @duckdb/node-bindings package, the release targets, and where the embedded library is extracted
// at run time. Pure functions of (platform, environment), so that Windows and macOS decisions are
// unit-tested on Linux; the loader (src/core/duckdb/embedded-binding.ts) and the build
// (scripts/build.ts) call them. userCacheRoots alone reads this process's environment.
import { homedir } from "node:os";
import { posix, win32 } from "node:path";

export type Platform = "linux" | "darwin" | "win32";
export type Arch = "x64" | "arm64";

export interface Target {
  platform: Platform;
  arch: Arch;
}

/** The binaries `npm run release` builds. */
export const RELEASE_TARGETS: readonly Target[] = [
  { platform: "linux", arch: "x64" },
  { platform: "linux", arch: "arm64" },
  { platform: "win32", arch: "x64" },
  { platform: "darwin", arch: "arm64" },
  { platform: "darwin", arch: "x64" },
];

/** The Node-API addon; it finds the library beside itself (RUNPATH=$ORIGIN, @loader_path, DLL search path). */
export const ADDON_NAME = "duckdb.node";

export function libraryName(platform: Platform): string {
  switch (platform) {
    case "linux":
      return "libduckdb.so";
    case "darwin":
      return "libduckdb.dylib";
    case "win32":
      return "duckdb.dll";
  }
}

/** The files duckbak embeds from a platform's bindings package: the addon and DuckDB's library. */
export function nativeFileNames(platform: Platform): string[] {
  return [ADDON_NAME, libraryName(platform)];
}

/** The npm package holding a platform's native files (glibc unless `musl`). */
export function bindingPackage({ platform, arch }: Target, musl = false): string {
  return `@duckdb/node-bindings-${platform}-${arch}${musl && platform === "linux" ? "-musl" : ""}`;
}

/** The OS as users and release file names call it ("windows", not Node's "win32"). */
export function osName(platform: Platform): string {
  return platform === "win32" ? "windows" : platform;
}

/** `bun build --compile --target=` for a target. */
export function bunTarget({ platform, arch }: Target): string {
  return `bun-${osName(platform)}-${arch}`;
}

/** `duckbak-<version>-<os>-<arch>[.exe]`. */
export function releaseFileName(version: string, target: Target): string {
  return `duckbak-${version}-${osName(target.platform)}-${target.arch}${target.platform === "win32" ? ".exe" : ""}`;
}

/** `linux-x64`, `windows-x64`, `darwin-arm64`: what `--version` prints. */
export function hostLabel(platform: string, arch: string): string {
  return `${platform === "win32" ? "windows" : platform}-${arch}`;
}

export interface CacheEnv {
  env: Record<string, string | undefined>;
  /** os.homedir(), or "" when the user has none. */
  home: string;
}

/**
 * Folders under which the embedded library is extracted (into `<root>/<hash>`), best first; the
 * loader tries each, then a private folder in the temp dir. Only absolute paths count: a relative
 * one would put a cache below every working directory (the XDG spec says to ignore it).
 *   Linux:   $XDG_CACHE_HOME/duckbak, ~/.cache/duckbak
 *   macOS:   ~/Library/Caches/duckbak (Apple's per-user cache folder; XDG_CACHE_HOME first when set)
 *   Windows: %LOCALAPPDATA%\duckbak (per user, not roamed), %USERPROFILE%\AppData\Local\duckbak
 */
export function cacheRoots(platform: Platform, { env, home }: CacheEnv): string[] {
  const path = platform === "win32" ? win32 : posix;
  const roots: string[] = [];
  const add = (base: string | undefined, ...parts: string[]) => {
    if (base && path.isAbsolute(base) && (platform !== "win32" || /^([a-zA-Z]:[\\/]|\\\\)/.test(base))) {
      const root = path.join(base, ...parts, "duckbak");
      if (!roots.includes(root)) roots.push(root);
    }
  };
  if (platform === "win32") {
    add(env.LOCALAPPDATA);
    add(env.USERPROFILE || home, "AppData", "Local");
    return roots;
  }
  add(env.XDG_CACHE_HOME);
  const h = env.HOME || home;
  if (platform === "darwin") add(h, "Library", "Caches");
  else add(h, ".cache");
  return roots;
}

/** cacheRoots of this process: its platform, environment and home folder (none when the user has no home). */
export function userCacheRoots(): string[] {
  let home = "";
  try {
    home = homedir();
  } catch {
    // no home folder for this user
  }
  return cacheRoots(process.platform as Platform, { env: process.env, home });
}

/**
 * Whether a file or folder is ours and private (owned by `uid`, nothing for group or others) on
 * POSIX. Windows has no POSIX modes (stat reports 0o666-ish bits and uid 0): true there.
 */
export function privateToUser(platform: Platform, st: { uid: number; mode: number }, uid: number): boolean {
  return platform === "win32" || (st.uid === uid && (st.mode & 0o077) === 0);
}

/**
 * Whether a folder found at the temp-dir fallback's name may hold the library: ours and private
 * on POSIX (a folder others can write could be swapped under us). On Windows the temp dir is
 * already per user (%LOCALAPPDATA%\Temp), so a real folder, not a link, is enough.
 */
export function privateFolderUsable(platform: Platform, st: { isDirectory: boolean; isSymbolicLink: boolean; uid: number; mode: number }, uid: number): boolean {
  return st.isDirectory && !st.isSymbolicLink && privateToUser(platform, st, uid);
}

/** The temp-dir fallback's folder names: `duckbak-<uid>` (Windows has no uid: `duckbak`), then numbered. */
export function privateTempNames(platform: Platform, uid: number | undefined, count = 10): string[] {
  const base = platform === "win32" || uid === undefined ? "duckbak" : `duckbak-${uid}`;
  return Array.from({ length: count }, (_, i) => (i === 0 ? base : `${base}-${i}`));
}
