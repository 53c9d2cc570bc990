// A real S3 protocol server for tests: moto_server on a free 127.0.0.1 port, with authentication
// on (so wrong keys are refused as AWS would), read back independently with the AWS CLI; and a
// small TCP proxy in front of it that counts the bytes that go over the wire and can answer 500,
// drop connections or hang for a while. Nothing here contacts anything outside 127.0.0.1.
import { spawn } from "node:child_process";
import { createServer, connect, type Socket, type Server } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** argv prefix for a Python tool: its script on PATH, else `python3 -m module` (a pip --user install). */
function tool(script: string, module: string): string[] {
  const found = Bun.which(script);
  return found ? [found] : ["python3", "-m", module];
}

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

export interface Moto {
  endpoint: string;
  port: number;
  accessKeyId: string;
  secretAccessKey: string;
  /** Environment for the duckbak binary or the AWS CLI: these credentials, this endpoint, no ~/.aws. */
  env(extra?: Record<string, string>): Record<string, string>;
  /** Runs the AWS CLI against the server; throws with its stderr when it fails. */
  aws(args: string[], endpoint?: string): Promise<string>;
  createBucket(name: string): Promise<void>;
  /** Sizes of every object under s3://bucket/prefix, read with the AWS CLI. */
  objects(bucket: string, prefix: string): Promise<Map<string, number>>;
  stop(): Promise<void>;
}

/**
 * Starts moto_server (call stop() in afterAll). With `auth`, requests are authenticated as AWS
 * does, under an IAM user allowed everything; moto's own signature check then wrongly refuses
 * list requests whose prefix holds a '/' (Bun signs them as AWS specifies; checked by hand), so
 * only tests of wrong or limited credentials use it. Without, any credentials are accepted.
 */
export async function startMoto(opts: { auth?: boolean } = {}): Promise<Moto> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const home = mkdtempSync(join(tmpdir(), "duckbak-moto-"));
  // The first 3 requests go unauthenticated: they create the user and key every later request signs with.
  // node:child_process rather than Bun.spawn: bun test kills a Bun.spawn child that outlives its hook.
  const [cmd, ...args] = tool("moto_server", "moto.server");
  const proc = spawn(cmd!, [...args, "-H", "127.0.0.1", "-p", String(port)], {
    env: { ...process.env, HOME: home, ...(opts.auth ? { INITIAL_NO_AUTH_ACTION_COUNT: "3" } : {}) },
    stdio: "ignore",
  });
  const exited = new Promise((r) => proc.once("exit", r));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill();
      await exited;
    }
    rmSync(home, { recursive: true, force: true });
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    const up = await fetch(`${endpoint}/moto-api/`).then(
      () => true,
      () => false,
    );
    if (up) break;
    if (proc.exitCode !== null || proc.signalCode !== null || Date.now() > deadline) throw new Error(`moto_server did not start on port ${port}`);
    await Bun.sleep(200);
  }
  // A distinctive secret, so that tests can search every output for it.
  const keys = { accessKeyId: "AKIADUCKBAKTEST", secretAccessKey: "duckbak-test-SECRET-6f1e2d" };
  const env = (extra: Record<string, string> = {}): Record<string, string> => ({
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: home,
    ...(process.env.PYENV_ROOT ? { PYENV_ROOT: process.env.PYENV_ROOT } : {}),
    NO_COLOR: "1",
    AWS_ACCESS_KEY_ID: keys.accessKeyId,
    AWS_SECRET_ACCESS_KEY: keys.secretAccessKey,
    AWS_REGION: "us-east-1",
    AWS_DEFAULT_REGION: "us-east-1",
    AWS_ENDPOINT_URL: endpoint,
    AWS_CONFIG_FILE: join(home, "no-aws-config"),
    AWS_SHARED_CREDENTIALS_FILE: join(home, "no-aws-credentials"),
    AWS_EC2_METADATA_DISABLED: "true",
    ...extra,
  });
  const aws = async (args: string[], at = endpoint): Promise<string> => {
    const p = Bun.spawn([...tool("aws", "awscli"), "--endpoint-url", at, ...args], { env: env(), stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    if (code !== 0) throw new Error(`aws ${args.join(" ")} exited ${code}: ${err}`);
    return out;
  };
  if (opts.auth) {
    await aws(["iam", "create-user", "--user-name", "duckbak"]);
    const key = JSON.parse(await aws(["iam", "create-access-key", "--user-name", "duckbak"])).AccessKey;
    const policy = { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "*", Resource: "*" }] };
    await aws(["iam", "put-user-policy", "--user-name", "duckbak", "--policy-name", "all", "--policy-document", JSON.stringify(policy)]);
    keys.accessKeyId = key.AccessKeyId;
    keys.secretAccessKey = key.SecretAccessKey;
  }
  return {
    endpoint,
    port,
    get accessKeyId() {
      return keys.accessKeyId;
    },
    get secretAccessKey() {
      return keys.secretAccessKey;
    },
    env,
    aws,
    createBucket: async (name) => {
      // Without authentication moto takes an unsigned request (quicker than starting the AWS CLI).
      if (opts.auth) return void (await aws(["s3api", "create-bucket", "--bucket", name]));
      const res = await fetch(`${endpoint}/${name}`, { method: "PUT" });
      if (!res.ok) throw new Error(`create bucket ${name}: HTTP ${res.status} ${await res.text()}`);
    },
    objects: async (bucket, prefix) => {
      const out = await aws(["s3api", "list-objects-v2", "--bucket", bucket, "--prefix", prefix, "--output", "json"]);
      const items = out.trim() ? ((JSON.parse(out).Contents ?? []) as { Key: string; Size: number }[]) : [];
      return new Map(items.map((o) => [o.Key, o.Size]));
    },
    stop,
  };
}

export type FaultMode = "http500" | "drop" | "hang";

export interface FlakyProxy {
  endpoint: string;
  /** Bytes sent by clients towards the server (requests and uploads). */
  bytesUp: number;
  /** Bytes sent back to clients. */
  bytesDown: number;
  /** Request lines seen ("PUT /bucket/key?partNumber=1&uploadId=..."), in order. */
  requests: string[];
  /** Connections (or requests) that met a fault. */
  faults: number;
  /** From now on, for `ms` (forever when omitted), every new request meets `mode`; open connections are cut. */
  fail(mode: FaultMode, ms?: number): void;
  heal(): void;
  reset(): void;
  stop(): Promise<void>;
}

const INTERNAL_ERROR =
  '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>';

/** A TCP proxy on 127.0.0.1 in front of `targetPort` (call stop() in afterAll). */
export async function startProxy(targetPort: number): Promise<FlakyProxy> {
  let mode: FaultMode | null = null;
  let until = Infinity;
  const open = new Set<Socket>();
  const faulty = (): FaultMode | null => {
    if (mode && Date.now() < until) return mode;
    mode = null;
    return null;
  };
  const state: FlakyProxy = {
    endpoint: "",
    bytesUp: 0,
    bytesDown: 0,
    requests: [],
    faults: 0,
    fail(m, ms) {
      mode = m;
      until = ms === undefined ? Infinity : Date.now() + ms;
      for (const s of open) s.destroy();
    },
    heal() {
      mode = null;
    },
    reset() {
      state.bytesUp = state.bytesDown = state.faults = 0;
      state.requests.length = 0;
    },
    stop: async () => {
      for (const s of open) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
  const server: Server = createServer((client) => {
    open.add(client);
    client.on("close", () => open.delete(client));
    client.on("error", () => {});
    const m = faulty();
    if (m) {
      state.faults++;
      if (m === "drop") return void client.destroy();
      client.once("data", () => {
        if (m === "http500")
          client.end(
            `HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\nContent-Length: ${INTERNAL_ERROR.length}\r\nConnection: close\r\n\r\n${INTERNAL_ERROR}`,
          );
        // "hang": read and never answer.
      });
      client.resume();
      return;
    }
    const upstream = connect(targetPort, "127.0.0.1");
    open.add(upstream);
    upstream.on("close", () => {
      open.delete(upstream);
      client.destroy();
    });
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.destroy());
    client.on("data", (b: Buffer) => {
      state.bytesUp += b.length;
      const head = b.subarray(0, 2048).toString("latin1");
      for (const r of head.matchAll(/(?:^|\r\n)((?:GET|PUT|POST|HEAD|DELETE) \S+) HTTP\/1\.1\r\n/g)) state.requests.push(r[1]!);
    });
    upstream.on("data", (b: Buffer) => (state.bytesDown += b.length));
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  state.endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return state;
}
