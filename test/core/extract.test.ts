import { describe, expect, test } from "bun:test";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileSink } from "../../src/core/extract.ts";
import { tempDir } from "../helpers.ts";

const work = tempDir("duckbak-extract-");
const openFds = () => readdirSync("/proc/self/fd").length;

describe("fileSink", () => {
  test("deferFlush: close starts the last flush and returns; finish waits for it, then closes the file, once", async () => {
    const path = join(work, "deferred");
    let finish: (() => Promise<void>) | undefined;
    const before = openFds();
    const sink = fileSink(path, "the target", { deferFlush: (f) => void (finish = f) });
    await sink.write(new Uint8Array(3 << 20).fill(7));
    await sink.close();
    expect(finish).toBeDefined();
    expect(openFds()).toBe(before + 1); // still open: closing it would drop DuckDB's locks on it
    await finish!();
    await finish!();
    expect(openFds()).toBe(before);
    expect(readFileSync(path)).toEqual(Buffer.alloc(3 << 20, 7));
  });

  test("without deferFlush, close flushes and closes the file itself", async () => {
    const before = openFds();
    const sink = fileSink(join(work, "plain"), "the target");
    await sink.write(new Uint8Array(10).fill(1));
    await sink.close();
    expect(openFds()).toBe(before);
  });
});
