import { availableParallelism } from "node:os";
import type { Compression } from "../naming.ts";
import { moduleUrl } from "../self.ts";

export interface CodecRequest {
  id: number;
  codec: Compression;
  data: Uint8Array;
}
export interface CodecResponse {
  id: number;
  data?: Uint8Array;
  /** The request's data, handed back for reuse. */
  input?: Uint8Array;
  error?: string;
}

export interface Compressed {
  data: Uint8Array;
  input: Uint8Array;
}

/** Worker threads running Bun's native codecs (libdeflate, zstd); results come back per call. */
export class CodecPool {
  readonly size: number;
  private workers: Worker[] = [];
  private idle: Worker[] = [];
  private queue: CodecRequest[] = [];
  private pending = new Map<number, { resolve: (c: Compressed) => void; reject: (e: Error) => void }>();
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
      if (e.data.error !== undefined) p?.reject(new Error(`compression failed: ${e.data.error}`));
      else p?.resolve({ data: e.data.data!, input: e.data.input! });
      this.dispatch(w);
    };
    w.onerror = (e) => {
      for (const p of this.pending.values()) p.reject(new Error(`compression worker failed: ${e.message}`));
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

  /** Compresses `data`, which is transferred to the worker and comes back as `input` with the result. */
  compress(codec: Compression, data: Uint8Array): Promise<Compressed> {
    const id = this.nextId++;
    // A view into a larger buffer cannot be transferred alone: copy it into its own.
    const own = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : data.slice();
    const promise = new Promise<Compressed>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.queue.push({ id, codec, data: own });
    const w = this.idle.pop() ?? (this.workers.length < this.size ? this.spawn() : undefined);
    if (w) this.dispatch(w);
    return promise;
  }

  close(): void {
    for (const w of this.workers) w.terminate();
    this.workers = [];
    this.idle = [];
  }
}
