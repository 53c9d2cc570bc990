import { DuckbakError, ExitCode } from "../errors.ts";
import type { RemovedTemporary } from "../fsutil.ts";

// Where a repository's bytes live, behind one small interface: a local folder (local.ts) or an
// S3 bucket prefix (s3.ts). The repository (src/core/repo/) only ever names files by relative
// keys such as "config", "keys/<id>", "data/ab/<id>", "index/<id>", "snapshots/<id>", "locks/<id>";
// every file is written once under its final name and never modified, so a store needs no
// read-modify-write and no rename of its own beyond making each put atomic.

export interface StoreEntry {
  /** Relative key, '/'-separated, e.g. "data/ab/ab12…". */
  key: string;
  size: number;
}

export interface Store {
  /** What to show users: a folder path or s3://bucket/prefix. Never contains credentials. */
  readonly location: string;
  /**
   * Writes `data` under `key`, atomically: a reader (and a crash at any instant) sees the whole
   * object or none. Overwrites an existing key (callers write content-addressed names only).
   */
  put(key: string, data: Uint8Array): Promise<void>;
  /** The whole object; throws StoreNotFoundError when the key does not exist. */
  get(key: string): Promise<Uint8Array>;
  /** `length` bytes from `offset`; throws StoreNotFoundError, or a store error if short. */
  getRange(key: string, offset: number, length: number): Promise<Uint8Array>;
  /**
   * getRange into `target` (target.length bytes from `offset`): a store that can read straight
   * into it allocates nothing per read, so a long stream of reads reuses the same warm pages.
   */
  getRangeInto(key: string, offset: number, target: Uint8Array): Promise<void>;
  /** Size of the object, or null when absent. */
  stat(key: string): Promise<{ size: number } | null>;
  /** Every key under `prefix` (e.g. "snapshots/"), in no particular order. */
  list(prefix: string): AsyncIterable<StoreEntry>;
  /** Removes what dead runs of this host left under temporary names (a store that has such names). */
  removeStaleTemporaries?(): Promise<RemovedTemporary[]>;
  /** Removes `key`; absent keys are not an error. */
  delete(key: string): Promise<void>;
}

/** The key does not exist in the store. */
export class StoreNotFoundError extends DuckbakError {
  constructor(readonly location: string, readonly key: string) {
    super(`${location}: ${key}: not found`, ExitCode.NOT_FOUND);
  }
}

/** A store refused or failed an operation (remote stores: after their retries). */
export class StoreError extends DuckbakError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ExitCode.STORE_ERROR, options);
  }
}
