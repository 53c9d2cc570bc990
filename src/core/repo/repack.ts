// Repacking (cleanup --repo): packs that remaining snapshots use only in part keep their unused
// blobs forever unless their used blobs move. Which packs to repack: the ones with the largest
// unused share first, until the unused bytes left in the repository are at most `maxUnused` of its
// pack bytes (restic's --max-unused). Blobs are copied as stored (sealed under the master key,
// their ids unchanged: nothing is decrypted or re-encrypted) into new packs; a source pack whose
// bytes do not match its name is left alone. The caller then writes the index naming the new
// packs before it deletes the old index files and packs.
import { DuckbakError } from "../errors.ts";
import type { ProgressSink } from "../progress.ts";
import type { IndexFile, IndexWriter } from "./index-file.ts";
import { PackWriter } from "./pack.ts";
import { packKey, RepositoryDamagedError, sha256Hex, type Repository } from "./repository.ts";

/** "10%", "10" or "2.5%" (a number: percent) as a fraction 0–1; null when it is none of those. */
export function maxUnusedFraction(value: unknown): number | null {
  const m = typeof value === "number" ? [String(value), String(value)] : /^\s*(\d+(?:\.\d+)?)\s*%?\s*$/.exec(String(value));
  const n = m ? Number(m[1]) : NaN;
  return n >= 0 && n <= 100 ? n / 100 : null;
}

/** What one pack holds, as the index files say: its size, and the stored bytes of used and unused blobs. */
export interface PackUse {
  size: number;
  usedBytes: number;
  unusedBytes: number;
}

/** Packs to repack, best first: largest unused share, until the unused bytes left are within `maxUnused` (a fraction). */
export function choosePacksToRepack(live: Map<string, PackUse>, maxUnused: number): string[] {
  let total = 0;
  let unused = 0;
  for (const p of live.values()) {
    total += p.size;
    unused += p.unusedBytes;
  }
  const partly = [...live].filter(([, p]) => p.unusedBytes > 0).sort(([a, x], [b, y]) => y.unusedBytes / y.size - x.unusedBytes / x.size || (a < b ? -1 : 1));
  const chosen: string[] = [];
  for (const [id, p] of partly) {
    if (unused <= maxUnused * total) break;
    chosen.push(id);
    // Its used bytes move into a new pack: the unused ones leave the repository.
    unused -= p.unusedBytes;
    total -= p.unusedBytes;
  }
  return chosen;
}

export interface RepackResult {
  /** Packs whose used blobs are now in new packs (they may be deleted once the new index is in). */
  repacked: string[];
  packsWritten: number;
  bytesWritten: number;
  blobs: number;
  errors: DuckbakError[];
}

/**
 * Copies the blobs of `packs` (`total` bytes, as the index files list them) that `keep` names
 * into new packs, read one source pack at a time; `index` gets the new packs' entries. `keep` is
 * asked once per blob entry, and says yes once per blob (no set of the copied ids is held here).
 */
export async function repackBlobs(
  repo: Repository,
  packs: AsyncIterable<IndexFile["packs"][number]>,
  total: number,
  keep: (blob: string) => boolean,
  index: IndexWriter,
  progress?: ProgressSink,
): Promise<RepackResult> {
  const writer = new PackWriter(repo, 2, index);
  let copied = 0;
  const repacked: string[] = [];
  const errors: DuckbakError[] = [];
  progress?.start(total, "repacking");
  for await (const p of packs) {
    const key = packKey(p.id);
    const bytes = await repo.store.get(key);
    // Sealed blobs are copied without being opened: the pack's name proves its bytes are as written.
    if (sha256Hex(bytes) !== p.id) {
      errors.push(new RepositoryDamagedError(repo.location, `${key}: content does not match its name; not repacked (run verify --read-data)`));
      progress?.advance(p.size);
      continue;
    }
    for (const [id, offset, length, raw] of p.blobs) {
      if (!keep(id)) continue;
      if (offset + length > bytes.length) throw new RepositoryDamagedError(repo.location, `${key}: blob ${id.slice(0, 12)}… lies past the end of the pack`);
      await writer.add(id, bytes.slice(offset, offset + length), raw);
      copied++;
    }
    repacked.push(p.id);
    progress?.advance(p.size);
  }
  await writer.finish();
  return { repacked, packsWritten: writer.storedPacks, bytesWritten: writer.storedBytes, blobs: copied, errors };
}
