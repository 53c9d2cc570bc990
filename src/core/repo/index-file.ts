// The index: which pack holds each blob, where. Each backup (and each garbage collection) adds
// index files of its own; the repository's index is the union of all of them. Only ids and
// locations are kept in memory (~200 bytes per distinct blob; a 1 GB database with 256 KiB blocks
// has ~4,000), never blob contents.
import type { Repository } from "./repository.ts";
import type { PackBlob, PackInfo } from "./pack.ts";

export interface IndexFile {
  format: "duckbak-index";
  version: 1;
  packs: { id: string; size: number; blobs: [id: string, offset: number, length: number, raw: number][] }[];
}

export interface BlobLocation {
  pack: string;
  offset: number;
  length: number;
  raw: number;
}

/** Index entries per index file: bounds the size of one index file. */
const PACKS_PER_INDEX_FILE = 256;

export class BlobIndex {
  readonly blobs = new Map<string, BlobLocation>();
  /** pack id -> size, index files that name it. */
  readonly packs = new Map<string, { size: number; indexFiles: Set<string> }>();
  readonly files: string[] = [];

  add(pack: PackInfo, indexFile: string | null): void {
    let p = this.packs.get(pack.id);
    if (!p) this.packs.set(pack.id, (p = { size: pack.size, indexFiles: new Set() }));
    if (indexFile) p.indexFiles.add(indexFile);
    for (const b of pack.blobs) if (!this.blobs.has(b.id)) this.blobs.set(b.id, { pack: pack.id, offset: b.offset, length: b.length, raw: b.raw });
  }

  static async load(repo: Repository): Promise<BlobIndex> {
    const index = new BlobIndex();
    for (const id of await repo.listIds("index")) {
      const file = await repo.getJsonChecked<IndexFile>(`index/${id}`);
      index.files.push(id);
      for (const p of file.packs)
        index.add({ id: p.id, size: p.size, blobs: p.blobs.map(([id, offset, length, raw]): PackBlob => ({ id, offset, length, raw })) }, id);
    }
    return index;
  }
}

/** Writes index files naming `packs` (already stored); returns their ids. */
export async function writeIndexFiles(repo: Repository, packs: PackInfo[]): Promise<string[]> {
  return writeIndexFilesRaw(
    repo,
    packs.map((p) => ({ id: p.id, size: p.size, blobs: p.blobs.map((b): IndexFile["packs"][number]["blobs"][number] => [b.id, b.offset, b.length, b.raw]) })),
  );
}

export async function writeIndexFilesRaw(repo: Repository, packs: IndexFile["packs"]): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < packs.length; i += PACKS_PER_INDEX_FILE) {
    const file: IndexFile = { format: "duckbak-index", version: 1, packs: packs.slice(i, i + PACKS_PER_INDEX_FILE) };
    ids.push(await repo.putJson("index", file));
  }
  return ids;
}
