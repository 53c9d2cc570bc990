// A repository location (what users give as --repo, `repository` or DUCKBAK_REPOSITORY) -> Store.
import type { S3Config } from "../config.ts";
import { LocalStore } from "./local.ts";
import { isS3Url, resolveS3Settings, S3Store } from "./s3.ts";
import type { Store } from "./store.ts";

export type { Store, StoreEntry } from "./store.ts";
export { StoreNotFoundError, StoreError } from "./store.ts";

export interface OpenStoreOptions {
  /** Environment to read settings from (credentials for remote stores); defaults to process.env. */
  env?: Record<string, string | undefined>;
  /** The [s3] table of duckbak.toml, for s3:// locations. */
  s3?: S3Config;
}

/** s3://bucket/prefix opens an S3Store, a folder path a LocalStore. */
export function openStore(location: string, opts: OpenStoreOptions = {}): Store {
  if (isS3Url(location)) return new S3Store(resolveS3Settings(location, opts.s3, opts.env));
  return new LocalStore(location);
}
