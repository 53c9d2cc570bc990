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

describe("codec pool and digest worker", () => {
  test("a compressed member comes back in its input's buffer when it fits, else in its own; both decode to the input", async () => {
    const { CodecPool } = await import("../../../src/core/archive/codec-pool.ts");
    const pool = new CodecPool(2);
    try {
      for (const codec of ["gzip", "zstd"] as const) {
        const compressible = new Uint8Array(1 << 20).fill(65);
        const incompressible = crypto.getRandomValues(new Uint8Array(1 << 20)); // its compressed form is longer than itself
        for (const [input, fits] of [[compressible, true], [incompressible, false]] as const) {
          const expected = input.slice();
          const { data, input: back } = await pool.compress(codec, input);
          expect(data.buffer === back.buffer).toBe(fits);
          expect(back.buffer.byteLength).toBe(1 << 20);
          const decoded = codec === "gzip" ? gunzipSync(data) : Bun.zstdDecompressSync(data);
          expect(Buffer.compare(new Uint8Array(decoded), expected)).toBe(0);
        }
      }
    } finally {
      pool.close();
    }
  });

  test("the digest worker's sha256 is that of every chunk in the order given, views included; chunks come back intact", async () => {
    const { DigestWorker } = await import("../../../src/core/archive/codec-pool.ts");
    const chunks = [randomBytes(3 << 20, 4), new Uint8Array(0), randomBytes(1000, 5), randomBytes(70_000, 6).subarray(100, 60_000)];
    const copies = chunks.map((c) => c.slice());
    const expected = new Bun.CryptoHasher("sha256");
    for (const c of copies) expected.update(c);
    const digest = new DigestWorker();
    try {
      const back = await Promise.all(chunks.map((c) => digest.update(c)));
      expect(await digest.digest()).toBe(expected.digest("hex"));
      back.forEach((b, i) => expect(Buffer.compare(b, copies[i]!)).toBe(0));
      // A new stream starts after a digest.
      await digest.update(new TextEncoder().encode("abc"));
      expect(await digest.digest()).toBe(new Bun.CryptoHasher("sha256").update("abc").digest("hex"));
    } finally {
      digest.close();
    }
  });
});
