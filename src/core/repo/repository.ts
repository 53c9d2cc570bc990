// The repository: config, keys, packs, index files and snapshot files in a Store. Every object is
// written once under a name derived from its content (sha256 of its stored bytes) and never
// changed; everything but `config` and the key files is encrypted under the master key.
// The format is documented in docs/REPOSITORY.md.
import { createHash, randomBytes } from "node:crypto";
import { DuckbakError, ExitCode } from "../errors.ts";
import { makeKeyFile, newMasterKey, openKeyFile, WrongPasswordError, type KeyFile, type MasterKey, type ScryptParams } from "../crypto/keys.ts";
import { seal, unseal, SealError } from "../crypto/seal.ts";
import { StoreNotFoundError, type Store } from "../store/store.ts";
import type { BlobKeys } from "./blob.ts";
import { isBlobId } from "./id-table.ts";

export const REPO_FORMAT = "duckbak-repository";
/**
 * 3: files' chunk ids in list blobs, outside the snapshot file (lists.ts). Versions 1 (blob ids
 * over the plaintext) and 2 (chunk ids inside the snapshot file) were pre-release formats.
 */
export const REPO_VERSION = 3;

export interface RepoConfig {
  format: typeof REPO_FORMAT;
  version: number;
  /** Random; tells repositories apart (not secret). */
  id: string;
  created: string;
  /** Chunk size of WAL and other side files: fixed-size chunks from offset 0. */
  side_chunk_bytes: number;
  /** Largest chunk of a main file (blocks bigger than this are cut in pieces at this size). */
  max_chunk_bytes: number;
  /** A pack is closed once its blobs reach this size. */
  pack_bytes: number;
}

/** A repository whose config or objects cannot be read as written: verify's exit code. */
export class RepositoryDamagedError extends DuckbakError {
  constructor(location: string, detail: string) {
    super(`${location}: ${detail}`, ExitCode.VERIFY_FAILED);
  }
}

export class NotARepositoryError extends DuckbakError {
  constructor(location: string, detail = "not a duckbak repository (no config; create one with 'duckbak init --repo')") {
    super(`${location}: ${detail}`, ExitCode.NOT_FOUND);
  }
}

export const sha256Hex = (data: Uint8Array): string => createHash("sha256").update(data).digest("hex");
export const packKey = (id: string): string => `data/${id.slice(0, 2)}/${id}`;

/** A lock file's name under locks/ (locks.ts: 16 random bytes in hex). */
export const isLockName = (name: string): boolean => /^[0-9a-f]{32}$/.test(name);

/** The pack a key of data/ names (`data/ab/ab…`), or null for any other file there. */
export function packOfKey(key: string): string | null {
  const id = key.slice(key.lastIndexOf("/") + 1);
  return isBlobId(id) && key === packKey(id) ? id : null;
}

const encodeJson = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
export const decodeJson = (b: Uint8Array) => JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(b));

async function readPlainJson<T>(store: Store, key: string): Promise<T> {
  const bytes = await store.get(key);
  try {
    return decodeJson(bytes) as T;
  } catch {
    throw new RepositoryDamagedError(store.location, `${key}: not valid JSON`);
  }
}

export class Repository {
  private constructor(
    readonly store: Store,
    readonly config: RepoConfig,
    private readonly master: MasterKey,
    /** The key file the password opened. */
    readonly keyId: string,
  ) {}

  get location(): string {
    return this.store.location;
  }

  /** Keys for the codec workers: they seal and open blobs themselves. */
  get blobKeys(): BlobKeys {
    return { encrypt: this.master.encrypt, id: this.master.id };
  }

  /** Creates a repository in an empty location; refuses one that has anything in it. */
  static async init(store: Store, password: string, opts: { scrypt?: ScryptParams; now?: Date } = {}): Promise<Repository> {
    for await (const e of store.list("")) {
      const there = e.key === "config" ? "a repository is there already (its config file exists)" : `${e.key} exists`;
      throw new DuckbakError(`${store.location}: not empty (${there}); a repository is created only in an empty folder`);
    }
    const now = opts.now ?? new Date();
    const config: RepoConfig = {
      format: REPO_FORMAT,
      version: REPO_VERSION,
      id: randomBytes(16).toString("hex"),
      created: now.toISOString(),
      side_chunk_bytes: 1 << 20,
      max_chunk_bytes: 1 << 20,
      pack_bytes: 16 << 20,
    };
    const master = newMasterKey();
    const key = encodeJson(await makeKeyFile(password, master, opts.scrypt, now));
    const keyId = sha256Hex(key);
    await store.put(`keys/${keyId}`, key);
    // The config last: a location without it is not a repository yet, so a crashed init can be redone.
    await store.put("config", encodeJson(config));
    return new Repository(store, config, master, keyId);
  }

  /** A repository's config (plain, no password needed), checked to be one this duckbak reads. */
  static async readConfig(store: Store): Promise<RepoConfig> {
    let config: RepoConfig;
    try {
      config = await readPlainJson<RepoConfig>(store, "config");
    } catch (err) {
      if (err instanceof StoreNotFoundError) throw new NotARepositoryError(store.location);
      throw err;
    }
    if (config.format !== REPO_FORMAT) throw new NotARepositoryError(store.location, "config: not a duckbak repository");
    if (typeof config.version !== "number" || config.version > REPO_VERSION)
      throw new DuckbakError(`${store.location}: repository format version ${config.version} is newer than this duckbak understands`);
    if (config.version < REPO_VERSION)
      throw new DuckbakError(`${store.location}: repository format version ${config.version} was a pre-release format that this duckbak no longer reads; restore its snapshots with the duckbak that wrote them`);
    return config;
  }

  /**
   * Opens a repository with the password; WrongPasswordError (exit 6) when no key opens.
   * `whileDeriving` runs once the first key derivation (~0.2 s on another thread) has started.
   */
  static async open(store: Store, password: string, config: RepoConfig | Promise<RepoConfig> = Repository.readConfig(store), whileDeriving?: () => void): Promise<Repository> {
    config = await config;
    let keys = 0;
    // A damaged key file is passed over: another may open. Only when none does is it the error.
    let damaged: RepositoryDamagedError | null = null;
    for await (const e of store.list("keys/")) {
      if (!isBlobId(e.key.slice("keys/".length))) continue;
      keys++;
      try {
        const file = await readPlainJson<KeyFile>(store, e.key);
        const opening = openKeyFile(password, file).catch(() => {
          throw new RepositoryDamagedError(store.location, `${e.key}: not a valid key file`);
        });
        if (keys === 1) whileDeriving?.();
        const master = await opening;
        if (master) return new Repository(store, config, master, e.key.slice("keys/".length));
      } catch (err) {
        if (!(err instanceof RepositoryDamagedError)) throw err;
        damaged ??= err;
      }
    }
    if (keys === 0) throw new RepositoryDamagedError(store.location, "keys/: no key files; the repository cannot be opened");
    if (damaged) throw new RepositoryDamagedError(store.location, `${damaged.message.slice(store.location.length + 2)}; no other key file opens with this password`);
    throw new WrongPasswordError(store.location, keys);
  }

  /** Adds a password: a new key file wrapping the same master key. Returns its key name. */
  async addKey(password: string, scrypt?: ScryptParams): Promise<string> {
    const key = encodeJson(await makeKeyFile(password, this.master, scrypt));
    const name = `keys/${sha256Hex(key)}`;
    await this.store.put(name, key);
    return name;
  }

  async listKeys(): Promise<{ id: string; created: string; current: boolean }[]> {
    const out = [];
    for (const id of await this.listIds("keys")) {
      const file = await readPlainJson<KeyFile>(this.store, `keys/${id}`);
      out.push({ id, created: file.created, current: id === this.keyId });
    }
    return out.sort((a, b) => a.created.localeCompare(b.created));
  }

  /** seal(zstd(JSON)) of an object, for index, snapshot and lock files. */
  sealJson(value: unknown): Uint8Array {
    return seal(this.master.encrypt, Bun.zstdCompressSync(encodeJson(value) as Uint8Array<ArrayBuffer>, { level: 3 }));
  }

  unsealJson<T>(key: string, bytes: Uint8Array): T {
    const text = this.unsealText(key, bytes);
    try {
      return decodeJson(text) as T;
    } catch (err) {
      throw new RepositoryDamagedError(this.location, `${key}: cannot be read (${(err as Error).message})`);
    }
  }

  /** The JSON text (UTF-8) of a sealed object. */
  unsealText(key: string, bytes: Uint8Array): Uint8Array {
    try {
      return Bun.zstdDecompressSync(unseal(this.master.encrypt, bytes) as Uint8Array<ArrayBuffer>);
    } catch (err) {
      throw new RepositoryDamagedError(this.location, `${key}: ${err instanceof SealError ? err.message : `cannot be read (${(err as Error).message})`}`);
    }
  }

  /** Writes an encrypted JSON object under `<prefix>/<sha256 of its bytes>`; returns the id. */
  async putJson(prefix: string, value: unknown): Promise<string> {
    const bytes = this.sealJson(value);
    const id = sha256Hex(bytes);
    await this.store.put(`${prefix}/${id}`, bytes);
    return id;
  }

  async getJson<T>(key: string): Promise<T> {
    const bytes = await this.store.get(key);
    return this.unsealJson<T>(key, bytes);
  }

  /** Open a sealed object by key, checking that its name matches its content. */
  async getJsonChecked<T>(key: string): Promise<T> {
    return this.unsealJson<T>(key, await this.getChecked(key));
  }

  /** getJsonChecked's JSON text, unparsed (index files are scanned, not parsed into objects). */
  async getTextChecked(key: string): Promise<Uint8Array> {
    return this.unsealText(key, await this.getChecked(key));
  }

  private async getChecked(key: string): Promise<Uint8Array> {
    const bytes = await this.store.get(key);
    const id = key.slice(key.lastIndexOf("/") + 1);
    if (sha256Hex(bytes) !== id) throw new RepositoryDamagedError(this.location, `${key}: content does not match its name`);
    return bytes;
  }

  /** Files in the repository that none of its kinds of object is named as (verify reports them; the rest pass them over). */
  async unexpectedFiles(): Promise<string[]> {
    const out: string[] = [];
    for await (const e of this.store.list("")) {
      const [kind, name = "", more] = e.key.split("/");
      const ours =
        e.key === "config" ||
        (more === undefined && (kind === "keys" || kind === "snapshots" || kind === "index") && isBlobId(name)) ||
        (more === undefined && kind === "locks" && isLockName(name)) ||
        (kind === "data" && packOfKey(e.key) !== null);
      if (!ours) out.push(e.key);
    }
    return out.sort();
  }

  /**
   * The objects under `prefix`: names that are ids (64 hex digits; `isName` for other kinds). A
   * file of another name (a stray README, an editor's backup) is none of ours: passed over here,
   * reported by verify.
   */
  async listIds(prefix: string, isName: (name: string) => boolean = isBlobId): Promise<string[]> {
    const ids: string[] = [];
    for await (const e of this.store.list(prefix + "/")) {
      const name = e.key.slice(prefix.length + 1);
      if (isName(name)) ids.push(name);
    }
    return ids;
  }
}
