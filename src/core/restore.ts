// restore: puts databases from a backup back, never leaving a half-written or mixed database.
// Each database is written to temporary names in its target folder, flushed, checked (sha256 and
// an open in DuckDB), and only then moved into place; the current files are kept as
// `<file>.bak.<YYYYMMDD_HHMMSS>` unless --overwrite.
import { chown, lstat, mkdir, realpath, rm, stat } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { scanArchive, readArchiveManifest, type ArchiveScan, type EntrySink } from "./archive/reader.ts";
import { judgeDatabase, unopenableReason } from "./verify.ts";
import { EMBEDDED_DUCKDB } from "./duckdb/compat.ts";
import { keyForFile, refusedKeyError, type KeyLookup } from "./keys.ts";
import type { ProgressSink } from "./progress.ts";
import { fileSink, withTempDir } from "./extract.ts";
import { duckdbMessage, openReadOnly, isKeyError, isLockError, parseLockHolder, readDuckDBHeader } from "./duckdb/open.ts";
import { chmodIfSupported, removeStaleTemporaries, tempPath } from "./fsutil.ts";
import { commitDatabase, foldWal } from "./restore/commit.ts";
import { openableWhileWriting } from "../platform/fs.ts";
import { pausePoint } from "./pause.ts";
import { CorruptArchiveError, DuckbakError, ExitCode, UsageError, fsError, restoreTargetLocked } from "./errors.ts";
import { isSafeEntryName, utcStamp } from "./naming.ts";
import type { ArchiveRef } from "./list.ts";
import { parseMode, type Manifest, type DatabaseFacts, type FileFacts, type ManifestDatabase } from "./manifest.ts";
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
  /** Keys of encrypted databases, by original path. */
  keys?: KeyLookup;
  now?: Date;
  progress?: ProgressSink;
}

export interface RestoredDatabase {
  name: string;
  target: string;
  /** Files written: the database alone (a WAL from the backup is folded into it), or an encrypted database and its WAL. */
  files: string[];
  /** The backup's WAL entries whose transactions were folded into the restored file. */
  folded_from_backup: string[];
  /** The target's WAL files folded into the current database before it was replaced (or kept as .bak). */
  folded_at_target: string[];
  /** Where the files that were there before went. */
  backups: string[];
  /** Files that were replaced or removed without a .bak (--overwrite), stale WAL files included. */
  replaced: string[];
}

export interface RestoreResult {
  archive: string;
  name: string;
  databases: RestoredDatabase[];
  /** Restored anyway, but worth knowing: a file this DuckDB cannot open, a source damaged when backed up. */
  warnings: string[];
}

export interface Plan<D extends DatabaseFacts = DatabaseFacts> {
  db: D;
  target: string;
  /** Temporary path of each file, by archive entry; a WAL's temp name is its main's plus ".wal…". */
  temps: Map<string, string>;
}


/**
 * The name a database gets in a --restore-dir, the one `--only` takes and `ls`/`list` show: its
 * archive entry (repository snapshots record the same), which backup made unique with a numbered
 * prefix (assignEntryNames) when two databases share a file name (`data/a.duckdb` stays
 * `a.duckdb`, `proj/a.duckdb` becomes `2-a.duckdb`) or one's name is another's WAL. It depends on
 * the whole backup, never on which databases --only picked.
 */
export function restoreName(db: DatabaseFacts): string {
  return db.entry;
}

/**
 * Picks databases for --only, each by its restore name, file name (with or without `.duckdb`) or
 * original path. Every name given must match exactly one database: a name two databases answer to
 * (two `a.duckdb` from different folders) is refused with the choices, never restored twice.
 */
/** `--only` names no database of the backup (a usage error; repository restore says where one is). */
export class NoSuchDatabaseError extends UsageError {}

export function selectDatabases<D extends DatabaseFacts>(manifest: { databases: D[] }, only: string[] | undefined): D[] {
  if (!only?.length) return manifest.databases;
  const picked = new Set<D>();
  const choice = (d: D) => `${d.original_path} (as ${restoreName(d)})`;
  for (const want of only) {
    // With or without .duckdb: `--only results` is `--only results.duckdb`.
    const names = [want, `${want}.duckdb`];
    const match = manifest.databases.filter((d) => names.some((w) => d.name === w || restoreName(d) === w) || d.original_path === resolve(want));
    if (match.length === 0)
      throw new NoSuchDatabaseError(`--only ${want}: no such database in the backup (it has ${manifest.databases.map(restoreName).join(", ")})`);
    if (match.length > 1)
      throw new UsageError(`--only ${want}: matches ${match.length} databases of the backup: ${match.map(choice).join(", ")}; give one's restore name or original path`);
    picked.add(match[0]!);
  }
  return manifest.databases.filter((d) => picked.has(d));
}

/** Where each database goes; refuses manifests whose names could point a write elsewhere. */
export function planTargets<D extends DatabaseFacts>(dbs: D[], restoreDir: string | undefined, archive: string): { db: D; target: string }[] {
  return dbs.map((db) => {
    const bad = (why: string) => new CorruptArchiveError(archive, `database ${JSON.stringify(db.name)}: ${why}`);
    if (!isSafeEntryName(db.name)) throw bad("its name is not a plain file name");
    for (const f of db.files)
      if (!isSafeEntryName(f.name) || !f.name.startsWith(db.name)) throw bad(`file ${JSON.stringify(f.name)} does not belong to it`);
    if (restoreDir) {
      const name = restoreName(db);
      if (typeof name !== "string" || !isSafeEntryName(name)) throw bad("its entry name is not a plain file name");
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
    // No key is needed: DuckDB takes the lock before it reads the (encrypted) header.
    (await openReadOnly(target)).closeSync();
  } catch (err) {
    const msg = (err as Error).message;
    // A damaged current database does not open either: that is often why one restores.
    if (isLockError(msg)) throw restoreTargetLocked(target, parseLockHolder(msg));
  }
}

/** Where a file of the backup goes: the target, or the target's WAL beside it. */
function finalPathOf<D extends DatabaseFacts>(plan: Plan<D>, f: FileFacts): string {
  return f.role === "main" ? plan.target : plan.target + f.name.slice(plan.db.name.length);
}

function tempFor(db: DatabaseFacts, file: FileFacts, base: string): string {
  return file.role === "main" ? base : base + file.name.slice(db.name.length);
}

/** The archived file's mode, and its owner when running as root (only root can give files away). */
async function applyRecordedOwnership(temp: string, target: string, f: FileFacts, fallbackMode: number): Promise<void> {
  await chmodIfSupported(temp, f.mode !== undefined ? parseMode(f.mode) : fallbackMode).catch((err) => { throw fsError(err, target, "set mode"); });
  if (f.uid === undefined || f.gid === undefined || process.getuid?.() !== 0) return;
  const { uid, gid } = localIds({ uid: f.uid, gid: f.gid, owner: f.owner ?? "", group: f.group ?? "" });
  await chown(temp, uid, gid).catch((err) => { throw fsError(err, target, "set owner"); });
}

/**
 * A target that is a symbolic link is restored into the file it points to (the application opens
 * the link, so that file is its database); the link itself is left as it is.
 */
async function followLink(target: string): Promise<string> {
  const st = await lstat(target).catch(() => null);
  if (!st?.isSymbolicLink()) return target;
  return realpath(target).catch(() => {
    throw new DuckbakError(`${target}: is a symbolic link to a missing file; not restored through it (remove the link, or use --restore-dir)`);
  });
}

/**
 * Throws on damage. Block damage that the manifest says was already in the source is returned as
 * a warning instead: the archive holds the source exactly as it was, which may be the best copy left.
 */
function assertScanOk(scan: ArchiveScan, dbs: ManifestDatabase[], archive: string, blocks: boolean, consequence: string): string[] {
  if (scan.problems.length) throw new CorruptArchiveError(archive, `${scan.problems[0]}; ${consequence}`);
  const warnings: string[] = [];
  for (const db of dbs) {
    const judged = judgeDatabase(scan, db, blocks);
    if (judged.ok) continue;
    const knownDamage = db.source_blocks?.state === "damaged" && judged.checks.checksum === "ok";
    if (!knownDamage) throw new CorruptArchiveError(archive, `${judged.problems[0]}; ${consequence}`);
    warnings.push(restoredWithDamage(db.name, judged.problems[0]!));
  }
  return warnings;
}

/** The warning of a database restored byte for byte although its source was damaged when backed up. */
export function restoredWithDamage(name: string, problem: string): string {
  return `${name}: restored as it was backed up, with its damage: ${problem}`;
}

export const NOTHING_RESTORED = "nothing was restored";

/** An error naming a temporary file (a disk full while extracting) names the target it stood for. */
function withTargetNames(err: unknown, plans: Plan[]): unknown {
  if (!(err instanceof DuckbakError)) return err;
  let message = err.message;
  for (const p of plans)
    for (const f of p.db.files) message = message.replaceAll(p.temps.get(f.entry)!, finalPathOf(p, f));
  if (message === err.message) return err;
  return new DuckbakError(message, err.exitCode, { cause: err });
}

export async function restoreBackup(ref: ArchiveRef, opts: RestoreOptions = {}): Promise<RestoreResult> {
  let manifest: Manifest;
  const warnings: string[] = [];
  if (opts.verify ?? true) {
    // Checks 1–2 of verify, before anything is written anywhere.
    const scan = await scanArchive(ref, { blocks: true, progress: opts.progress, phase: `checking ${ref.name}` });
    if (!scan.manifest) throw new CorruptArchiveError(ref.path, `${scan.problems[0] ?? "no manifest"}; ${NOTHING_RESTORED}`);
    manifest = scan.manifest;
    warnings.push(...assertScanOk(scan, selectDatabases(manifest, opts.only), ref.path, true, NOTHING_RESTORED));
  } else {
    manifest = await readArchiveManifest(ref.path, ref.compression).catch((err) => {
      throw err instanceof CorruptArchiveError ? new CorruptArchiveError(ref.path, `${err.detail}; ${NOTHING_RESTORED}`) : err;
    });
  }
  const databases = await restoreDatabases(selectDatabases(manifest, opts.only), ref.path, opts, async (plans, sinkFor) => {
    const temps = new Map(plans.flatMap((p) => [...p.temps.entries()].map(([entry, temp]) => [entry, { temp, target: p.target }] as const)));
    const scan = await scanArchive(ref, {
      progress: opts.progress,
      phase: `restoring ${ref.name}`,
      sink: async (f) => {
        const t = temps.get(f.entry);
        return t ? sinkFor(t.temp, t.target) : null;
      },
    });
    assertScanOk(scan, plans.map((p) => p.db), ref.path, false, NOTHING_RESTORED);
    await pausePoint("restore:extracted");
  }, warnings);
  return { archive: ref.path, name: ref.name, databases, warnings };
}

/**
 * The restore steps every kind of backup shares (archive, repository snapshot): targets checked
 * (not a folder, not locked by a writer), `fill` writes each file to its temporary name through
 * `sinkFor(temp, target)` and checks it against its recorded sha256, the backup's WAL is folded
 * in, DuckDB opens the result, then each database is committed (.bak, stale WAL, rename).
 * `source` names the backup in errors. Verified files this DuckDB cannot open (a newer format)
 * are restored with a line in `warnings`.
 */
export async function restoreDatabases<D extends DatabaseFacts>(
  dbs: D[],
  source: string,
  opts: RestoreOptions,
  fill: (plans: Plan<D>[], sinkFor: (temp: string, target: string) => EntrySink) => Promise<void>,
  warnings: string[] = [],
): Promise<RestoredDatabase[]> {
  const ts = utcStamp(opts.now ?? new Date());
  const targets = planTargets(dbs, opts.restoreDir, source);
  for (const t of targets) {
    await mkdir(dirname(t.target), { recursive: true }).catch((err) => { throw fsError(err, dirname(t.target), "create folder"); });
    if (!opts.restoreDir) t.target = await followLink(t.target);
    // Temporaries of an earlier restore that was killed (they can be as big as the database).
    await removeStaleTemporaries(dirname(t.target));
    const st = await lstat(t.target).catch(() => null);
    if (st && !st.isFile()) throw new DuckbakError(`${t.target}: exists and is not a regular file; not replaced`);
    await assertNotLocked(t.target);
  }

  const plans: Plan<D>[] = targets.map(({ db, target }) => {
    const base = tempPath(target);
    return { db, target, temps: new Map(db.files.map((f) => [f.entry, tempFor(db, f, base)])) };
  });
  const temps = new Map(plans.flatMap((p) => [...p.temps.entries()]));
  // Best effort: a failure to remove them (a read-only file system) must not hide the real error.
  const removeTemps = () => Promise.all([...temps.values()].map((t) => rm(t, { force: true }).catch(() => {})));
  // An encrypted database's WAL files, moved into place beside it instead of folded in (see below).
  const keptWals = new Map<Plan<D>, FileFacts[]>();
  // The temporaries' last flushes run while the WALs are folded and DuckDB opens the files; each
  // is finished (flushed, closed) before anything is committed.
  const finishes: (() => Promise<void>)[] = [];
  const deferFlush = openableWhileWriting(process.platform) ? (finish: () => Promise<void>) => void finishes.push(finish) : undefined;
  const sinkFor = (temp: string, target: string) => fileSink(temp, target, { deferFlush });
  const flushed = async () => {
    for (const finish of finishes) await finish();
  };
  try {
    await fill(plans, sinkFor);
    for (const p of plans) {
      const main = p.temps.get(p.db.entry)!;
      const wals = p.db.files.filter((f) => f.role === "wal");
      if (wals.length > 0 && (await readDuckDBHeader(main).catch(() => null))?.encrypted) {
        // Folding would write the file, and the embedded DuckDB only reads encryption: the WAL goes
        // beside it (commitDatabase), and the open check below replays it from its temp name.
        keptWals.set(p, wals);
      } else {
        // Folding opens the file read-write in DuckDB: its descriptors only (see fileSink).
        if (wals.length > 0) await flushed();
        // One file to move into place: the backup's WAL goes into it (content identical, bytes not).
        await pausePoint("restore:fold-copy");
        await foldWal(main, `${p.target} (restored copy)`).catch((err) => {
          throw err instanceof DuckbakError ? new DuckbakError(`${err.message}; ${NOTHING_RESTORED}`, err.exitCode, { cause: err }) : err;
        });
      }
      const key = await keyForFile(main, opts.keys, p.db.original_path);
      try {
        (await openReadOnly(main, key)).closeSync();
      } catch (err) {
        // A refused key says nothing about the backup: not reported as damage.
        if (key !== null && isKeyError(duckdbMessage(err)))
          throw refusedKeyError(p.db.original_path, duckdbMessage(err).replaceAll(key, "***"), source, NOTHING_RESTORED);
        // The bytes are verified: a format this DuckDB does not read is no reason to refuse them.
        const why = await unopenableReason(main, p.db);
        if (why) {
          warnings.push(`${p.target}: restored without an open check: ${why}`);
          continue;
        }
        // DuckDB's message names the temporary file; the user knows the target.
        const detail = duckdbMessage(err).replaceAll(main, p.target);
        throw new CorruptArchiveError(source, `${p.target}: DuckDB ${EMBEDDED_DUCKDB.version} cannot open the restored file: ${detail}; ${NOTHING_RESTORED}`);
      }
    }
    await flushed();
  } catch (err) {
    await Promise.allSettled(finishes.map((finish) => finish()));
    await removeTemps();
    throw withTargetNames(err, plans);
  }
  const databases: RestoredDatabase[] = [];
  try {
    for (const p of plans) {
      // Backups made before modes were recorded: the current database's permissions, else private.
      const fallbackMode = ((await stat(p.target).catch(() => null))?.mode ?? 0o600) & 0o777;
      await applyRecordedOwnership(p.temps.get(p.db.entry)!, p.target, p.db.files.find((f) => f.role === "main")!, fallbackMode);
      const kept = keptWals.get(p) ?? [];
      for (const f of kept) await applyRecordedOwnership(p.temps.get(f.entry)!, finalPathOf(p, f), f, fallbackMode);
      const wals = kept.map((f): [string, string] => [p.temps.get(f.entry)!, finalPathOf(p, f)]);
      const done = await commitDatabase(p.temps.get(p.db.entry)!, p.target, { overwrite: opts.overwrite ?? false, stamp: ts }, wals);
      databases.push({
        name: p.db.name,
        target: p.target,
        files: [p.target, ...wals.map(([, to]) => to)],
        backups: done.backups,
        replaced: done.replaced,
        folded_from_backup: p.db.files.filter((f) => f.role === "wal" && !kept.includes(f)).map((f) => f.entry),
        folded_at_target: done.folded,
      });
    }
  } catch (err) {
    if (databases.length === 0) throw err;
    // Some databases are already in place: say which, and where their previous files went.
    const done = databases.map((d) => `${d.target}${d.backups.length ? ` (previous kept as ${d.backups[0]})` : ""}`).join(", ");
    throw new DuckbakError(`${(err as Error).message}; already restored: ${done}`, ExitCode.PARTIAL, { cause: err });
  } finally {
    await removeTemps();
  }
  return databases;
}

/**
 * Extracts a backup's databases (checked against their checksums) into a private temporary
 * folder, runs `fn` on them, and removes the folder afterwards.
 */
export async function withExtractedBackup<T>(
  ref: ArchiveRef,
  fn: (dbs: { name: string; originalPath: string; path: string }[]) => Promise<T>,
  opts: { only?: string[]; progress?: ProgressSink } = {},
): Promise<T> {
  return withTempDir(async (dir) => {
    const manifest = await readArchiveManifest(ref.path, ref.compression);
    const dbs = selectDatabases(manifest, opts.only);
    const wanted = new Set(dbs.flatMap((d) => d.files.map((f) => f.entry)));
    const scan = await scanArchive(ref, {
      sink: async (f) => (wanted.has(f.entry) ? fileSink(join(dir, f.entry)) : null),
      progress: opts.progress,
      phase: `extracting ${ref.name}`,
    });
    assertScanOk(scan, dbs, ref.path, false, "not extracted");
    return fn(dbs.map((d) => ({ name: d.name, originalPath: d.original_path, path: join(dir, d.entry) })));
  });
}
