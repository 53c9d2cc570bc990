// The repository's master keys and the key files that wrap them. A random master key (one AES-256
// key for every object, one HMAC key for blob ids) is encrypted under a key derived from a password
// with scrypt; each password is one file under keys/, so several passwords can open one repository
// and a password can be removed without re-encrypting any data.
import { randomBytes, scrypt } from "node:crypto";
import { DuckbakError, ExitCode } from "../errors.ts";
import { seal, unseal, SealError } from "./seal.ts";

export interface MasterKey {
  /** AES-256-GCM key of every object in the repository. */
  encrypt: Uint8Array;
  /** HMAC-SHA256 key of blob ids. */
  id: Uint8Array;
}

export interface ScryptParams {
  n: number;
  r: number;
  p: number;
}

/** 2^15 × 8 × 128 B = 32 MiB of memory and ~0.1 s per derivation on a current CPU. */
export const DEFAULT_SCRYPT: ScryptParams = { n: 32768, r: 8, p: 1 };

export interface KeyFile {
  format: "duckbak-key";
  version: 1;
  created: string;
  kdf: { name: "scrypt"; n: number; r: number; p: number; salt: string };
  /** base64 of seal(derived key, JSON of the master key). */
  data: string;
}

export class WrongPasswordError extends DuckbakError {
  constructor(location: string, keys: number) {
    super(`${location}: wrong password (it opens none of the repository's ${keys} key${keys === 1 ? "" : "s"})`, ExitCode.WRONG_PASSWORD);
  }
}

export function newMasterKey(): MasterKey {
  return { encrypt: new Uint8Array(randomBytes(32)), id: new Uint8Array(randomBytes(32)) };
}

/** On the I/O thread pool, so that the caller's other work (a backup starting its lock holder) goes on meanwhile. */
function derive(password: string, salt: Uint8Array, p: ScryptParams): Promise<Uint8Array> {
  return new Promise((resolve, reject) =>
    scrypt(password.normalize("NFC"), salt, 32, { N: p.n, r: p.r, p: p.p, maxmem: 256 * p.n * p.r + 16 * 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(new Uint8Array(key)),
    ),
  );
}

const b64 = (u: Uint8Array) => Buffer.from(u).toString("base64");
const unb64 = (s: string) => new Uint8Array(Buffer.from(s, "base64"));

export async function makeKeyFile(password: string, master: MasterKey, params: ScryptParams = DEFAULT_SCRYPT, now = new Date()): Promise<KeyFile> {
  const salt = new Uint8Array(randomBytes(32));
  const payload = new TextEncoder().encode(JSON.stringify({ encrypt: b64(master.encrypt), id: b64(master.id) }));
  return {
    format: "duckbak-key",
    version: 1,
    created: now.toISOString(),
    kdf: { name: "scrypt", ...params, salt: b64(salt) },
    data: b64(seal(await derive(password, salt, params), payload)),
  };
}

/** The master key when `password` opens this key file, else null. Throws on a malformed file. */
export async function openKeyFile(password: string, file: KeyFile): Promise<MasterKey | null> {
  const k = file.kdf;
  if (file.format !== "duckbak-key" || k?.name !== "scrypt" || ![k.n, k.r, k.p].every((v) => Number.isInteger(v) && v > 0) || k.n > 1 << 22)
    throw new Error("not a duckbak key file");
  let plain: Uint8Array;
  try {
    plain = unseal(await derive(password, unb64(k.salt), k), unb64(file.data));
  } catch (err) {
    if (err instanceof SealError) return null;
    throw err;
  }
  const m = JSON.parse(new TextDecoder().decode(plain));
  return { encrypt: unb64(m.encrypt), id: unb64(m.id) };
}
