// Builds one executable holding the CLI, the codec worker and DuckDB's native library. Run
// directly, it builds dist/duckbak for this machine from node_modules; scripts/release.ts calls
// buildBinary for every release target with that platform's bindings package. `@duckdb/node-bindings`
// require()s every platform's package, which the bundler cannot follow, so the build redirects it
// to a generated module that embeds ONE platform's addon and library as file assets and loads them
// through src/core/duckdb/embedded-binding.ts.
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileHash } from "../src/core/duckdb/embedded-binding.ts";
import { ADDON_NAME, bindingPackage, bunTarget, nativeFileNames, type Arch, type Platform, type Target } from "../src/platform/native.ts";

export const ROOT = resolve(import.meta.dir, "..");

/** The native files of a bindings package folder, checked to be there: an empty or partial package must not build. */
export function nativeFiles(dir: string, platform: Platform): string[] {
  const names = nativeFileNames(platform);
  const missing = names.filter((n) => !existsSync(join(dir, n)));
  if (missing.length > 0) throw new Error(`${dir}: ${missing.join(", ")} missing from the DuckDB bindings package for ${platform}`);
  return names;
}

function embeddedBindingSource(dir: string, platform: Platform): string {
  const files = nativeFiles(dir, platform);
  const imports = files.map((f, i) => `import asset${i} from ${JSON.stringify(join(dir, f))} with { type: "file" };`).join("\n");
  const list = files.map((f, i) => `{ name: ${JSON.stringify(f)}, asset: asset${i}, hash: ${JSON.stringify(fileHash(join(dir, f)))} }`).join(", ");
  return `${imports}
import { loadEmbeddedBinding } from ${JSON.stringify(join(ROOT, "src/core/duckdb/embedded-binding.ts"))};
export default loadEmbeddedBinding([${list}], ${JSON.stringify(ADDON_NAME)});
`;
}

export interface BuildOptions {
  target: Target;
  /** Folder of the target's @duckdb/node-bindings-<platform> package. */
  nativeDir: string;
  outfile: string;
  /** Build with Bun's runtime for `target` (fetched by Bun from the npm registry) instead of the running one. */
  cross: boolean;
}

export async function buildBinary({ target, nativeDir, outfile, cross }: BuildOptions): Promise<void> {
  const loaderSource = embeddedBindingSource(nativeDir, target.platform);
  mkdirSync(dirname(outfile), { recursive: true });
  // Built under a temporary name and renamed, so a running test never sees a half-written binary.
  // The name keeps the outfile's ending: Bun appends .exe to a Windows target's name that lacks it.
  const staging = join(dirname(outfile), `.tmp-${process.pid}-${basename(outfile)}`);
  const result = await Bun.build({
    entrypoints: [join(ROOT, "src/cli/main.ts"), join(ROOT, "src/core/archive/codec-worker.ts")],
    compile: {
      outfile: staging,
      ...(cross ? { target: bunTarget(target) as Bun.Build.CompileTarget } : {}),
      // A backup tool runs in whatever folder cron or a user starts it from: a .env or bunfig.toml
      // found there must not change what it does.
      autoloadDotenv: false,
      autoloadBunfig: false,
    },
    // Keep identifiers so that an internal error's stack trace stays readable.
    minify: { whitespace: true, syntax: true, identifiers: false },
    sourcemap: "none",
    // Compiled to bytecode: each process (the CLI, the lock holder, every codec worker) starts
    // without parsing the bundle, about a third less start-up CPU.
    bytecode: true,
    format: "esm",
    plugins: [
      {
        name: "embed-duckdb",
        setup(build) {
          build.onResolve({ filter: /^@duckdb\/node-bindings$/ }, () => ({ path: "duckdb-bindings", namespace: "duckbak-embedded" }));
          build.onLoad({ filter: /.*/, namespace: "duckbak-embedded" }, () => ({ contents: loaderSource, loader: "ts" }));
        },
      },
    ],
  });
  if (!result.success) {
    rmSync(staging, { force: true });
    throw new AggregateError(result.logs, `build of ${outfile} failed:\n${result.logs.join("\n")}`);
  }
  try {
    await checkBinary(staging, target, nativeDir);
  } catch (err) {
    rmSync(staging, { force: true });
    throw err;
  }
  renameSync(staging, outfile);
}

const MACHO_CPU: Record<number, Arch> = { 0x01000007: "x64", 0x0100000c: "arm64" };

/**
 * The OS and architectures an executable or library is for, from its header: ELF, PE, 64-bit
 * Mach-O, or a universal (fat) Mach-O holding several; empty when none of these.
 */
export function executableTargets(head: Uint8Array): Target[] {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const one = (platform: Platform, arch: Arch | undefined): Target[] => (arch ? [{ platform, arch }] : []);
  if (head.length >= 20 && view.getUint32(0) === 0x7f454c46) {
    return one("linux", ({ 0x3e: "x64", 0xb7: "arm64" } as Record<number, Arch>)[view.getUint16(18, true)]);
  }
  if (head.length >= 0x40 && view.getUint16(0) === 0x4d5a) {
    const pe = view.getUint32(0x3c, true);
    if (pe + 6 > head.length || view.getUint32(pe) !== 0x50450000) return [];
    return one("win32", ({ 0x8664: "x64", 0xaa64: "arm64" } as Record<number, Arch>)[view.getUint16(pe + 4, true)]);
  }
  if (head.length >= 8 && view.getUint32(0, true) === 0xfeedfacf) return one("darwin", MACHO_CPU[view.getUint32(4, true)]);
  if (head.length >= 8 && view.getUint32(0) === 0xcafebabe) {
    const n = view.getUint32(4);
    const archs: Target[] = [];
    for (let i = 0; i < n && 8 + 20 * i + 4 <= head.length; i++) archs.push(...one("darwin", MACHO_CPU[view.getUint32(8 + 20 * i)]));
    return archs;
  }
  return [];
}

const isFor = (head: Uint8Array, target: Target) => executableTargets(head).some((t) => t.platform === target.platform && t.arch === target.arch);

/**
 * The built file is an executable for `target`, and so is each native file of `nativeDir`, each
 * embedded in it (Bun embeds assets uncompressed: a 4 KiB slice from the middle of each is looked
 * for): a release binary can never carry another platform's DuckDB.
 */
async function checkBinary(path: string, target: Target, nativeDir: string): Promise<void> {
  const label = `${target.platform}-${target.arch}`;
  const bytes = new Uint8Array(await Bun.file(path).arrayBuffer());
  if (!isFor(bytes.subarray(0, 4096), target)) throw new Error(`${path}: not an executable for ${label}`);
  const haystack = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const name of nativeFiles(nativeDir, target.platform)) {
    const file = new Uint8Array(await Bun.file(join(nativeDir, name)).arrayBuffer());
    if (!isFor(file.subarray(0, 4096), target)) throw new Error(`${join(nativeDir, name)}: not a library for ${label}`);
    const mid = Math.max(0, Math.floor(file.length / 2) - 2048);
    if (haystack.indexOf(file.subarray(mid, mid + 4096)) < 0) throw new Error(`${path}: ${name} from ${nativeDir} is not embedded`);
  }
}

/** Linux with musl (Alpine): the running Bun and the installed bindings are musl builds. */
export function hostIsMusl(): boolean {
  return process.platform === "linux" && !(process.report?.getReport() as any)?.header?.glibcVersionRuntime;
}

/** This machine's target, and its bindings package as npm ci installed it. */
export function hostBuild(outfile: string): BuildOptions {
  const target = { platform: process.platform as Platform, arch: process.arch as Arch };
  const nativeDir = dirname(Bun.resolveSync(`${bindingPackage(target, hostIsMusl())}/package.json`, ROOT));
  return { target, nativeDir, outfile, cross: false };
}

if (import.meta.main) {
  const outfile = process.env.DUCKBAK_OUTFILE ?? join(ROOT, "dist", process.platform === "win32" ? "duckbak.exe" : "duckbak");
  await buildBinary(hostBuild(outfile));
  console.log(`built ${outfile}`);
}
