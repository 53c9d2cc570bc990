// The commit step of every restore: one database file moves into place in ONE rename, so a crash
// or kill -9 at any instant leaves the target in its pre-restore state or in the backup's state.
//
// Why one file: DuckDB replays whatever `<db>.wal` sits beside a database, even a WAL that belongs
// to another file (it produces a mix of both). So neither side may have a WAL at the rename:
//  - the restored copy's WAL is folded into it first (foldWal: open, CHECKPOINT, close). Its
//    content is the backup's; its bytes differ from the archived ones.
//  - the target's own WAL (committed transactions of the current database) is folded into the
//    current file the same way, by DuckDB's own crash-safe checkpoint, before anything is moved.
//    The .bak.<ts> copy is then the whole current database in one file.
// A file that DuckDB cannot open cannot be folded: such a file is committed only when no WAL is
// involved on either side, else refused with the reason (nothing is changed).
// The exception: an encrypted database's WAL, which the embedded DuckDB cannot fold (that writes
// encryption), is moved into place right after its database. Encryption needs storage v1.4.0+,
// whose WAL carries the database's identifier and checkpoint iteration, so DuckDB never replays it
// against another file; a crash between the two renames leaves the backup's last checkpoint.
import { copyFile, constants, link, open, readdir, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { BOUNDED_MEMORY, createInstance, duckdbMessage, isLockError, parseLockHolder, readDuckDBHeader } from "../duckdb/open.ts";
import { fsyncDir, renameReplacing } from "../fsutil.ts";
import { DatabaseLockedError, DuckbakError, fsError, restoreTargetLocked } from "../errors.ts";
import { isWalFile } from "../naming.ts";
import { pausePoint } from "../pause.ts";

export interface CommitOptions {
  /** Replace the current file instead of keeping it as `<target>.bak.<stamp>`. */
  overwrite: boolean;
  /** The `.bak.<stamp>` suffix (utcStamp of the restore's start). */
  stamp: string;
}

export interface CommitResult {
  target: string;
  /** Where the files that were there before went (`.bak.<stamp>`). */
  backups: string[];
  /** Files replaced or removed without a .bak (--overwrite), a WAL without its database included. */
  replaced: string[];
  /** The target's WAL files that were folded into the current database before it was replaced. */
  folded: string[];
}

/** DuckDB's WAL files beside `path` (`<db>.wal`, `.wal.checkpoint`, `.wal.recovery`; naming.ts). */
export async function walFiles(path: string): Promise<string[]> {
  const dir = dirname(path);
  const name = basename(path);
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => isWalFile(n, name)).sort().map((n) => join(dir, n));
}

/**
 * Folds the pending WAL beside `path` (`.wal`, and `.wal.checkpoint`/`.wal.recovery` of a
 * checkpoint that was cut short) into it: DuckDB opens the file (replaying them), a CHECKPOINT
 * writes everything into the main file, and closing removes them; DuckDB's checkpoint is itself
 * crash-safe. Returns the files that were folded; `label` names the database in errors (never a
 * temporary name).
 */
export async function foldWal(path: string, label: string): Promise<string[]> {
  const sides = await walFiles(path);
  if (sides.length === 0) return [];
  // Folding writes the file. (Unreadable here, e.g. a writer's Windows share lock: DuckDB's open says why.)
  if ((await readDuckDBHeader(path).catch(() => null))?.encrypted)
    throw new DuckbakError(
      `${label}: has a pending WAL that duckbak cannot fold into it: the database is encrypted, and duckbak does not write encrypted databases (DuckDB needs its httpfs extension for that)`,
    );
  let instance;
  try {
    instance = await createInstance(path, BOUNDED_MEMORY);
  } catch (err) {
    const msg = duckdbMessage(err);
    if (isLockError(msg)) throw restoreTargetLocked(label, parseLockHolder(msg));
    throw new DuckbakError(`${label}: has a pending WAL that DuckDB cannot fold into it (${msg})`);
  }
  try {
    const con = await instance.connect();
    try {
      await con.run("CHECKPOINT");
    } finally {
      con.closeSync();
    }
  } catch (err) {
    throw new DuckbakError(`${label}: folding its WAL failed: ${duckdbMessage(err)}`);
  } finally {
    instance.closeSync();
  }
  // Side files DuckDB leaves after a checkpoint and close were not its pending WAL (it had them to
  // replay); the caller treats them as stale. A `.wal` left means the fold did not happen.
  const left = await walFiles(path);
  if (left.includes(`${path}.wal`)) throw new DuckbakError(`${label}: its WAL is still there after a checkpoint; not folded`);
  return sides.filter((f) => !left.includes(f));
}

async function keepAsBak(file: string, stamp: string): Promise<string> {
  for (let i = 1; ; i++) {
    const bak = `${file}.bak.${stamp}${i > 1 ? `_${i}` : ""}`;
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

/**
 * Moves `temp` (a complete database file in the target's folder, flushed, with no WAL beside it:
 * fold it first; its mode and owner already set) to `target`, which must already be the real path
 * (symbolic links resolved). `wals`: an encrypted database's WAL files ([temp, final] pairs), moved
 * into place after it (step 5).
 *
 * Order, each step leaving the old or the new state:
 *  1. the target's WAL is folded into the current file (DuckDB's checkpoint; refused if it cannot);
 *  2. the current file is hard-linked (else copied and flushed) to `<target>.bak.<stamp>`;
 *  3. stale WAL files (`<db>.wal`, `.wal.checkpoint`, `.wal.recovery` left by a crash, or a WAL
 *     without its database) are kept as .bak, then removed;
 *  4. one rename of `temp` over `target`; the folder is flushed;
 *  5. `wals`, one rename each; the folder is flushed.
 * Test pause points (DUCKBAK_TEST_PAUSE): restore:fold-target, restore:keep-bak,
 * restore:remove-side, restore:rename, restore:renamed.
 */
export async function commitDatabase(temp: string, target: string, opts: CommitOptions, wals: [string, string][] = []): Promise<CommitResult> {
  const result: CommitResult = { target, backups: [], replaced: [], folded: [] };
  const current = await stat(target).catch(() => null);
  if (current && !current.isFile()) throw new DuckbakError(`${target}: exists and is not a regular file; not replaced`);
  if (current) {
    await pausePoint("restore:fold-target");
    result.folded = await foldWal(target, target).catch((err) => {
      if (!(err instanceof DuckbakError) || err instanceof DatabaseLockedError) throw err;
      throw new DuckbakError(`${err.message}; not replaced (move it and its .wal away, or use --restore-dir)`, err.exitCode, { cause: err });
    });
  }
  await pausePoint("restore:keep-bak");
  const side = await walFiles(target);
  const existing = current ? [target, ...side] : side;
  if (opts.overwrite) result.replaced.push(...existing);
  else for (const f of existing) result.backups.push(await keepAsBak(f, opts.stamp));
  await pausePoint("restore:remove-side");
  for (const f of side) await unlink(f).catch((err) => { throw fsError(err, f, "remove stale WAL"); });
  await pausePoint("restore:rename");
  await renameReplacing(temp, target).catch((err) => { throw fsError(err, target, "move into place"); });
  await pausePoint("restore:renamed");
  fsyncDir(dirname(target));
  if (wals.length === 0) return result;
  for (const [from, to] of wals) await renameReplacing(from, to).catch((err) => { throw fsError(err, to, "move into place"); });
  fsyncDir(dirname(target));
  return result;
}
