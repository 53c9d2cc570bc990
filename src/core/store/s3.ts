// A repository under an S3 bucket prefix, through Bun's built-in S3 client (no SDK in the binary).
// Designed for the subset every S3-compatible store shares: plain PUT/GET/HEAD/DELETE and
// ListObjectsV2; no conditional writes, no object lock, no versioning. Every repository file is
// written once under its final name, and an S3 PUT (or a completed multipart upload) is atomic,
// so a reader never sees half an object and an interrupted upload leaves nothing under the name.

import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { backOff } from "exponential-backoff";
import type { S3Config } from "../config.ts";
import { ConfigError, DuckbakError, ExitCode } from "../errors.ts";
import { StoreError, StoreNotFoundError, type Store, type StoreEntry } from "./store.ts";

/** Objects above this size go up in a multipart upload (retried part by part by Bun's client). */
export const MULTIPART_THRESHOLD = 16 * 1024 * 1024;
/** Every part but the last has exactly this size: Cloudflare R2 requires equal part sizes. */
export const PART_SIZE = 8 * 1024 * 1024;
/** Attempts after the first for a transient failure, unless configured. */
export const DEFAULT_RETRIES = 7;

export interface S3Settings {
  bucket: string;
  /** Key prefix without leading or trailing '/', possibly empty. */
  prefix: string;
  /** e.g. https://s3.example.net; AWS's regional endpoint when absent. */
  endpoint?: string;
  region: string;
  /** Path-style addressing (https://host/bucket/key); false for virtual-hosted (https://bucket.host/key). */
  pathStyle: boolean;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** Attempts after the first for a transient failure (5xx, throttling, dropped connection, timeout). */
  retries?: number;
  /** First back-off delay in ms (doubles per attempt, full jitter, capped at 20 s). */
  retryDelayMs?: number;
  /** Per-request time limit: this many ms plus 1 s per 64 KiB transferred. */
  timeoutMs?: number;
  /** ListObjectsV2 page size (tests use a small one to exercise pagination). */
  pageSize?: number;
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Splits s3://bucket/some/prefix into its bucket and prefix, or throws a usage error. */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
  if (!m) throw new DuckbakError(`${url}: not an s3://bucket/prefix location`, ExitCode.USAGE);
  const bucket = m[1]!;
  if (!BUCKET_NAME.test(bucket)) throw new DuckbakError(`${url}: '${bucket}' is not a valid S3 bucket name`, ExitCode.USAGE);
  const prefix = m[2]!.replace(/\/+$/, "");
  if (prefix.split("/").some((p) => p === "" || p === "." || p === "..")) {
    if (prefix !== "") throw new DuckbakError(`${url}: the prefix has an empty, '.' or '..' component`, ExitCode.USAGE);
  }
  return { bucket, prefix };
}

export function isS3Url(location: string): boolean {
  return location.startsWith("s3://");
}

type Env = Record<string, string | undefined>;

/**
 * Settings for `url` (s3://bucket/prefix): each from the [s3] table when set there, else from the
 * standard AWS variables; credentials from [s3] (keys or credentials_file), else AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN), else the shared credentials file
 * (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, section AWS_PROFILE or "default").
 */
export function resolveS3Settings(url: string, cfg: S3Config = {}, env: Env = process.env): S3Settings {
  const { bucket, prefix } = parseS3Url(url);
  const endpoint = cfg.endpoint ?? (env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined);
  const region = cfg.region ?? (env.AWS_REGION || env.AWS_DEFAULT_REGION || "us-east-1");
  // Self-hosted stores (MinIO, Ceph) want path-style; AWS prefers virtual-hosted buckets.
  const pathStyle = cfg.pathStyle ?? endpoint !== undefined;
  const profile = cfg.profile ?? (env.AWS_PROFILE || "default");
  let creds: { accessKeyId?: string; secretAccessKey?: string; sessionToken?: string } = {};
  if (cfg.accessKeyId) creds = { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey };
  else if (cfg.credentialsFile) creds = readCredentialsFile(cfg.credentialsFile, profile, true);
  else if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY)
    creds = { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, sessionToken: env.AWS_SESSION_TOKEN || undefined };
  else {
    const home = env.HOME || homedir();
    creds = readCredentialsFile(env.AWS_SHARED_CREDENTIALS_FILE || join(home, ".aws", "credentials"), profile, false);
  }
  if (!creds.accessKeyId || !creds.secretAccessKey)
    throw new StoreError(
      `${url}: no S3 credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or access_key_id and secret_access_key or credentials_file in the [s3] table of duckbak.toml)`,
    );
  return {
    bucket,
    prefix,
    endpoint,
    region,
    pathStyle,
    accessKeyId: creds.accessKeyId,
    secretAccessKey: creds.secretAccessKey,
    sessionToken: creds.sessionToken,
    retries: cfg.retries,
  };
}

/** The `profile` section of an AWS shared-credentials (INI) file; {} when absent and not `required`. */
function readCredentialsFile(file: string, profile: string, required: boolean) {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if (!required) return {};
    throw new ConfigError(file, `cannot read the S3 credentials file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const values: Record<string, string> = {};
  let section = "";
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const head = /^\[\s*(?:profile\s+)?([^\]]+?)\s*\]$/.exec(line);
    if (head) section = head[1]!;
    else if (section === profile) {
      const kv = /^([A-Za-z_]+)\s*=\s*(.*)$/.exec(line);
      if (kv) values[kv[1]!.toLowerCase()] = kv[2]!.trim();
    }
  }
  const creds = {
    accessKeyId: values.aws_access_key_id,
    secretAccessKey: values.aws_secret_access_key,
    sessionToken: values.aws_session_token,
  };
  if (required && (!creds.accessKeyId || !creds.secretAccessKey))
    throw new ConfigError(file, `no aws_access_key_id and aws_secret_access_key in section [${profile}]`);
  return creds;
}

// Transient by nature: the same request may succeed later. UnknownError is Bun's name for an
// answer without an S3 error document (an empty 5xx, a proxy's HTML error page).
const TRANSIENT = new Set([
  "InternalError",
  "ServiceUnavailable",
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "TooManyRequests",
  "RequestLimitExceeded",
  "BandwidthLimitExceeded",
  "RequestTimeout",
  "UnknownError",
  "ConnectionClosed",
  "ConnectionRefused",
  "ConnectionReset",
  "ECONNRESET",
  "ECONNREFUSED",
  "ETIMEDOUT",
  "EPIPE",
  "Timeout",
  "TimeoutError",
]);

const HINTS: Record<string, string> = {
  InvalidAccessKeyId: "the service does not know this access key id (check AWS_ACCESS_KEY_ID or [s3] access_key_id)",
  SignatureDoesNotMatch: "the secret access key does not match the key id (check AWS_SECRET_ACCESS_KEY or [s3] secret_access_key)",
  ExpiredToken: "the session token has expired (renew AWS_SESSION_TOKEN)",
  InvalidToken: "the session token is not valid (check AWS_SESSION_TOKEN)",
  AccessDenied: "access denied: the credentials may not do this here (check the bucket policy and the key's permissions)",
  PermanentRedirect: "the bucket is in another region or needs another endpoint (set AWS_REGION or [s3] region)",
  AuthorizationHeaderMalformed: "the request was signed for the wrong region (set AWS_REGION or [s3] region)",
  IllegalLocationConstraintException: "the bucket is in another region (set AWS_REGION or [s3] region)",
  RequestTimeTooSkewed: "this host's clock is too far from the service's (fix the clock)",
  ConnectionRefused: "nothing answers at the endpoint (check AWS_ENDPOINT_URL or [s3] endpoint, and the network)",
  ConnectionClosed: "the service dropped the connection",
  UnknownError: "the service answered with an error but no S3 error code",
  TimeoutError: "no answer in time",
  InvalidRange: "the object is shorter than the range asked for",
};

export class S3Store implements Store {
  readonly location: string;
  private readonly client: Bun.S3Client;
  private readonly base: string;
  private readonly origin: string;
  private readonly secrets: string[];

  constructor(private readonly s: S3Settings) {
    this.location = `s3://${s.bucket}${s.prefix ? `/${s.prefix}` : ""}`;
    this.base = s.prefix ? `${s.prefix}/` : "";
    let endpoint = s.endpoint;
    if (endpoint && !s.pathStyle && !new URL(endpoint).hostname.startsWith(`${s.bucket}.`)) {
      // Bun's virtual-hosted mode takes the bucket's own host as the endpoint.
      const u = new URL(endpoint);
      u.hostname = `${s.bucket}.${u.hostname}`;
      endpoint = u.origin;
    }
    this.origin = endpoint ? new URL(endpoint).origin : `https://s3.${s.region}.amazonaws.com`;
    this.secrets = [s.secretAccessKey, s.sessionToken ?? ""].filter((x) => x.length >= 4);
    this.client = new Bun.S3Client({
      bucket: s.bucket,
      endpoint,
      region: s.region,
      accessKeyId: s.accessKeyId,
      secretAccessKey: s.secretAccessKey,
      sessionToken: s.sessionToken,
      virtualHostedStyle: !s.pathStyle,
      type: "application/octet-stream",
    });
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    const path = this.base + key;
    await this.attempt("put", key, data.byteLength, async () => {
      if (data.byteLength <= MULTIPART_THRESHOLD) {
        await this.client.write(path, data);
        return;
      }
      const writer = this.client.file(path).writer({ partSize: PART_SIZE, queueSize: 4, retry: 3 });
      writer.write(data);
      await writer.end();
    });
  }

  async get(key: string): Promise<Uint8Array> {
    // The size is unknown before the answer: allow for a whole pack's worth.
    return this.attempt("get", key, 16 << 20, async () => new Uint8Array(await this.client.file(this.base + key).arrayBuffer()));
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    if (length === 0) return new Uint8Array(0);
    const bytes = await this.attempt(
      "get",
      key,
      length,
      async () => new Uint8Array(await this.client.file(this.base + key).slice(offset, offset + length).arrayBuffer()),
    );
    if (bytes.byteLength !== length)
      throw this.fail(key, "get", "ShortRead", `asked for ${length} bytes at offset ${offset}, got ${bytes.byteLength}`);
    return bytes;
  }

  async getRangeInto(key: string, offset: number, target: Uint8Array): Promise<void> {
    target.set(await this.getRange(key, offset, target.length));
  }

  async stat(key: string): Promise<{ size: number } | null> {
    const path = this.base + key;
    return this.attempt("stat", key, 0, async () => {
      try {
        return { size: (await this.client.stat(path)).size };
      } catch (err) {
        const code = codeOf(err);
        if (code === "NoSuchKey") return null;
        if (code !== "UnknownError") throw err;
        // A HEAD answer has no error document, so Bun cannot tell a 403 from a 503: the listing
        // (an error document with a code, or the object's size) can.
        const page = await this.client.list({ prefix: path, maxKeys: 1 });
        const o = page.contents?.[0];
        return o && o.key === path ? { size: o.size ?? 0 } : null;
      }
    });
  }

  async *list(prefix: string): AsyncIterable<StoreEntry> {
    let continuationToken: string | undefined;
    do {
      const page = await this.attempt("list", prefix, 0, () =>
        this.client.list({ prefix: this.base + prefix, continuationToken, maxKeys: this.s.pageSize }),
      );
      for (const o of page.contents ?? []) yield { key: o.key.slice(this.base.length), size: o.size ?? 0 };
      continuationToken = page.isTruncated ? page.nextContinuationToken : undefined;
    } while (continuationToken);
  }

  async delete(key: string): Promise<void> {
    await this.attempt("delete", key, 0, () => this.client.delete(this.base + key));
  }

  /** Runs one request with a time limit, retrying transient failures with capped exponential back-off and full jitter. */
  private async attempt<T>(action: string, key: string, bytes: number, run: () => Promise<T>): Promise<T> {
    const retries = this.s.retries ?? DEFAULT_RETRIES;
    const limit = (this.s.timeoutMs ?? 60_000) + Math.ceil(bytes / 64);
    let attempts = 0;
    try {
      return await backOff(
        () => {
          attempts++;
          return withTimeout(run(), limit);
        },
        {
          numOfAttempts: retries + 1,
          startingDelay: this.s.retryDelayMs ?? 250,
          timeMultiple: 2,
          maxDelay: 20_000,
          jitter: "full",
          retry: (err) => TRANSIENT.has(codeOf(err)),
        },
      );
    } catch (err) {
      if (err instanceof DuckbakError) throw err;
      const code = codeOf(err);
      if (code === "NoSuchKey") throw new StoreNotFoundError(this.location, key);
      const tries = attempts > 1 ? `, ${attempts} attempts` : "";
      throw this.fail(key, `${action}${tries}`, code, detailOf(code, err, this.s.bucket, this.origin));
    }
  }

  private url(key: string): string {
    return `${this.location}/${key}`;
  }

  /** One line naming bucket and key, the service's code and what to do; secrets scrubbed whatever the cause said. */
  private fail(key: string, action: string, code: string, detail: string): StoreError {
    let msg = `${this.url(key)}: ${code}: ${detail} (${action})`;
    for (const s of this.secrets) msg = msg.split(s).join("[redacted]");
    return new StoreError(msg);
  }
}

function codeOf(err: unknown): string {
  if (err instanceof TimeoutError) return "TimeoutError";
  const code = (err as { code?: unknown })?.code;
  if (typeof code === "string" && code !== "") return code;
  return (err as Error)?.name ?? "Error";
}

function detailOf(code: string, err: unknown, bucket: string, origin: string): string {
  if (code === "NoSuchBucket") return `bucket '${bucket}' does not exist at ${origin}`;
  if (code === "ConnectionRefused") return `nothing answers at ${origin} (check AWS_ENDPOINT_URL or [s3] endpoint, and the network)`;
  const hint = HINTS[code];
  if (hint) return hint;
  const msg = (err as Error)?.message ?? String(err);
  return msg.replace(/\s+/g, " ").slice(0, 200);
}

class TimeoutError extends Error {}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  // Bun's S3 requests cannot be aborted: a hung request is abandoned and the attempt retried.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`no answer in ${Math.round(ms / 1000)} s`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
