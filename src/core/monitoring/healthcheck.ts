// healthcheck_url, healthchecks.io style: GET <url>/start when daily begins, GET <url> when it
// succeeds, POST <url>/fail with the tail of the log when it does not. A ping that fails is
// reported as a warning and never changes the run's result.

export const PING_TIMEOUT_MS = 10_000;
/** healthchecks.io keeps the first 100 kB of a ping body. */
export const PING_BODY_LIMIT = 100_000;

export type PingKind = "start" | "success" | "fail";

export function pingUrl(base: string, kind: PingKind): string {
  return kind === "success" ? base : `${base}/${kind}`;
}

/** The last `limit` bytes of `text`, cut at a line start. */
export function tail(text: string, limit = PING_BODY_LIMIT): string {
  if (Buffer.byteLength(text) <= limit) return text;
  const cut = Buffer.from(text).subarray(-limit).toString("utf8");
  const nl = cut.indexOf("\n");
  return nl >= 0 ? cut.slice(nl + 1) : cut;
}

/** One ping, one retry; null when it got a 2xx, else why not (one line, without the URL's secret path). */
export async function ping(base: string, kind: PingKind, body?: string, timeoutMs = PING_TIMEOUT_MS): Promise<string | null> {
  const url = pingUrl(base, kind);
  let last = "";
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const res = await fetch(url, {
        method: body === undefined ? "GET" : "POST",
        body,
        headers: body === undefined ? undefined : { "content-type": "text/plain; charset=utf-8" },
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.arrayBuffer().catch(() => {});
      if (res.ok) return null;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).name === "TimeoutError" ? `no answer within ${timeoutMs / 1000}s` : (err as Error).message;
    }
  }
  return `health check ping '${kind}' to ${new URL(url).host} failed: ${last}`;
}
