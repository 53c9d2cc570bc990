import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import { createGunzip, createZstdDecompress } from "node:zlib";
import { createTarDecoder, type ParsedTarEntry } from "modern-tar";
import { CorruptArchiveError, fsError } from "../errors.ts";
import { MANIFEST_NAME, type Compression } from "../naming.ts";
import { parseManifest, ManifestError, type Manifest } from "../manifest.ts";

const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

/** The archive's tar bytes, decompressed as they are read (gzip members and zstd frames alike). */
export function tarByteStream(path: string, compression: Compression): ReadableStream<Uint8Array> {
  const file = createReadStream(path, { highWaterMark: 1024 * 1024 });
  if (compression === "none") return Readable.toWeb(file) as ReadableStream<Uint8Array>;
  const decoder = compression === "gzip" ? createGunzip() : (createZstdDecompress() as unknown as ReturnType<typeof createGunzip>);
  file.on("error", (err) => decoder.destroy(err));
  return Readable.toWeb(file.pipe(decoder)) as ReadableStream<Uint8Array>;
}

/** Tar entries of an archive; the decoder checks header checksums (strict mode). */
export function tarEntries(path: string, compression: Compression): ReadableStream<ParsedTarEntry> {
  return tarByteStream(path, compression).pipeThrough(createTarDecoder({ strict: true }));
}

export function describeReadError(path: string, err: unknown): CorruptArchiveError {
  if (err instanceof CorruptArchiveError) return err;
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === "ENOENT" || code === "EACCES" || code === "EISDIR") throw fsError(err, path, "read");
  const msg = err instanceof Error ? err.message : String(err);
  return new CorruptArchiveError(path, `unreadable archive: ${msg}`);
}

/** Reads only the archive's head: the manifest, which duckbak always writes as the first entry. */
export async function readArchiveManifest(path: string, compression: Compression): Promise<Manifest> {
  const reader = tarEntries(path, compression).getReader();
  try {
    const first = await reader.read();
    if (first.done) throw new CorruptArchiveError(path, "empty archive");
    const { header, body } = first.value;
    if (header.name !== MANIFEST_NAME) {
      await body.cancel();
      throw new CorruptArchiveError(path, `first entry is '${header.name}', not ${MANIFEST_NAME}: not a duckbak archive`);
    }
    if (header.size > MAX_MANIFEST_BYTES) throw new CorruptArchiveError(path, `${MANIFEST_NAME} is implausibly large`);
    const bytes = new Uint8Array(await new Response(body).arrayBuffer());
    try {
      return parseManifest(bytes);
    } catch (err) {
      if (err instanceof ManifestError) throw new CorruptArchiveError(path, err.message);
      throw err;
    }
  } catch (err) {
    throw describeReadError(path, err);
  } finally {
    await reader.cancel().catch(() => {});
  }
}
