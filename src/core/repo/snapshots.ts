// Snapshot files: what one backup run captured. The database fields are the archive manifest's
// (src/core/manifest.ts), and each file also names its chunk lists (lists.ts): the list blobs
// that hold its chunks' ids in order, so a snapshot file stays small whatever the database size.
import { ArchiveNotFoundError, DuckbakError, UsageError } from "../errors.ts";
import type { DatabaseFacts, FileFacts, ManifestFailure } from "../manifest.ts";
import { RepositoryDamagedError, type Repository } from "./repository.ts";
import type { ChunkLists } from "./lists.ts";

export const SNAPSHOT_FORMAT = "duckbak-snapshot";
export const SNAPSHOT_VERSION = 3;

export interface RepoFile extends FileFacts, ChunkLists {
  /** SHA-256 of the file's chunks' SHA-256s, in file order (crypto/seal.ts FileDigest): restore checks it. */
  chunks_sha256: string;
}

export type RepoDatabase = DatabaseFacts<RepoFile>;

export interface RepoSnapshot {
  format: typeof SNAPSHOT_FORMAT;
  version: typeof SNAPSHOT_VERSION;
  timestamp: string;
  host: string;
  duckbak_version: string;
  databases: RepoDatabase[];
  failed: ManifestFailure[];
  stats: {
    /** Bytes of the databases' files. */
    logical_bytes: number;
    chunks: number;
    new_blobs: number;
    /** Bytes this snapshot added to the repository (new packs and index files). */
    added_bytes: number;
  };
}

/** A snapshot without its chunk lists: what listing and the JSON output show. */
export type RepoFileHead = Omit<RepoFile, keyof ChunkLists>;
export interface RepoDatabaseHead extends Omit<RepoDatabase, "files"> {
  files: RepoFileHead[];
}
export interface SnapshotHead extends Omit<RepoSnapshot, "databases"> {
  databases: RepoDatabaseHead[];
}

export interface SnapshotInfo {
  id: string;
  short: string;
  timestamp: Date;
  snapshot: SnapshotHead;
}

export function headOf(s: RepoSnapshot): SnapshotHead {
  return { ...s, databases: s.databases.map((d) => ({ ...d, files: d.files.map(({ chunk_count: _, lists: __, ...f }) => f) })) };
}

/** One snapshot whole, its files' list blob ids included. */
export function loadSnapshot(repo: Repository, id: string): Promise<RepoSnapshot> {
  return repo.getJsonChecked<RepoSnapshot>(`snapshots/${id}`);
}

export const shortId = (id: string) => id.slice(0, 8);

export interface UnreadableSnapshot {
  id: string;
  error: DuckbakError;
}

/**
 * Every snapshot, newest first, without their files' list blob ids. Code that needs a snapshot's
 * chunks loads it with loadSnapshot, one at a time. Given `unreadable`, a snapshot file that
 * cannot be read goes there instead of failing the whole list (never for cleanup: what it uses
 * would look unused).
 */
export async function loadSnapshots(repo: Repository, unreadable?: UnreadableSnapshot[]): Promise<SnapshotInfo[]> {
  const out: SnapshotInfo[] = [];
  for (const id of await repo.listIds("snapshots")) {
    try {
      const snapshot = headOf(await loadSnapshot(repo, id));
      out.push({ id, short: shortId(id), timestamp: new Date(snapshot.timestamp), snapshot });
    } catch (err) {
      if (!unreadable || !(err instanceof DuckbakError)) throw err;
      unreadable.push({ id, error: err });
    }
  }
  return out.sort((a, b) => b.timestamp.getTime() - a.timestamp.getTime() || (a.id < b.id ? -1 : 1));
}

/** The snapshot `ref` names; other snapshots' damaged files do not stand in the way (resolveSnapshot). */
export async function findSnapshot(repo: Repository, ref: string): Promise<SnapshotInfo> {
  const unreadable: UnreadableSnapshot[] = [];
  return resolveSnapshot(await loadSnapshots(repo, unreadable), ref, repo.location, unreadable);
}

/**
 * `latest`, a full id or a unique prefix of one. An unreadable snapshot (`unreadable`) the ref
 * could name fails it: it may be the newest, or the one meant.
 */
export function resolveSnapshot(all: SnapshotInfo[], ref: string, location: string, unreadable: UnreadableSnapshot[] = []): SnapshotInfo {
  ref = ref.toLowerCase(); // ids are printed in lowercase; LATEST or an id typed in capitals means the same
  const doubt = unreadable.find((u) => ref === "latest" || u.id.startsWith(ref));
  if (doubt) {
    const detail = doubt.error.message.replace(`${location}: `, "").replace(`${location}/`, "");
    throw new RepositoryDamagedError(location, `${detail}; '${ref}' may name it (name another snapshot by its id)`);
  }
  if (ref === "latest") {
    if (!all[0]) throw new ArchiveNotFoundError("latest", `${location} (it has no snapshots)`);
    return all[0];
  }
  if (!/^[0-9a-f]{1,64}$/.test(ref)) throw new ArchiveNotFoundError(ref, `${location} (a snapshot is named by its id, a unique prefix of it, or 'latest')`);
  const match = all.filter((s) => s.id.startsWith(ref));
  if (match.length === 0) throw new ArchiveNotFoundError(ref, location);
  if (match.length > 1) throw new UsageError(`${ref}: matches ${match.length} snapshots (${match.slice(0, 4).map((s) => s.short).join(", ")}…); give more characters`);
  return match[0]!;
}
