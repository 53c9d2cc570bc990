import { availableParallelism } from "node:os";
import type { Compression } from "../naming.ts";
import { moduleUrl } from "../self.ts";
import type { BlobKeys } from "../repo/blob.ts";
import type { Seeds } from "../repo/chunk-print.ts";

/** [offset, length] within the job's data. */
export type Span = [number, number];

/**
 * One job for a worker: compress an archive member, or (repository) work on many chunks of one
 * buffer (spans of it; shared memory is read in place), so that a slab of a file costs one message
 * instead of one per chunk:
 *   ids:         each span's id and SHA-256 (`sums`); with `blocks`, also which whole DuckDB
 *                blocks in the data fail their checksum (blocks start at `blocks.first` + k × `blocks.size`);
 *                with `seeds`, each span's print too (`prints`), its SHA-256 taken from `prior` when
 *                the print is the one there (see sum-cache.ts);
 *   seal-spans:  each span sealed, handed back in `parts`;
 *   open-spans:  each span opened (to its plain length in `sizes`) and checked against its id,
 *                written one after another into `out` (shared memory), which they fill; their
 *                SHA-256s in `sums`;
 *   check-spans: each span opened (to its `sizes` length) and checked against its id; the ones
 *                that fail in `failures`.
 * digest-update and digest-end go to a DigestWorker only.
 */
export type CodecJob =
  | { op: "compress"; codec: Compression }
  /** Without keys (the repository not open yet): the SHA-256s only, no ids. */
  | { op: "ids"; keys?: BlobKeys; spans: Span[]; blocks?: { first: number; size: number }; seeds?: Seeds; prior?: Uint8Array }
  | { op: "seal-spans"; keys: BlobKeys; spans: Span[] }
  | { op: "open-spans"; keys: BlobKeys; spans: Span[]; expectIds: string[]; sizes: number[]; out: Uint8Array }
  | { op: "check-spans"; keys: BlobKeys; spans: Span[]; expectIds: string[]; sizes: number[] }
  | { op: "digest-update" }
  | { op: "digest-end" };

export type CodecRequest = CodecJob & { id: number; data: Uint8Array };

export interface CodecResponse {
  id: number;
  data?: Uint8Array;
  /** digest-end: the digest. */
  text?: string;
  /** ids: the spans' ids. */
  ids?: string[];
  /** ids, open-spans: the spans' (plain) SHA-256s, SUM_BYTES each, in span order. */
  sums?: Uint8Array;
  /** ids with blocks: offsets (in the data) of whole blocks that fail DuckDB's checksum. */
  badBlocks?: number[];
  /** ids with seeds: the spans' prints, PRINT_BYTES each; and how many bytes were hashed (not known from `prior`). */
  prints?: Uint8Array;
  hashedBytes?: number;
  /** seal-spans: the sealed spans. */
  parts?: Uint8Array[];
  /** check-spans: [span index, why] of each span that fails. */
  failures?: [number, string][];
  /** The request's data, handed back for reuse (not shared memory, which stays with the caller). */
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
  ids?: string[];
  sums?: Uint8Array;
  badBlocks?: number[];
  prints?: Uint8Array;
  hashedBytes?: number;
  parts?: Uint8Array[];
  failures?: [number, string][];
  input: Uint8Array;
}

const isShared = (data: Uint8Array) => data.buffer instanceof SharedArrayBuffer;

export class CodecJobError extends Error {
  override name = "CodecJobError";
}

/**
 * SHA-256 of a byte stream on a worker thread of its own, so that a second hash of the same bytes
 * (the archive's body, beside each file's own) runs beside the thread that reads and hashes files.
 * Chunks are transferred in the order given and handed back once hashed; chunks in shared memory
 * are read in place (leave them unchanged until update resolves).
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
    this.worker.postMessage({ op, id, data } satisfies CodecRequest, isShared(data) ? [] : [data.buffer as ArrayBuffer]);
    return reply;
  }

  /**
   * Hashes `data` after every chunk given before it; resolves to the same bytes, handed back. The
   * whole buffer under `data` goes to the worker and back (other views of it are detached meanwhile).
   */
  async update(data: Uint8Array): Promise<Uint8Array> {
    return (await this.post("digest-update", data)).input ?? data;
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

  /** Starts every worker now (they load meanwhile), rather than at the first jobs. */
  start(): this {
    while (this.workers.length < this.size) this.idle.push(this.spawn());
    return this;
  }

  private spawn(): Worker {
    const w = new Worker(moduleUrl("core/archive/codec-worker.ts"));
    w.onmessage = (e: MessageEvent<CodecResponse>) => {
      const p = this.pending.get(e.data.id);
      this.pending.delete(e.data.id);
      if (e.data.error !== undefined) p?.reject(new CodecJobError(e.data.error));
      else p?.resolve({ ...e.data, input: e.data.input! });
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
    w.postMessage(job, isShared(job.data) ? [] : [job.data.buffer as ArrayBuffer]);
  }

  /**
   * Runs `job` on `data`, which is transferred to the worker and comes back as `input` with the
   * result; data in shared memory (a SharedArrayBuffer) is neither copied nor transferred, and
   * the caller must leave it unchanged until the job is done.
   */
  run(job: CodecJob, data: Uint8Array): Promise<JobResult> {
    const id = this.nextId++;
    // A view into a larger buffer cannot be transferred alone: copy it into its own.
    const own = isShared(data) || (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) ? data : data.slice();
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

/**
 * Buffers of shared memory that the workers read or fill in place (no copy, no message per
 * chunk): enough of them to keep every worker busy; their number bounds memory.
 */
export class SlabRing {
  private free: Uint8Array[] = [];
  private waiting: ((slab: Uint8Array) => void)[] = [];
  constructor(
    readonly count: number,
    readonly bytes: number,
  ) {
    for (let i = 0; i < count; i++) this.free.push(new Uint8Array(new SharedArrayBuffer(bytes)));
  }
  take(): Promise<Uint8Array> {
    const slab = this.free.pop();
    return slab ? Promise.resolve(slab) : new Promise((resolve) => this.waiting.push(resolve));
  }
  give(slab: Uint8Array): void {
    const next = this.waiting.shift();
    if (next) next(slab);
    else this.free.push(slab);
  }
}

/**
 * Collects garbage after every `every` bytes of large buffers a loop has let go of (packs read
 * and dropped, sealed blobs once packed). Their memory is freed only by a collection, and the
 * engine runs one by the size of its (small) heap of objects, not by these buffers: without
 * this, hundreds of MiB of dead buffers pile up while a repository streams past, and fresh
 * pages cost page faults where freed ones would have been reused.
 */
export class BufferChurn {
  private dropped = 0;
  constructor(private readonly every = 16 << 20) {}

  drop(bytes: number): void {
    this.dropped += bytes;
    if (this.dropped < this.every) return;
    this.dropped = 0;
    Bun.gc(true);
  }
}
