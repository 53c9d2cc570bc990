// Where backups are kept, seen alike by status and the metrics file: the backup folder's archives
// and the repository's snapshots, each a list of backups (newest first) with their databases.
import type { BackupInfo } from "../list.ts";
import type { DatabaseFacts } from "../manifest.ts";
import type { Repository } from "../repo/repository.ts";
import { loadSnapshots, type UnreadableSnapshot } from "../repo/snapshots.ts";

export type TargetKind = "archive" | "snapshot";

export interface TargetBackup {
  /** The archive's name (its stem) or the snapshot's id. */
  name: string;
  /** The archive's file name, or the snapshot's short id. */
  file: string;
  createdAt: Date;
  /** Archive: its file size; snapshot: the bytes it added to the repository. */
  sizeBytes: number;
  databases: Pick<DatabaseFacts, "original_path" | "size_bytes" | "source_blocks">[];
}

export interface BackupTarget {
  kind: TargetKind;
  /** The backup folder, or the repository's location. */
  location: string;
  /** Readable backups, newest first. */
  backups: TargetBackup[];
  /** Archives or snapshot files that cannot be read: name and why. */
  unreadable: { name: string; error: string }[];
  /** Archives: the bytes of every archive, unreadable ones included. */
  totalBytes?: number;
}

export function archiveTarget(backupDir: string, archives: BackupInfo[]): BackupTarget {
  const readable = archives.filter((b) => b.createdAt !== null && b.manifest !== null);
  return {
    kind: "archive",
    location: backupDir,
    backups: readable.map((b) => ({ name: b.name, file: b.file, createdAt: b.createdAt!, sizeBytes: b.sizeBytes, databases: b.manifest!.databases })),
    unreadable: archives.filter((b) => !readable.includes(b)).map((b) => ({ name: b.path, error: b.error ?? "unreadable" })),
    totalBytes: archives.reduce((n, b) => n + b.sizeBytes, 0),
  };
}

/** Every snapshot of `repo`; a damaged snapshot file is listed as unreadable, as a damaged archive is. */
export async function snapshotTarget(repo: Repository): Promise<BackupTarget> {
  const unreadable: UnreadableSnapshot[] = [];
  const snaps = await loadSnapshots(repo, unreadable);
  return {
    kind: "snapshot",
    location: repo.location,
    backups: snaps.map((s) => ({ name: s.id, file: s.short, createdAt: s.timestamp, sizeBytes: s.snapshot.stats.added_bytes, databases: s.snapshot.databases })),
    unreadable: unreadable.map((u) => ({ name: u.id, error: u.error.message })),
  };
}

/** "archive backup_x" / "snapshot 1a2b3c4d": how a backup is named in messages. */
export function describeBackup(kind: TargetKind, b: Pick<TargetBackup, "name" | "file">): string {
  return kind === "archive" ? b.name : `snapshot ${b.file}`;
}
