// Per-platform decisions for the native library, as tables: Windows and macOS cannot run here, so
// what the loader and the release build would do there is checked as pure functions.
import { describe, expect, test } from "bun:test";
import { bindingPackage, bunTarget, cacheRoots, hostLabel, nativeFileNames, privateFolderUsable, privateTempNames, RELEASE_TARGETS, releaseFileName } from "../../src/platform/native.ts";
import lock from "../../package-lock.json" with { type: "json" };

describe("release targets", () => {
  test("five targets, each with its file name, Bun target and bindings package", () => {
    const rows = RELEASE_TARGETS.map((t) => [releaseFileName("1.2.3", t), bunTarget(t), bindingPackage(t), nativeFileNames(t.platform)]);
    expect(rows).toEqual([
      ["duckbak-1.2.3-linux-x64", "bun-linux-x64", "@duckdb/node-bindings-linux-x64", ["duckdb.node", "libduckdb.so"]],
      ["duckbak-1.2.3-linux-arm64", "bun-linux-arm64", "@duckdb/node-bindings-linux-arm64", ["duckdb.node", "libduckdb.so"]],
      ["duckbak-1.2.3-windows-x64.exe", "bun-windows-x64", "@duckdb/node-bindings-win32-x64", ["duckdb.node", "duckdb.dll"]],
      ["duckbak-1.2.3-darwin-arm64", "bun-darwin-arm64", "@duckdb/node-bindings-darwin-arm64", ["duckdb.node", "libduckdb.dylib"]],
      ["duckbak-1.2.3-darwin-x64", "bun-darwin-x64", "@duckdb/node-bindings-darwin-x64", ["duckdb.node", "libduckdb.dylib"]],
    ]);
  });

  test("every target's bindings package is pinned in package-lock.json with an integrity hash, at the version npm ci installs", () => {
    const packages = lock.packages as Record<string, { version?: string; integrity?: string }>;
    const pinned = packages["node_modules/@duckdb/node-bindings"]!.version;
    for (const t of RELEASE_TARGETS) {
      const entry = packages[`node_modules/${bindingPackage(t)}`];
      expect(entry?.version).toBe(pinned!);
      expect(entry?.integrity).toMatch(/^sha512-/);
    }
  });

  test("musl is a Linux-only variant", () => {
    expect(bindingPackage({ platform: "linux", arch: "arm64" }, true)).toBe("@duckdb/node-bindings-linux-arm64-musl");
    expect(bindingPackage({ platform: "darwin", arch: "arm64" }, true)).toBe("@duckdb/node-bindings-darwin-arm64");
  });

  test("--version names the OS as the release files do", () => {
    expect([hostLabel("win32", "x64"), hostLabel("linux", "arm64"), hostLabel("darwin", "arm64")]).toEqual(["windows-x64", "linux-arm64", "darwin-arm64"]);
  });
});

describe("cache folders for the extracted library", () => {
  const cases: [string, Parameters<typeof cacheRoots>, string[]][] = [
    ["Linux: XDG first, then ~/.cache", ["linux", { env: { XDG_CACHE_HOME: "/x/cache", HOME: "/home/a" }, home: "/home/a" }], ["/x/cache/duckbak", "/home/a/.cache/duckbak"]],
    ["Linux: a relative XDG_CACHE_HOME is ignored", ["linux", { env: { XDG_CACHE_HOME: "rel", HOME: "/home/a" }, home: "/home/a" }], ["/home/a/.cache/duckbak"]],
    ["Linux: no HOME in the environment: the account's home", ["linux", { env: {}, home: "/home/a" }], ["/home/a/.cache/duckbak"]],
    ["Linux: no home at all: none (the temp-dir fallback follows)", ["linux", { env: {}, home: "" }], []],
    ["macOS: ~/Library/Caches", ["darwin", { env: { HOME: "/Users/a" }, home: "/Users/a" }], ["/Users/a/Library/Caches/duckbak"]],
    ["macOS: an explicit XDG_CACHE_HOME first", ["darwin", { env: { HOME: "/Users/a", XDG_CACHE_HOME: "/Users/a/.cache" }, home: "/Users/a" }], ["/Users/a/.cache/duckbak", "/Users/a/Library/Caches/duckbak"]],
    [
      "Windows: %LOCALAPPDATA%, then the profile's AppData\\Local, with backslashes and spaces kept",
      ["win32", { env: { LOCALAPPDATA: "C:\\Users\\Ann Lee\\AppData\\Local", USERPROFILE: "D:\\Profiles\\ann" }, home: "C:\\Users\\Ann Lee" }],
      ["C:\\Users\\Ann Lee\\AppData\\Local\\duckbak", "D:\\Profiles\\ann\\AppData\\Local\\duckbak"],
    ],
    ["Windows: the same folder twice is listed once", ["win32", { env: { LOCALAPPDATA: "C:\\Users\\a\\AppData\\Local", USERPROFILE: "C:\\Users\\a" }, home: "" }], ["C:\\Users\\a\\AppData\\Local\\duckbak"]],
    ["Windows: no LOCALAPPDATA (service account): the home folder's AppData\\Local", ["win32", { env: {}, home: "C:\\Windows\\system32\\config\\systemprofile" }], ["C:\\Windows\\system32\\config\\systemprofile\\AppData\\Local\\duckbak"]],
    ["Windows: drive-relative and relative values are ignored", ["win32", { env: { LOCALAPPDATA: "\\AppData", USERPROFILE: "C:rel" }, home: "" }], []],
    ["Windows: a UNC profile is absolute", ["win32", { env: { LOCALAPPDATA: "\\\\srv\\home\\a\\Local" }, home: "" }], ["\\\\srv\\home\\a\\Local\\duckbak"]],
    ["Windows: XDG_CACHE_HOME and HOME are not Windows conventions", ["win32", { env: { XDG_CACHE_HOME: "C:\\x", HOME: "C:\\h", LOCALAPPDATA: "C:\\L" }, home: "" }], ["C:\\L\\duckbak"]],
  ];
  for (const [name, args, expected] of cases) test(name, () => expect(cacheRoots(...args)).toEqual(expected));
});

describe("the temp-dir fallback folder", () => {
  const dir = { isDirectory: true, isSymbolicLink: false, uid: 1000, mode: 0o40700 };
  test("POSIX: only our own folder that no one else can write or read", () => {
    expect(privateFolderUsable("linux", dir, 1000)).toBe(true);
    expect(privateFolderUsable("darwin", dir, 1000)).toBe(true);
    expect(privateFolderUsable("linux", { ...dir, uid: 0 }, 1000)).toBe(false);
    expect(privateFolderUsable("linux", { ...dir, mode: 0o40777 }, 1000)).toBe(false);
    expect(privateFolderUsable("linux", { ...dir, mode: 0o40750 }, 1000)).toBe(false);
    expect(privateFolderUsable("linux", { ...dir, isSymbolicLink: true, isDirectory: false }, 1000)).toBe(false);
  });

  test("Windows: no POSIX modes or uids (stat reports 0o666 bits, uid 0): a real folder is enough, never a link", () => {
    expect(privateFolderUsable("win32", { ...dir, uid: 0, mode: 0o40666 }, 0)).toBe(true);
    expect(privateFolderUsable("win32", { isDirectory: false, isSymbolicLink: true, uid: 0, mode: 0o120666 }, 0)).toBe(false);
    expect(privateFolderUsable("win32", { isDirectory: false, isSymbolicLink: false, uid: 0, mode: 0o100666 }, 0)).toBe(false);
  });

  test("names: duckbak-<uid> on POSIX, duckbak on Windows (no uid; its temp dir is per user), then numbered", () => {
    expect(privateTempNames("linux", 1000, 3)).toEqual(["duckbak-1000", "duckbak-1000-1", "duckbak-1000-2"]);
    expect(privateTempNames("win32", undefined, 2)).toEqual(["duckbak", "duckbak-1"]);
  });
});
