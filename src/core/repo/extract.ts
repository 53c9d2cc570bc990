// A repository snapshot as a backup to look into (ls, sql, restore --table): its databases'
// facts from the snapshot file, and their files written (checked against their sha256) into a
// private temporary folder by the repository's restore code, the same way archives are extracted.
import { join } from "node:path";
import { CodecPool } from "../archive/codec-pool.ts";
import { fileSink, withTempDir } from "../extract.ts";
import { isSafeEntryName } from "../naming.ts";
import type { BackupSource, ExtractedDatabase } from "../browse.ts";
import { lockRepository } from "./locks.ts";
import { RepositoryDamagedError, type Repository } from "./repository.ts";
import { openSnapshot, writeSnapshotFile } from "./restore.ts";
import { findSnapshot, type SnapshotInfo } from "./snapshots.ts";

export interface SnapshotSource extends BackupSource {
  snapshot: SnapshotInfo;
}

/** The snapshot `ref` names (latest, an id or a unique prefix) as a BackupSource. */
export async function snapshotSource(repo: Repository, ref: string, opts: { lockWaitSeconds?: number } = {}): Promise<SnapshotSource> {
  const snap = await findSnapshot(repo, ref);
  return {
    snapshot: snap,
    name: `snapshot ${snap.short}`,
    label: `${repo.location} snapshot ${snap.short}`,
    manifest: async () => snap.snapshot,
    extract: (fn, o) =>
      withTempDir(async (dir) => {
        const not = "not extracted";
        let dbs: ExtractedDatabase[];
        // Held while the files are read (cleanup must not delete their packs meanwhile), not while `fn` runs.
        const lock = await lockRepository(repo, { exclusive: false, command: "restore", waitSeconds: opts.lockWaitSeconds });
        const pool = new CodecPool();
        try {
          const opened = await openSnapshot(repo, snap.id, o.only, not);
          const files = opened.dbs.flatMap((d) => d.files);
          for (const f of files) if (!isSafeEntryName(f.entry)) throw new RepositoryDamagedError(repo.location, `snapshot ${snap.short}: file entry ${JSON.stringify(f.entry)} is not a plain file name; ${not}`);
          o.progress?.start(files.reduce((n, f) => n + f.size_bytes, 0), `extracting snapshot ${snap.short}`);
          for (const f of files) await writeSnapshotFile(repo, pool, opened, f, fileSink(join(dir, f.entry), `${f.name} (snapshot ${snap.short})`), (n) => o.progress?.advance(n));
          dbs = opened.dbs.map((d) => ({ name: d.name, originalPath: d.original_path, path: join(dir, d.entry) }));
        } catch (err) {
          if (err instanceof RepositoryDamagedError && !err.message.endsWith(not)) throw new RepositoryDamagedError(repo.location, `${err.message.slice(repo.location.length + 2)}; ${not}`);
          throw err;
        } finally {
          pool.close();
          await lock.release();
        }
        return fn(dbs);
      }),
  };
}
