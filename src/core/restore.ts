// restore: puts databases from a backup back, never leaving a half-written or mixed database.
// Each database is written to temporary names in its target folder, flushed, checked (sha256 and
// an open in DuckDB), and only then moved into place; the current files are kept as
// `<file>.bak.<YYYYMMDD_HHMMSS>` unless --overwrite.
import { chmod, chown, link, open, readdir, rename, rm, stat, unlink, copyFile, mkdir, constants } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { scanArchive, readArchiveManifest, type ArchiveScan } from "./archive/reader.ts";
import { judgeDatabase } from "./verify.ts";
import { fileSink, withTempDir } from "./extract.ts";
import { duckdbMessage, openReadOnly, isLockError, parseLockHolder } from "./duckdb/open.ts";
import { fsyncDir, removeStaleTemporaries, tempPath } from "./fsutil.ts";
import { CorruptArchiveError, DatabaseLockedError, DuckbakError, ExitCode, UsageError, fsError } from "./errors.ts";
import { isSafeEntryName, isWalFile, utcStamp } from "./naming.ts";
import type { ArchiveRef } from "./list.ts";
import { parseMode, type Manifest, type ManifestDatabase, type ManifestFile } from "./manifest.ts";
import { localIds } from "./owners.ts";

export interface RestoreOptions {
  /** Replace current files instead of keeping them as .bak files. */
  overwrite?: boolean;
  /** Put the databases in this folder instead of their original paths. */
  restoreDir?: string;
  /** Restore only these databases (file name, archive entry or original path). */
  only?: string[];
  /** Run verify's checks 1–2 before writing anything (default true). */
  verify?: boolean;
  now?: Date;
}

export interface RestoredDatabase {
  name: string;
  target: string;
  /** Files written: the database and its WAL files. */
  files: string[];
  /** Where the files that were there before went. */
  backups: string[];
  /** Files that were replaced or removed without a .bak (--overwrite), stale WAL files included. */
  replaced: string[];
}

export interface RestoreResult {
  archive: string;
  name: string;
  databases: RestoredDatabase[];
}

interface Plan {
  db: ManifestDatabase;
  target: string;
  /** Temporary path of each file, by archive entry; a WAL's temp name is its main's plus ".wal…". */
  temps: Map<string, string>;
}


/** Picks databases for --only; every name given must match. */
export function selectDatabases(manifest: Manifest, only: string[] | undefined): ManifestDatabase[] {
  if (!only?.length) return manifest.databases;
  const picked = new Set<ManifestDatabase>();
  for (const want of only) {
    const match = manifest.databases.filter((d) => d.name === want || d.entry === want || d.original_path === resolve(want));
    if (match.length === 0)
      throw new UsageError(`--only ${want}: no such database in the backup (it has ${manifest.databases.map((d) => d.name).join(", ")})`);
    for (const m of match) picked.add(m);
  }
  return manifest.databases.filter((d) => picked.has(d));
}

/** Where each database goes; refuses manifests whose names could point a write elsewhere. */
export function planTargets(dbs: ManifestDatabase[], restoreDir: string | undefined, archive: string): { db: ManifestDatabase; target: string }[] {
  const names = dbs.map((d) => d.name);
  return dbs.map((db) => {
    const bad = (why: string) => new CorruptArchiveError(archive, `database ${JSON.stringify(db.name)}: ${why}`);
    if (!isSafeEntryName(db.name)) throw bad("its name is not a plain file name");
    for (const f of db.files)
      if (!isSafeEntryName(f.name) || !f.name.startsWith(db.name)) throw bad(`file ${JSON.stringify(f.name)} does not belong to it`);
    if (restoreDir) {
      // Two databases of one name (from different folders) keep their distinct archive names.
      const name = names.filter((n) => n === db.name).length > 1 ? db.entry : db.name;
      return { db, target: join(resolve(restoreDir), name) };
    }
    if (!isAbsolute(db.original_path) || basename(db.original_path) !== db.name) throw bad("its original_path does not end in its name");
    return { db, target: db.original_path };
  });
}

/** Refuses a target that a running process has open for writing: it would corrupt the restore, or be corrupted. */
async function assertNotLocked(target: string): Promise<void> {
  const exists = await stat(target).then((s) => s.isFile(), () => false);
  if (!exists) return;
  try {
    (await openReadOnly(target)).closeSync();
  } catch (err) {
    const msg = (err as Error).message;
    // A damaged current database does not open either: that is often why one restores.
    if (isLockError(msg)) throw new DatabaseLockedError(target, parseLockHolder(msg), 0);
  }
}

function tempFor(db: ManifestDatabase, file: ManifestFile, base: string): string {
  return file.role === "main" ? base : base + file.name.slice(db.name.length);
}

/** Files that belong to a database at `target`: the file itself and its `<name>.wal*` files. */
async function currentFiles(target: string): Promise<string[]> {
  const dir = dirname(target);
  const name = basename(target);
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => n === name || isWalFile(n, name)).sort().map((n) => join(dir, n));
}

async function keepAsBak(file: string, ts: string): Promise<string> {
  for (let i = 1; ; i++) {
    const bak = `${file}.bak.${ts}${i > 1 ? `_${i}` : ""}`;
    try {
      await link(file, bak);
      return bak;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EEXIST") continue;
      if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP") throw fsError(err, file, "keep as .bak");
      // No hard links here: a copy, flushed, keeps the current file in place until it is replaced.
      try {
        await copyFile(file, bak, constants.COPYFILE_EXCL);
        const h = await open(bak, "r+");
        await h.sync().finally(() => h.close());
        return bak;
      } catch (copyErr) {
        if ((copyErr as NodeJS.ErrnoException).code === "EEXIST") continue;
        throw fsError(copyErr, file, "keep as .bak");
      }
    }
  }
}

/** The archived file's mode, and its owner when running as root (only root can give files away). */
async function applyRecordedOwnership(temp: string, f: ManifestFile, fallbackMode: number): Promise<void> {
  await chmod(temp, f.mode !== undefined ? parseMode(f.mode) : fallbackMode).catch((err) => { throw fsError(err, temp, "set mode"); });
  if (f.uid === undefined || f.gid === undefined || process.getuid?.() !== 0) return;
  const { uid, gid } = localIds({ uid: f.uid, gid: f.gid, owner: f.owner ?? "", group: f.group ?? "" });
  await chown(temp, uid, gid).catch((err) => { throw fsError(err, temp, "set owner"); });
}

/**
 * Moves a checked database into place. Old WAL files go first: a crash then leaves the old
 * database at its last checkpoint (its WAL kept as .bak unless --overwrite), never the restored
 * database with a stale WAL that DuckDB would replay onto it.
 */
async function commit(plan: Plan, opts: { overwrite: boolean; ts: string }): Promise<RestoredDatabase> {
  const result: RestoredDatabase = { name: plan.db.name, target: plan.target, files: [], backups: [], replaced: [] };
  const existing = await currentFiles(plan.target);
  // Backups made before modes were recorded: the current database's permissions, else private.
  const fallbackMode = ((await stat(plan.target).catch(() => null))?.mode ?? 0o600) & 0o777;
  if (!opts.overwrite) for (const f of existing) result.backups.push(await keepAsBak(f, opts.ts));
  else result.replaced.push(...existing);
  for (const f of existing) if (f !== plan.target) await unlink(f).catch((err) => { throw fsError(err, f, "remove stale WAL"); });
  const main = plan.db.files.find((f) => f.role === "main")!;
  const ordered = [main, ...plan.db.files.filter((f) => f.role !== "main")];
  for (const f of ordered) {
    const finalPath = f.role === "main" ? plan.target : plan.target + f.name.slice(plan.db.name.length);
    await applyRecordedOwnership(plan.temps.get(f.entry)!, f, fallbackMode);
    await rename(plan.temps.get(f.entry)!, finalPath).catch((err) => { throw fsError(err, finalPath, "move into place"); });
    result.files.push(finalPath);
  }
  fsyncDir(dirname(plan.target));
  return result;
}

function assertScanOk(scan: ArchiveScan, dbs: ManifestDatabase[], archive: string, blocks: boolean, consequence: string): void {
  if (scan.problems.length) throw new CorruptArchiveError(archive, `${scan.problems[0]}; ${consequence}`);
  for (const db of dbs) {
    const judged = judgeDatabase(scan, db, blocks);
    if (!judged.ok) throw new CorruptArchiveError(archive, `${judged.problems[0]}; ${consequence}`);
  }
}

const NOTHING_RESTORED = "nothing was restored";

export async function restoreBackup(ref: ArchiveRef, opts: RestoreOptions = {}): Promise<RestoreResult> {
  const ts = utcStamp(opts.now ?? new Date());
  let manifest: Manifest;
  if (opts.verify ?? true) {
    // Checks 1–2 of verify, before anything is written anywhere.
    const scan = await scanArchive(ref, { blocks: true });
    if (!scan.manifest) throw new CorruptArchiveError(ref.path, `${scan.problems[0] ?? "no manifest"}; ${NOTHING_RESTORED}`);
    manifest = scan.manifest;
    assertScanOk(scan, selectDatabases(manifest, opts.only), ref.path, true, NOTHING_RESTORED);
  } else {
    manifest = await readArchiveManifest(ref.path, ref.compression).catch((err) => {
      throw err instanceof CorruptArchiveError ? new CorruptArchiveError(ref.path, `${err.detail}; ${NOTHING_RESTORED}`) : err;
    });
  }
  const targets = planTargets(selectDatabases(manifest, opts.only), opts.restoreDir, ref.path);
  for (const { target } of targets) {
    await mkdir(dirname(target), { recursive: true }).catch((err) => { throw fsError(err, dirname(target), "create folder"); });
    // Temporaries of an earlier restore that was killed (they can be as big as the database).
    await removeStaleTemporaries(dirname(target));
    const st = await stat(target).catch(() => null);
    if (st && !st.isFile()) throw new DuckbakError(`${target}: exists and is not a regular file; not replaced`);
    await assertNotLocked(target);
  }

  const plans: Plan[] = targets.map(({ db, target }) => {
    const base = tempPath(target);
    return { db, target, temps: new Map(db.files.map((f) => [f.entry, tempFor(db, f, base)])) };
  });
  const temps = new Map(plans.flatMap((p) => [...p.temps.entries()]));
  const removeTemps = () => Promise.all([...temps.values()].map((t) => rm(t, { force: true })));
  try {
    const scan = await scanArchive(ref, {
      sink: async (f) => {
        const t = temps.get(f.entry);
        return t ? fileSink(t) : null;
      },
    });
    assertScanOk(scan, plans.map((p) => p.db), ref.path, false, NOTHING_RESTORED);
    for (const p of plans) {
      const main = p.temps.get(p.db.entry)!;
      try {
        (await openReadOnly(main)).closeSync();
      } catch (err) {
        throw new CorruptArchiveError(ref.path, `${p.db.name}: DuckDB cannot open the restored file: ${duckdbMessage(err)}; ${NOTHING_RESTORED}`);
      }
    }
  } catch (err) {
    await removeTemps();
    throw err;
  }
  const databases: RestoredDatabase[] = [];
  try {
    for (const p of plans) databases.push(await commit(p, { overwrite: opts.overwrite ?? false, ts }));
  } catch (err) {
    if (databases.length === 0) throw err;
    // Some databases are already in place: say which, and where their previous files went.
    const done = databases.map((d) => `${d.target}${d.backups.length ? ` (previous kept as ${d.backups[0]})` : ""}`).join(", ");
    throw new DuckbakError(`${(err as Error).message}; already restored: ${done}`, ExitCode.PARTIAL, { cause: err });
  } finally {
    await removeTemps();
  }
  return { archive: ref.path, name: ref.name, databases };
}

/**
 * Extracts a backup's databases (checked against their checksums) into a private temporary
 * folder, runs `fn` on them, and removes the folder afterwards.
 */
export async function withExtractedBackup<T>(
  ref: ArchiveRef,
  fn: (dbs: { name: string; originalPath: string; path: string }[]) => Promise<T>,
  opts: { only?: string[] } = {},
): Promise<T> {
  return withTempDir(async (dir) => {
    const manifest = await readArchiveManifest(ref.path, ref.compression);
    const dbs = selectDatabases(manifest, opts.only);
    const wanted = new Set(dbs.flatMap((d) => d.files.map((f) => f.entry)));
    const scan = await scanArchive(ref, { sink: async (f) => (wanted.has(f.entry) ? fileSink(join(dir, f.entry)) : null) });
    assertScanOk(scan, dbs, ref.path, false, "not extracted");
    return fn(dbs.map((d) => ({ name: d.name, originalPath: d.original_path, path: join(dir, d.entry) })));
  });
}
