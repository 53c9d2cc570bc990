// One contract, two stores: everything the repository relies on behaves the same on a local folder
// and on a real S3 protocol server (moto), the S3 side read back independently with the AWS CLI.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { tempDir } from "../../helpers.ts";
import { startMoto, startProxy, type FlakyProxy, type Moto } from "../../s3-server.ts";
import { LocalStore } from "../../../src/core/store/local.ts";
import { MULTIPART_THRESHOLD, PART_SIZE, S3Store } from "../../../src/core/store/s3.ts";
import { StoreNotFoundError, type Store } from "../../../src/core/store/index.ts";
import { DuckbakError } from "../../../src/core/errors.ts";

let moto: Moto;
let proxy: FlakyProxy;
beforeAll(async () => {
  moto = await startMoto();
  await moto.createBucket("contract");
  proxy = await startProxy(moto.port);
}, 120_000);
afterAll(async () => {
  await proxy?.stop();
  await moto?.stop();
});

let n = 0;
const stores: Record<string, () => Store> = {
  local: () => new LocalStore(join(tempDir(), "store")),
  s3: () =>
    new S3Store({
      bucket: "contract",
      prefix: `p${++n}/repo`,
      endpoint: proxy.endpoint,
      region: "us-east-1",
      pathStyle: true,
      accessKeyId: moto.accessKeyId,
      secretAccessKey: moto.secretAccessKey,
      pageSize: 3,
    }),
};

const bytes = (...v: number[]) => new Uint8Array(v);
async function keys(store: Store, prefix: string): Promise<[string, number][]> {
  const out: [string, number][] = [];
  for await (const e of store.list(prefix)) out.push([e.key, e.size]);
  return out.sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

for (const [kind, make] of Object.entries(stores)) {
  describe(`Store contract: ${kind}`, () => {
    test("put, get, getRange, stat, delete", async () => {
      const store = make();
      await store.put("data/ab/ab01", bytes(1, 2, 3, 4, 5));
      expect([...(await store.get("data/ab/ab01"))]).toEqual([1, 2, 3, 4, 5]);
      expect([...(await store.getRange("data/ab/ab01", 1, 3))]).toEqual([2, 3, 4]);
      expect([...(await store.getRange("data/ab/ab01", 0, 0))]).toEqual([]);
      await expect(store.getRange("data/ab/ab01", 3, 5)).rejects.toBeInstanceOf(DuckbakError);
      await expect(store.getRange("data/ab/ab01", 9, 1)).rejects.toBeInstanceOf(DuckbakError);
      expect(await store.stat("data/ab/ab01")).toEqual({ size: 5 });
      expect(await store.stat("data/ab/nope")).toBeNull();
      await expect(store.get("snapshots/none")).rejects.toBeInstanceOf(StoreNotFoundError);
      await expect(store.getRange("snapshots/none", 0, 1)).rejects.toBeInstanceOf(StoreNotFoundError);
      // Overwrite (same content-addressed name written again after an interrupted run), empty objects.
      await store.put("data/ab/ab01", bytes(9));
      expect([...(await store.get("data/ab/ab01"))]).toEqual([9]);
      await store.put("locks/empty", new Uint8Array(0));
      expect(await store.stat("locks/empty")).toEqual({ size: 0 });
      expect((await store.get("locks/empty")).length).toBe(0);
      await store.delete("data/ab/ab01");
      await store.delete("data/ab/ab01");
      expect(await store.stat("data/ab/ab01")).toBeNull();
    });

    test("list: relative keys with sizes, by prefix, across pages", async () => {
      const store = make();
      for (let i = 0; i < 7; i++) await store.put(`data/0${i}/k${i}`, new Uint8Array(i));
      await store.put("config", bytes(1));
      await store.put("snapshots/s1", bytes(1, 2));
      const data = await keys(store, "data/");
      expect(data).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => [`data/0${i}/k${i}`, i]));
      expect((await keys(store, "")).length).toBe(9);
      expect(await keys(store, "snapshots/")).toEqual([["snapshots/s1", 2]]);
      expect(await keys(store, "data/03/")).toEqual([["data/03/k3", 3]]);
      expect(await keys(store, "index/")).toEqual([]);
    });

    test("a large object round-trips byte for byte", async () => {
      const store = make();
      const big = new Uint8Array(MULTIPART_THRESHOLD + PART_SIZE + 12345);
      for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
      proxy.reset();
      await store.put("data/ff/big", big);
      expect(await store.stat("data/ff/big")).toEqual({ size: big.length });
      const back = await store.get("data/ff/big");
      expect(Buffer.compare(back, big)).toBe(0);
      const tail = await store.getRange("data/ff/big", big.length - 100, 100);
      expect(Buffer.compare(tail, big.subarray(big.length - 100))).toBe(0);
      if (kind === "s3") {
        // Multipart, in parts of equal size (R2's rule) but the last.
        expect(proxy.requests.some((r) => r.startsWith("POST ") && r.includes("uploads"))).toBe(true);
        const parts = Math.ceil(big.length / PART_SIZE);
        expect(proxy.requests.filter((r) => r.startsWith("PUT ") && r.includes("partNumber=")).length).toBe(parts);
        const head = (part: number) =>
          moto.aws(["s3api", "head-object", "--bucket", "contract", "--key", `p${n}/repo/data/ff/big`, "--part-number", String(part)]);
        const first = JSON.parse(await head(1));
        expect(first.PartsCount).toBe(parts);
        expect(first.ContentLength).toBe(PART_SIZE);
        expect(JSON.parse(await head(parts)).ContentLength).toBe(big.length - (parts - 1) * PART_SIZE);
      }
    }, 60_000);
  });
}
