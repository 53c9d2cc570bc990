// Encryption keys of DuckDB databases (DuckDB 1.4+ `ATTACH ... (ENCRYPTION_KEY ...)`): read from a
// file or printed by a command, per database or for a whole run. A key is held in memory only: it
// never goes into argv, the manifest, logs, output or error messages (errors name the file or the
// command, never the key).
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { childEnv } from "./child-env.ts";
import { DuckbakError, fsError } from "./errors.ts";
import { readDuckDBHeader } from "./duckdb/open.ts";

/** Where a key comes from: exactly one of the two. */
export type KeySource = { file: string } | { command: string };

/** The key of the database at `path` (its original path for a backup), or null when none is configured. */
export type KeyLookup = (path: string) => Promise<string | null>;

export class EncryptionKeyError extends DuckbakError {}

const COMMAND_TIMEOUT_MS = 60_000;

/** Reads a key: the file's content or the command's stdout, without the trailing newline. */
export async function readKey(source: KeySource, database: string): Promise<string> {
  let key: string;
  if ("file" in source) {
    key = await readFile(source.file, "utf8").catch((err) => {
      throw fsError(err, source.file, `read the encryption key of ${database}`);
    });
    key = key.replace(/\r?\n$/, "");
    if (key === "") throw new EncryptionKeyError(`${source.file}: the encryption key file of ${database} is empty`);
  } else {
    const proc = Bun.spawn(["sh", "-c", source.command], { stdin: "ignore", stdout: "pipe", stderr: "ignore", timeout: COMMAND_TIMEOUT_MS, env: childEnv() });
    const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    // Neither stdout nor stderr is quoted: either may hold the key.
    if (code !== 0) throw new EncryptionKeyError(`${database}: encryption_key_command failed (exit code ${code ?? proc.signalCode})`);
    key = out.replace(/\r?\n$/, "");
    if (key === "") throw new EncryptionKeyError(`${database}: encryption_key_command printed no key`);
  }
  return key;
}

/**
 * Keys by database path: a database's own source, else `fallback` (--encryption-key-file). Each
 * source is read once per run.
 */
export function keyLookup(perDatabase: ReadonlyMap<string, KeySource>, fallback?: KeySource): KeyLookup {
  const cache = new Map<string, Promise<string>>();
  return async (path) => {
    const p = resolve(path);
    const source = perDatabase.get(p) ?? fallback;
    if (!source) return null;
    const id = "file" in source ? `file:${source.file}` : `command:${source.command}`;
    let key = cache.get(id);
    if (!key) cache.set(id, (key = readKey(source, p)));
    return key;
  };
}

export const NO_KEYS: KeyLookup = async () => null;

/** The error for an encrypted database without a configured key. */
export function missingKeyError(path: string): EncryptionKeyError {
  return new EncryptionKeyError(
    `${path}: the database is encrypted and no key is configured (set encryption_key_file or encryption_key_command for it in duckbak.toml, or pass --encryption-key-file)`,
  );
}

/**
 * DuckDB refused the key of `database` for its copy in `backup` (`detail`: DuckDB's message, with
 * neither the key nor the copy's private path). The same exit code as a missing key: the backup
 * itself is sound.
 */
export function refusedKeyError(database: string, detail: string, backup: string, consequence?: string): EncryptionKeyError {
  const then = "is the key configured for it the one it had when the backup was made?";
  return new EncryptionKeyError(`${database}: ${detail}, for its copy in ${backup} (${then})${consequence ? `; ${consequence}` : ""}`);
}

/**
 * The key needed to open the file at `path` (null when it is not encrypted); `database` names the
 * database whose key it is (its original path, for a copy extracted from a backup). Reads the
 * header with fs, so call it before this process opens the file in DuckDB.
 */
export async function keyForFile(path: string, keys: KeyLookup = NO_KEYS, database = path): Promise<string | null> {
  if (!(await readDuckDBHeader(path)).encrypted) return null;
  const key = await keys(database);
  if (key === null) throw missingKeyError(database);
  return key;
}
