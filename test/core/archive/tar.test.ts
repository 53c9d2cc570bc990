import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createTarDecoder } from "modern-tar";
import { TAR_EOF, tarHeader, tarPadding } from "../../../src/core/archive/tar.ts";
import { tempDir } from "../../helpers.ts";

function entry(name: string, data: Uint8Array, mtime = new Date("2024-01-15T12:00:00Z")): Uint8Array[] {
  return [tarHeader({ name, size: data.length, mtime }), data, tarPadding(data.length)];
}

async function gnuTar(args: string[], cwd: string): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn(["tar", ...args], { cwd, stdout: "pipe", stderr: "pipe", env: { ...process.env, LC_ALL: "C", TZ: "UTC" } });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

describe("tar headers", () => {
  test("GNU tar extracts short and long (pax) names with their exact bytes and mtime", async () => {
    const dir = tempDir();
    const long = "a-database-file-with-a-rather-long-name-".repeat(4) + "ünïcode.duckdb";
    const a = new TextEncoder().encode("hello");
    const b = new Uint8Array(1000).map((_, i) => i % 251);
    writeFileSync(join(dir, "t.tar"), Buffer.concat([...entry("short.duckdb", a), ...entry(long, b), TAR_EOF]));
    const list = await gnuTar(["-tvf", "t.tar"], dir);
    expect(list.code).toBe(0);
    expect(list.out).toContain("2024-01-15 12:00 short.duckdb");
    expect(list.out).toContain("rather-long-name-\\303\\274n\\303\\257code.duckdb"); // C locale escapes UTF-8
    expect((await gnuTar(["-xf", "t.tar"], dir)).code).toBe(0);
    expect(readFileSync(join(dir, "short.duckdb"))).toEqual(Buffer.from(a));
    expect(readFileSync(join(dir, long))).toEqual(Buffer.from(b));
  });

  test("sizes past ustar's 8 GiB limit are encoded validly (GNU tar and modern-tar read the size)", async () => {
    const dir = tempDir();
    const size = 9_000_000_123;
    writeFileSync(join(dir, "big.tar"), tarHeader({ name: "big.duckdb", size, mtime: new Date(0) }));
    const list = await gnuTar(["-tvf", "big.tar"], dir);
    expect(list.out).toContain(`${size} 1970-01-01 00:00 big.duckdb`);
    const reader = new Blob([readFileSync(join(dir, "big.tar"))]).stream().pipeThrough(createTarDecoder({ strict: true })).getReader();
    const first = await reader.read();
    expect(first.value?.header.name).toBe("big.duckdb");
    expect(first.value?.header.size).toBe(size);
    await reader.cancel().catch(() => {});
  });
});
