// S3Store against real servers: moto (with authentication for wrong keys) behind a proxy that
// answers 500, drops connections or hangs; errors are one line naming bucket, key and the
// service's code, exit code 8, and never contain the secret.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../../helpers.ts";
import { freePort, startMoto, startProxy, type FlakyProxy, type Moto } from "../../s3-server.ts";
import { MULTIPART_THRESHOLD, parseS3Url, resolveS3Settings, S3Store, type S3Settings } from "../../../src/core/store/s3.ts";
import { openStore, StoreError } from "../../../src/core/store/index.ts";
import { parseConfig } from "../../../src/core/config.ts";
import { DuckbakError, ExitCode } from "../../../src/core/errors.ts";

describe("s3:// locations and settings", () => {
  test("parseS3Url", () => {
    expect(parseS3Url("s3://my-bucket/duckbak/prod/")).toEqual({ bucket: "my-bucket", prefix: "duckbak/prod" });
    expect(parseS3Url("s3://my-bucket")).toEqual({ bucket: "my-bucket", prefix: "" });
    for (const bad of ["s3://", "s3://B/x", "s3://b/x", "s3://bucket/a//b", "s3://bucket/../x", "http://bucket/x"])
      expect(() => parseS3Url(bad)).toThrow(DuckbakError);
  });

  test("[s3] keys win over AWS variables; credentials from the table, a file, the variables", () => {
    const dir = tempDir();
    const env = { AWS_ACCESS_KEY_ID: "AKENV", AWS_SECRET_ACCESS_KEY: "envsecret", AWS_SESSION_TOKEN: "tok", AWS_REGION: "eu-west-1", AWS_ENDPOINT_URL: "http://env:9000", HOME: dir };
    const fromEnv = resolveS3Settings("s3://bkt/p", {}, env);
    expect(fromEnv).toMatchObject({ bucket: "bkt", prefix: "p", endpoint: "http://env:9000", region: "eu-west-1", pathStyle: true, accessKeyId: "AKENV", secretAccessKey: "envsecret", sessionToken: "tok" });
    expect(resolveS3Settings("s3://bkt/p", {}, { ...env, AWS_ENDPOINT_URL_S3: "http://s3only:1" }).endpoint).toBe("http://s3only:1");
    // No endpoint: AWS, virtual-hosted.
    expect(resolveS3Settings("s3://bkt", {}, { ...env, AWS_ENDPOINT_URL: "" })).toMatchObject({ endpoint: undefined, pathStyle: false });
    const creds = join(dir, "creds");
    writeFileSync(creds, "[default]\naws_access_key_id = AKDEF\naws_secret_access_key = defsecret\n\n[backup]\naws_access_key_id=AKFILE\naws_secret_access_key=filesecret\n", { mode: 0o600 });
    const cfg = parseConfig({ s3: { endpoint: "https://s3.example.net", region: "auto", path_style: false, credentials_file: "creds", profile: "backup", retries: 2 } }, join(dir, "duckbak.toml"));
    expect(resolveS3Settings("s3://bkt/p", cfg.s3, env)).toMatchObject({ endpoint: "https://s3.example.net", region: "auto", pathStyle: false, accessKeyId: "AKFILE", secretAccessKey: "filesecret", retries: 2 });
    expect(resolveS3Settings("s3://bkt/p", { accessKeyId: "AKT", secretAccessKey: "tsecret" }, env)).toMatchObject({ accessKeyId: "AKT", sessionToken: undefined });
    // The shared credentials file when nothing else is set.
    expect(resolveS3Settings("s3://bkt", {}, { AWS_SHARED_CREDENTIALS_FILE: creds })).toMatchObject({ accessKeyId: "AKDEF", region: "us-east-1" });
    expect(() => resolveS3Settings("s3://bkt", {}, { HOME: dir })).toThrow(/no S3 credentials/);
    expect(() => parseConfig({ s3: { access_key_id: "x" } }, join(dir, "duckbak.toml"))).toThrow(/go together/);
    expect(() => parseConfig({ s3: { path_style: "yes" } }, join(dir, "duckbak.toml"))).toThrow(/path_style/);
    expect(() => parseConfig({ s3: { bogus: 1 } }, join(dir, "duckbak.toml"))).toThrow(/unknown key 's3.bogus'/);
    expect(parseConfig({ offsite: "s3://bkt/off" }, join(dir, "duckbak.toml")).offsite).toBe("s3://bkt/off");
  });
});

describe("S3Store against moto", () => {
  let moto: Moto;
  let authMoto: Moto;
  let proxy: FlakyProxy;
  beforeAll(async () => {
    [moto, authMoto] = await Promise.all([startMoto(), startMoto({ auth: true })]);
    await Promise.all([moto.createBucket("errs"), authMoto.createBucket("authed")]);
    proxy = await startProxy(moto.port);
  }, 120_000);
  afterAll(async () => {
    await proxy?.stop();
    await Promise.all([moto?.stop(), authMoto?.stop()]);
  });

  const store = (over: Partial<S3Settings> = {}) =>
    new S3Store({
      bucket: "errs",
      prefix: "repo",
      endpoint: proxy.endpoint,
      region: "us-east-1",
      pathStyle: true,
      accessKeyId: moto.accessKeyId,
      secretAccessKey: moto.secretAccessKey,
      retries: 4,
      retryDelayMs: 50,
      ...over,
    });
  const failure = async (p: Promise<unknown>): Promise<StoreError> => {
    const err = await p.then(
      () => null,
      (e) => e,
    );
    expect(err).toBeInstanceOf(StoreError);
    expect(err.exitCode).toBe(ExitCode.STORE_ERROR);
    expect(err.message).not.toContain("\n");
    expect(err.message).not.toContain(moto.secretAccessKey);
    expect(err.message).not.toContain(authMoto.secretAccessKey);
    return err;
  };

  test("openStore opens s3:// through the AWS variables", async () => {
    const s = openStore("s3://errs/via-env", { env: moto.env() });
    expect(s).toBeInstanceOf(S3Store);
    expect(s.location).toBe("s3://errs/via-env");
    await s.put("config", new Uint8Array([7]));
    expect(await moto.aws(["s3", "cp", "s3://errs/via-env/config", "-"])).toBe("\x07");
  });

  test("a server answering 500 or dropping connections for a while: retried, then done", async () => {
    const s = store({ retries: 10 });
    proxy.reset();
    proxy.fail("http500", 700);
    await s.put("data/00/a", new Uint8Array([1, 2, 3]));
    expect(proxy.faults).toBeGreaterThan(0);
    proxy.reset();
    proxy.fail("drop", 700);
    expect([...(await s.get("data/00/a"))]).toEqual([1, 2, 3]);
    expect(await s.stat("data/00/a")).toEqual({ size: 3 });
    expect(proxy.faults).toBeGreaterThan(0);
  });

  test("a server that keeps failing: a clear error after the retries", async () => {
    const s = store({ retries: 2 });
    proxy.fail("http500");
    try {
      const e = await failure(s.put("data/00/b", new Uint8Array([1])));
      expect(e.message).toBe("s3://errs/repo/data/00/b: InternalError: We encountered an internal error. Please try again. (put, 3 attempts)");
      await failure(s.stat("data/00/b"));
      // A multipart upload too.
      expect((await failure(s.put("data/00/big", new Uint8Array(MULTIPART_THRESHOLD + 1)))).message).toMatch(/^s3:\/\/errs\/repo\/data\/00\/big: \w+: .*\(put, 3 attempts\)$/);
      proxy.fail("drop");
      expect((await failure(s.get("data/00/a"))).message).toMatch(/^s3:\/\/errs\/repo\/data\/00\/a: Connection\w+: .*\(get, 3 attempts\)$/);
      proxy.fail("hang");
      expect((await failure(store({ retries: 1, timeoutMs: 300 }).getRange("data/00/a", 0, 2))).message).toMatch(/TimeoutError: no answer in time \(get, 2 attempts\)/);
    } finally {
      proxy.heal();
    }
    const refused = `http://127.0.0.1:${await freePort()}`;
    expect((await failure(store({ endpoint: refused, retries: 1 }).put("config", new Uint8Array([1])))).message).toContain(`ConnectionRefused: nothing answers at ${refused}`);
  });

  test("missing bucket, unknown key id, wrong secret", async () => {
    expect((await failure(store({ bucket: "no-such-bucket" }).put("config", new Uint8Array([1])))).message).toBe(
      `s3://no-such-bucket/repo/config: NoSuchBucket: bucket 'no-such-bucket' does not exist at ${proxy.endpoint} (put)`,
    );
    const authed = (over: Partial<S3Settings>) =>
      store({ endpoint: authMoto.endpoint, bucket: "authed", prefix: "", accessKeyId: authMoto.accessKeyId, secretAccessKey: authMoto.secretAccessKey, ...over });
    await authed({}).put("config", new Uint8Array([1]));
    expect(await authed({}).stat("config")).toEqual({ size: 1 });
    const badId = await failure(authed({ accessKeyId: "AKIANOSUCHKEY0000000" }).put("config", new Uint8Array([1])));
    expect(badId.message).toMatch(/^s3:\/\/authed\/config: InvalidAccessKeyId: /);
    const badSecret = await failure(authed({ secretAccessKey: "wrong-secret-value" }).get("config"));
    expect(badSecret.message).toMatch(/^s3:\/\/authed\/config: SignatureDoesNotMatch: /);
    // A HEAD refusal has no error document: the code still comes through.
    expect((await failure(authed({ secretAccessKey: "wrong-secret-value" }).stat("config"))).message).toMatch(/SignatureDoesNotMatch/);
    expect(badSecret.message).not.toContain("wrong-secret-value");
  });
});
