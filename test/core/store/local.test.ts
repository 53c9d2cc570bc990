import { describe, expect, test } from "bun:test";
import { readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../../helpers.ts";
import { LocalStore } from "../../../src/core/store/local.ts";
import { openStore, StoreNotFoundError } from "../../../src/core/store/index.ts";

describe("LocalStore", () => {
  test("put, get, getRange, stat, list, delete", async () => {
    const root = join(tempDir(), "repo");
    const store = openStore(root);
    expect(store).toBeInstanceOf(LocalStore);
    await store.put("data/ab/ab01", new Uint8Array([1, 2, 3, 4, 5]));
    await store.put("config", new TextEncoder().encode("x"));
    expect([...(await store.get("data/ab/ab01"))]).toEqual([1, 2, 3, 4, 5]);
    expect([...(await store.getRange("data/ab/ab01", 1, 3))]).toEqual([2, 3, 4]);
    await expect(store.getRange("data/ab/ab01", 3, 5)).rejects.toThrow(/shorter than expected/);
    expect(await store.stat("data/ab/ab01")).toEqual({ size: 5 });
    expect(await store.stat("data/ab/nope")).toBeNull();
    await expect(store.get("snapshots/x")).rejects.toBeInstanceOf(StoreNotFoundError);
    // A temporary of an unfinished put is never listed.
    writeFileSync(join(root, "data", "ab", ".duckbak-tmp.h.1.x.ab02"), "partial");
    const keys = async (p: string) => {
      const out: string[] = [];
      for await (const e of store.list(p)) out.push(e.key);
      return out.sort();
    };
    expect(await keys("data/")).toEqual(["data/ab/ab01"]);
    expect(await keys("")).toEqual(["config", "data/ab/ab01"]);
    expect(await keys("data/ab/ab0")).toEqual(["data/ab/ab01"]);
    expect(await keys("index/")).toEqual([]);
    // Private: files 0600, folders 0700, no temporaries left by puts.
    expect(statSync(join(root, "data", "ab", "ab01")).mode & 0o777).toBe(0o600);
    expect(statSync(join(root, "data", "ab")).mode & 0o777).toBe(0o700);
    expect(readdirSync(join(root, "data", "ab")).filter((n) => n.startsWith(".duckbak-tmp.")).length).toBe(1);
    await store.delete("data/ab/ab01");
    await store.delete("data/ab/ab01");
    expect(await store.stat("data/ab/ab01")).toBeNull();
    await expect(store.get("../x")).rejects.toThrow(/invalid store key/);
  });
});
