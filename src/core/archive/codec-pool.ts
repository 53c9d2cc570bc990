import { availableParallelism } from "node:os";
import type { Compression } from "../naming.ts";
import { moduleUrl } from "../self.ts";
import type { BlobKeys } from "../repo/blob.ts";

/**
 * One job for a worker: compress an archive member, or (repository) compute a blob's id, seal a
 * blob (zstd + AES-GCM), open one (decrypt, decompress; check its id unless expectId is null), or
 * check one (open it, hand nothing back).
 */
export type CodecJob =
  | { op: "compress"; codec: Compression }
  | { op: "blob-id"; keys: BlobKeys }
  | { op: "seal"; keys: BlobKeys }
  | { op: "open"; keys: BlobKeys; expectId: string | null }
  | { op: "check"; keys: BlobKeys; expectId: string }
  | { op: "digest-update" }
  | { op: "digest-end" };

export type CodecRequest = CodecJob & { id: number; data: Uint8Array };

export interface CodecResponse {
  id: number;
  data?: Uint8Array;
  /** blob-id: the id. */
  text?: string;
  /** The request's data, handed back for reuse. */
  input?: Uint8Array;
  error?: string;
}

export interface Compressed {
  /** In `input`'s own buffer when it fits there, else a buffer of its own. */
  data: Uint8Array;
  input: Uint8Array;
}

export interface JobResult {
  data?: Uint8Array;
  text?: string;
  input: Uint8Array;
}

export class CodecJobError extends Error {
  override name = "CodecJobError";
}

/**
 * SHA-256 of a byte stream on a worker thread of its own, so that a second hash of the same bytes
 * (the archive's body, beside each file's own) runs beside the thread that reads and hashes files.
 * Chunks are transferred in the order given and handed back once hashed.
 */
export class DigestWorker {
  private readonly worker = new Worker(moduleUrl("core/archive/codec-worker.ts"));
  private readonly pending = new Map<number, { resolve: (r: CodecResponse) => void; reject: (e: Error) => void }>();
  private nextId = 0;

  constructor() {
    this.worker.onmessage = (e: MessageEvent<CodecResponse>) => {
      const p = this.pending.get(e.data.id);
      this.pending.delete(e.data.id);
      if (e.data.error !== undefined) p?.reject(new CodecJobError(e.data.error));
      else p?.resolve(e.data);
    };
    this.worker.onerror = (e) => {
      for (const p of this.pending.values()) p.reject(new Error(`digest worker failed: ${e.message}`));
      this.pending.clear();
    };
  }

  private post(op: "digest-update" | "digest-end", data: Uint8Array): Promise<CodecResponse> {
    const id = this.nextId++;
    const reply = new Promise<CodecResponse>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.worker.postMessage({ op, id, data } satisfies CodecRequest, [data.buffer as ArrayBuffer]);
    return reply;
  }

  /**
   * Hashes `data` after every chunk given before it; resolves to the same bytes, handed back. The
   * whole buffer under `data` goes to the worker and back (other views of it are detached meanwhile).
   */
  async update(data: Uint8Array): Promise<Uint8Array> {
    return (await this.post("digest-update", data)).input!;
  }

  /** The hex digest of every chunk given; the worker starts a new stream after it. */
  async digest(): Promise<string> {
    return (await this.post("digest-end", new Uint8Array(0))).text!;
  }

  close(): void {
    this.worker.terminate();
  }
}

/** Worker threads running Bun's native codecs (libdeflate, zstd) and node:crypto; results come back per call. */
export class CodecPool {
  readonly size: number;
  private workers: Worker[] = [];
  private idle: Worker[] = [];
  private queue: CodecRequest[] = [];
  private pending = new Map<number, { resolve: (c: JobResult) => void; reject: (e: Error) => void }>();
  private nextId = 0;

  // Each worker keeps two 4 MiB members in flight: capped so that memory stays bounded on big hosts.
  constructor(size = Math.min(8, Math.max(1, availableParallelism()))) {
    this.size = size;
  }

  private spawn(): Worker {
    const w = new Worker(moduleUrl("core/archive/codec-worker.ts"));
    w.onmessage = (e: MessageEvent<CodecResponse>) => {
      const p = this.pending.get(e.data.id);
      this.pending.delete(e.data.id);
      if (e.data.error !== undefined) p?.reject(new CodecJobError(e.data.error));
      else p?.resolve({ data: e.data.data, text: e.data.text, input: e.data.input! });
      this.dispatch(w);
    };
    w.onerror = (e) => {
      for (const p of this.pending.values()) p.reject(new Error(`codec worker failed: ${e.message}`));
      this.pending.clear();
    };
    this.workers.push(w);
    return w;
  }

  private dispatch(w: Worker): void {
    const job = this.queue.shift();
    if (!job) {
      this.idle.push(w);
      return;
    }
    w.postMessage(job, [job.data.buffer as ArrayBuffer]);
  }

  /** Runs `job` on `data`, which is transferred to the worker and comes back as `input` with the result. */
  run(job: CodecJob, data: Uint8Array): Promise<JobResult> {
    const id = this.nextId++;
    // A view into a larger buffer cannot be transferred alone: copy it into its own.
    const own = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : data.slice();
    const promise = new Promise<JobResult>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.queue.push({ ...job, id, data: own });
    const w = this.idle.pop() ?? (this.workers.length < this.size ? this.spawn() : undefined);
    if (w) this.dispatch(w);
    return promise;
  }

  /**
   * Compresses `data`, which is transferred to the worker and comes back as `input` with the
   * result, which the worker copies into input's buffer when it fits: the caller recycles that
   * buffer, and reused pages cost less than fresh ones (page faults here, a slower write(2) later).
   */
  async compress(codec: Compression, data: Uint8Array): Promise<Compressed> {
    try {
      const r = await this.run({ op: "compress", codec }, data);
      return { data: r.data!, input: r.input };
    } catch (err) {
      throw err instanceof CodecJobError ? new Error(`compression failed: ${err.message}`) : err;
    }
  }

  close(): void {
    for (const w of this.workers) w.terminate();
    this.workers = [];
    this.idle = [];
  }
}
