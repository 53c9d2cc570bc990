import { describe, expect, test } from "bun:test";
import { chunkRanges } from "../../../src/core/repo/backup.ts";
import { FileDigest, SUM_BYTES, blobId, chunkSum, seal, unseal, SealError } from "../../../src/core/crypto/seal.ts";
import { makeKeyFile, newMasterKey, openKeyFile } from "../../../src/core/crypto/keys.ts";
import { openBlob, sealBlob } from "../../../src/core/repo/blob.ts";

const KiB = 1024;

describe("chunkRanges", () => {
  test.each([
    ["main: header region, then one chunk per block", { role: "main", size: 12 * KiB + 3 * 256 * KiB }, 256 * KiB, [[0, 12 * KiB], [12 * KiB, 256 * KiB], [268 * KiB, 256 * KiB], [524 * KiB, 256 * KiB]]],
    ["main: a partial last block", { role: "main", size: 12 * KiB + 100 }, 16 * KiB, [[0, 12 * KiB], [12 * KiB, 100]]],
    ["main: shorter than the header", { role: "main", size: 5000 }, 256 * KiB, [[0, 5000]]],
    ["main: blocks above 1 MiB cut at 1 MiB", { role: "main", size: 12 * KiB + 2 * 1024 * KiB }, 2048 * KiB, [[0, 12 * KiB], [12 * KiB, 1024 * KiB], [1036 * KiB, 1024 * KiB]]],
    ["wal: fixed chunks from 0", { role: "wal", size: 2 * 1024 * KiB + 10 }, 256 * KiB, [[0, 1024 * KiB], [1024 * KiB, 1024 * KiB], [2048 * KiB, 10]]],
    ["empty wal", { role: "wal", size: 0 }, 256 * KiB, []],
  ] as const)("%s", (_label, file, block, want) => {
    expect([...chunkRanges(file as any, block, 1024 * KiB, 1024 * KiB)]).toEqual(want as any);
  });

  test("a WAL that only grew keeps its earlier full chunks", () => {
    const before = [...chunkRanges({ role: "wal", size: 3 * 1024 * KiB + 5 }, 0, 1024 * KiB, 1024 * KiB)];
    const after = [...chunkRanges({ role: "wal", size: 5 * 1024 * KiB }, 0, 1024 * KiB, 1024 * KiB)];
    expect(after.slice(0, 3)).toEqual(before.slice(0, 3));
  });
});

describe("crypto", () => {
  test("sealed objects fail on any flipped bit and under another key", () => {
    const key = new Uint8Array(32).fill(7);
    const plain = new TextEncoder().encode("some bytes worth protecting");
    const sealed = seal(key, plain);
    expect(new TextDecoder().decode(unseal(key, sealed))).toBe("some bytes worth protecting");
    for (let i = 0; i < sealed.length; i++) {
      const bad = sealed.slice();
      bad[i]! ^= 0x10;
      expect(() => unseal(key, bad)).toThrow(SealError);
    }
    expect(() => unseal(new Uint8Array(32), sealed)).toThrow(SealError);
  });

  test("key files: the right password opens the master key, a wrong one does not", async () => {
    const master = newMasterKey();
    const file = await makeKeyFile("right", master, { n: 1024, r: 8, p: 1 });
    expect(JSON.stringify(file)).not.toContain("right");
    expect(await openKeyFile("right", file)).toEqual(master);
    expect(await openKeyFile("wrong", file)).toBeNull();
  });

  test("blobs: ids are keyed, content is checked on open", () => {
    const keys = newMasterKey();
    const other = newMasterKey();
    const idOf = (k: typeof keys, data: Uint8Array) => {
      const sum = new Uint8Array(SUM_BYTES);
      chunkSum(data, sum);
      return blobId(k.id, sum);
    };
    const chunk = new Uint8Array(256 * KiB).fill(3);
    const id = idOf(keys, chunk);
    const plainSha = new Bun.CryptoHasher("sha256").update(chunk).digest("hex");
    expect(id).not.toBe(idOf(other, chunk));
    expect(id).not.toBe(plainSha);
    // The documented construction: HMAC-SHA256(id key, SHA-256(chunk)).
    expect(id).toBe(new Bun.CryptoHasher("sha256", keys.id).update(Buffer.from(plainSha, "hex")).digest("hex"));
    const sealed = sealBlob(keys, chunk);
    expect(sealed.length).toBeLessThan(chunk.length / 10); // compressed
    const sum = new Uint8Array(SUM_BYTES);
    const out = new Uint8Array(chunk.length);
    openBlob(keys, sealed, id, out, sum);
    expect(out).toEqual(chunk);
    expect(Buffer.from(sum).toString("hex")).toBe(plainSha);
    expect(() => openBlob(keys, sealed, idOf(keys, new Uint8Array(1)), out)).toThrow(/does not match its id/);
    const random = crypto.getRandomValues(new Uint8Array(64 * KiB));
    const plainOut = new Uint8Array(random.length);
    openBlob(keys, sealBlob(keys, random), idOf(keys, random), plainOut); // stored plain
    expect(plainOut).toEqual(random);
  });

  test("blobs open into a buffer of the index's plain length, no more, no less", () => {
    const keys = newMasterKey();
    const chunk = new Uint8Array(100 * KiB).map((_, i) => (i * 31) % 7);
    const sum = new Uint8Array(SUM_BYTES);
    chunkSum(chunk, sum);
    const id = blobId(keys.id, sum);
    const sealed = sealBlob(keys, chunk);
    // Into the middle of a shared slab, as restore does: the bytes around it stay as they were.
    const slab: Uint8Array = new Uint8Array(new SharedArrayBuffer(chunk.length + 20)).fill(0xee);
    openBlob(keys, sealed, id, slab.subarray(10, 10 + chunk.length));
    expect(slab.subarray(10, 10 + chunk.length)).toEqual(chunk);
    expect([...slab.subarray(0, 10), ...slab.subarray(10 + chunk.length)].every((b) => b === 0xee)).toBe(true);
    expect(() => openBlob(keys, sealed, id, new Uint8Array(chunk.length - 1))).toThrow(/larger than the index says/);
    expect(() => openBlob(keys, sealed, id, new Uint8Array(chunk.length + 1))).toThrow(/bytes, the index says/);
    const random = crypto.getRandomValues(new Uint8Array(KiB));
    chunkSum(random, sum);
    expect(() => openBlob(keys, sealBlob(keys, random), blobId(keys.id, sum), new Uint8Array(KiB + 1))).toThrow(/bytes, the index says/);
    // A damaged zstd frame (sealed as such, so that it passes the tag): named, and the next blob opens.
    const frame = new Uint8Array(Bun.zstdCompressSync(chunk));
    frame[frame.length >> 1]! ^= 0xff;
    expect(() => openBlob(keys, seal(keys.encrypt, new Uint8Array([1, ...frame])), id, new Uint8Array(chunk.length))).toThrow(/zstd: |does not match its id/);
    frame[0]! ^= 0xff;
    expect(() => openBlob(keys, seal(keys.encrypt, new Uint8Array([1, ...frame])), id, new Uint8Array(chunk.length))).toThrow(/zstd: /);
    const out = new Uint8Array(chunk.length);
    openBlob(keys, sealed, id, out);
    expect(out).toEqual(chunk);
  });

  test("a file's digest: SHA-256 of its chunks' SHA-256s in order", () => {
    const a = new Uint8Array(1000).fill(1);
    const b = new Uint8Array(3000).fill(2);
    const sums = new Uint8Array(2 * SUM_BYTES);
    chunkSum(a, sums.subarray(0, SUM_BYTES));
    chunkSum(b, sums.subarray(SUM_BYTES));
    const whole = new FileDigest();
    whole.update(sums);
    const split = new FileDigest();
    split.update(sums.subarray(0, SUM_BYTES));
    split.update(sums.subarray(SUM_BYTES));
    expect(split.digest()).toBe(whole.digest());
    const swapped = new FileDigest();
    swapped.update(sums.subarray(SUM_BYTES));
    swapped.update(sums.subarray(0, SUM_BYTES));
    expect(swapped.digest()).not.toBe(whole.digest());
  });
});
