// A repository location (what users give as --repo, `repository` or DUCKBAK_REPOSITORY) -> Store.
import { LocalStore } from "./local.ts";
import type { Store } from "./store.ts";

export type { Store, StoreEntry } from "./store.ts";
export { StoreNotFoundError, StoreError } from "./store.ts";

export interface OpenStoreOptions {
  /** Environment to read settings from (credentials for remote stores); defaults to process.env. */
  env?: Record<string, string | undefined>;
}

/** A folder path opens a LocalStore. */
export function openStore(location: string, _opts: OpenStoreOptions = {}): Store {
  return new LocalStore(location);
}
