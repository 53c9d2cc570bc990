// A repository in a local folder: each key is a file under the root, written to a temporary name
// in its own folder, flushed, renamed into place and the folder flushed, so a crash leaves the
// whole object or none. Files are 0600 and folders 0700: the repository is private to its owner.
import { mkdir, open, readdir, readFile, stat, unlink } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { DuckbakError, fsError } from "../errors.ts";
import { WRITE_PIECE, fsyncDir, readInto, removeStaleTemporaries, renameReplacing, tempPath, type RemovedTemporary } from "../fsutil.ts";
import { StoreNotFoundError, type Store, type StoreEntry } from "./store.ts";

const TMP_MARK = ".duckbak-tmp.";
/** Objects are named by 64 hex digits (ids); the repository's own folders never are. */
const OBJECT_NAME = /^[0-9a-f]{64}$/;

export class LocalStore implements Store {
  readonly location: string;
  private readonly madeDirs = new Set<string>();

  constructor(root: string) {
    this.location = resolve(root);
  }

  private path(key: string): string {
    // Keys come from the repository code, never from users; this guards against a bug, not an attack.
    if (key === "" || key.startsWith("/") || key.split("/").some((p) => p === "" || p === "." || p === ".."))
      throw new DuckbakError(`invalid store key ${JSON.stringify(key)}`);
    return join(this.location, ...key.split("/"));
  }

  private async ensureDir(dir: string): Promise<void> {
    if (this.madeDirs.has(dir)) return;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    this.madeDirs.add(dir);
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    const final = this.path(key);
    const dir = dirname(final);
    const tmp = tempPath(final);
    try {
      await this.ensureDir(dir);
      const fh = await open(tmp, "wx", 0o600);
      try {
        let off = 0;
        while (off < data.length) off += (await fh.write(data, off, Math.min(WRITE_PIECE, data.length - off))).bytesWritten;
        await fh.sync();
      } finally {
        await fh.close();
      }
      await renameReplacing(tmp, final);
      fsyncDir(dir);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw fsError(err, final, "write");
    }
  }

  async get(key: string): Promise<Uint8Array> {
    const p = this.path(key);
    try {
      return new Uint8Array(await readFile(p));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new StoreNotFoundError(this.location, key);
      throw fsError(err, p, "read");
    }
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    const buf = new Uint8Array(length);
    await this.getRangeInto(key, offset, buf);
    return buf;
  }

  async getRangeInto(key: string, offset: number, target: Uint8Array): Promise<void> {
    const p = this.path(key);
    let fh;
    try {
      fh = await open(p, "r");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new StoreNotFoundError(this.location, key);
      throw fsError(err, p, "read");
    }
    try {
      const got = await readInto(fh, offset, target);
      if (got < target.length) throw new DuckbakError(`${p}: file is shorter than expected (wanted ${target.length} bytes at offset ${offset}, got ${got})`);
    } catch (err) {
      throw fsError(err, p, "read");
    } finally {
      await fh.close();
    }
  }

  async stat(key: string): Promise<{ size: number } | null> {
    const st = await stat(this.path(key)).catch((err) => {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw fsError(err, this.path(key), "stat");
    });
    return st ? { size: st.size } : null;
  }

  async *list(prefix: string): AsyncIterable<StoreEntry> {
    // Walk from the deepest folder the prefix names, then filter by the full prefix.
    const cut = prefix.lastIndexOf("/");
    const base = cut < 0 ? "" : prefix.slice(0, cut);
    yield* this.walk(base, prefix);
  }

  private async *walk(rel: string, prefix: string): AsyncIterable<StoreEntry> {
    const dir = rel === "" ? this.location : join(this.location, ...rel.split("/"));
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw fsError(err, dir, "list");
    }
    for (const e of entries) {
      if (e.name.startsWith(TMP_MARK)) continue;
      const key = rel === "" ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory() && !OBJECT_NAME.test(e.name)) {
        if (prefix.startsWith(key + "/") || key.startsWith(prefix)) yield* this.walk(key, prefix);
        continue;
      }
      if (!key.startsWith(prefix)) continue;
      const st = await stat(join(dir, e.name)).catch(() => null);
      if (e.isFile()) {
        if (st) yield { key, size: st.size }; // (else removed meanwhile)
        continue;
      }
      // A link, or a folder named as an object, is listed as that object: reading it then fails
      // loudly (a link to a sound copy reads as one) rather than the object being silently
      // missing, which would make cleanup take what it uses for unused.
      yield { key, size: st?.isFile() ? st.size : 0 };
    }
  }

  async delete(key: string): Promise<void> {
    const p = this.path(key);
    try {
      await unlink(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw fsError(err, p, "delete");
    }
  }

  /** Removes the temporaries that dead runs of this host left in the store's folders (kill -9, a crash). */
  async removeStaleTemporaries(): Promise<RemovedTemporary[]> {
    const removed: RemovedTemporary[] = [];
    const sweep = async (dir: string): Promise<void> => {
      removed.push(...(await removeStaleTemporaries(dir)));
      for (const e of await readdir(dir, { withFileTypes: true }).catch(() => []))
        if (e.isDirectory() && !e.name.startsWith(TMP_MARK)) await sweep(join(dir, e.name));
    };
    await sweep(this.location);
    return removed;
  }
}
