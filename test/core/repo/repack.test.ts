// Which packs cleanup repacks: the largest unused share first, until the unused bytes left are
// within --max-unused of the pack bytes.
import { describe, expect, test } from "bun:test";
import { choosePacksToRepack, type PackUse } from "../../../src/core/repo/repack.ts";
import { parseMaxUnused } from "../../../src/cli/commands/cleanup.ts";

const pack = (size: number, unused: number): PackUse => ({ size, usedBytes: size - unused, unusedBytes: unused });

describe("choosePacksToRepack", () => {
  const live = new Map([
    ["a", pack(100, 10)],
    ["b", pack(100, 90)],
    ["c", pack(100, 0)],
    ["d", pack(100, 40)],
  ]);
  test("largest unused share first, until the rest is within the limit", () => {
    // 140 unused of 400: 0% takes every partly used pack, fullest of garbage first; a full pack never.
    expect(choosePacksToRepack(live, 0)).toEqual(["b", "d", "a"]);
    // After b: 50 of 310 (16%); after d: 10 of 270 (3.7%).
    expect(choosePacksToRepack(live, 0.1)).toEqual(["b", "d"]);
    expect(choosePacksToRepack(live, 0.2)).toEqual(["b"]);
    expect(choosePacksToRepack(live, 0.35)).toEqual([]);
    expect(choosePacksToRepack(live, 1)).toEqual([]);
    expect(choosePacksToRepack(new Map(), 0)).toEqual([]);
  });
  test("--max-unused: a percentage 0–100", () => {
    expect(parseMaxUnused(undefined)).toBeUndefined();
    expect(parseMaxUnused("10%")).toBe(0.1);
    expect(parseMaxUnused("2.5")).toBe(0.025);
    expect(parseMaxUnused("100%")).toBe(1);
    for (const bad of ["-1", "101%", "ten", "", "5%%"]) expect(() => parseMaxUnused(bad)).toThrow("--max-unused");
  });
});
