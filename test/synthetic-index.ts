// Index files naming synthetic blobs (random ids, in packs that do not exist), for measuring what
// a large index costs without storing its data: the commands under test never read those packs.
import { randomBytes } from "node:crypto";
import type { IndexFile } from "../src/core/repo/index-file.ts";
import type { Repository } from "../src/core/repo/repository.ts";

const BLOBS_PER_PACK = 4096;
const BLOBS_PER_FILE = 65536;

export function syntheticIndexFile(blobs: number): IndexFile {
  const packs: IndexFile["packs"] = [];
  for (let done = 0; done < blobs; ) {
    const n = Math.min(BLOBS_PER_PACK, blobs - done);
    const list: IndexFile["packs"][number]["blobs"] = [];
    for (let i = 0; i < n; i++) list.push([randomBytes(32).toString("hex"), i * 4000, 4000, 16384]);
    packs.push({ id: randomBytes(32).toString("hex"), size: n * 4000 + 100, blobs: list });
    done += n;
  }
  return { format: "duckbak-index", version: 1, packs };
}

/** `blobs` synthetic blobs, in index files of at most 65,536 (as duckbak writes them). */
export async function addSyntheticIndex(repo: Repository, blobs: number): Promise<void> {
  for (let done = 0; done < blobs; done += BLOBS_PER_FILE) await repo.putJson("index", syntheticIndexFile(Math.min(BLOBS_PER_FILE, blobs - done)));
}

/** The JSON texts of such files, as a command would read them. */
export function syntheticIndexTexts(blobs: number): string[] {
  const texts: string[] = [];
  for (let done = 0; done < blobs; done += BLOBS_PER_FILE) texts.push(JSON.stringify(syntheticIndexFile(Math.min(BLOBS_PER_FILE, blobs - done))));
  return texts;
}
