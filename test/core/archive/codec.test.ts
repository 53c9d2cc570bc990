import { describe, expect, test } from "bun:test";
import { gunzipSync } from "node:zlib";
import { compressMember, storedMember } from "../../../src/core/archive/codec.ts";

function randomBytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

describe("codec members", () => {
  for (const codec of ["gzip", "zstd"] as const) {
    test(`${codec}: stored members have a length that depends only on the input length`, () => {
      for (const n of [0, 1, 511, 65535, 65536, 131072, 131073, 300_000]) {
        const a = storedMember(codec, randomBytes(n, 1));
        const b = storedMember(codec, new Uint8Array(n).fill(7));
        expect(a.length).toBe(b.length);
      }
    });

    test(`${codec}: the standard tool decodes stored and compressed members concatenated`, async () => {
      const parts = [randomBytes(70_000, 2), new Uint8Array(200_000).fill(65), randomBytes(10, 3)];
      const encoded = [storedMember(codec, parts[0]!), compressMember(codec, parts[1]!), storedMember(codec, parts[2]!)];
      const stream = new Uint8Array(encoded.reduce((n, e) => n + e.length, 0));
      let o = 0;
      for (const e of encoded) {
        stream.set(e, o);
        o += e.length;
      }
      const tool = codec === "gzip" ? ["gzip", "-dc"] : ["zstd", "-dc"];
      const proc = Bun.spawn(tool, { stdin: stream, stdout: "pipe", stderr: "pipe" });
      const out = new Uint8Array(await new Response(proc.stdout).arrayBuffer());
      expect(await proc.exited).toBe(0);
      const expected = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      o = 0;
      for (const p of parts) {
        expected.set(p, o);
        o += p.length;
      }
      expect(Bun.hash(out)).toBe(Bun.hash(expected));
      if (codec === "gzip") expect(Bun.hash(gunzipSync(stream))).toBe(Bun.hash(expected));
    });
  }
});
