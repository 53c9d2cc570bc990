// The release build's check of each downloaded bindings package against package-lock.json.
import { expect, test } from "bun:test";
import { integrityOf, lockedPackage } from "../../scripts/release.ts";
import { bindingPackage } from "../../src/platform/native.ts";

test("integrity: the lock file's sha512 of a package tarball is recomputed; one changed byte fails it", () => {
  const data = new TextEncoder().encode("a package tarball");
  const sri = integrityOf(data, "sha512-");
  expect(sri).toMatch(/^sha512-[A-Za-z0-9+/]{86}==$/);
  expect(integrityOf(data, sri)).toBe(sri);
  data[0]! ^= 1;
  expect(integrityOf(data, sri)).not.toBe(sri);
});

test("lockedPackage: every release target's bindings are pinned; an unknown package is refused by name", () => {
  expect(lockedPackage(bindingPackage({ platform: "win32", arch: "x64" })).version).toBe(lockedPackage("@duckdb/node-bindings").version);
  expect(() => lockedPackage("@duckdb/node-bindings-sunos-sparc")).toThrow("package-lock.json: no version and integrity for @duckdb/node-bindings-sunos-sparc");
});
