// `npm run release [-- linux-arm64 ...]`: one executable per target into dist/release/, named
// duckbak-<version>-<os>-<arch>[.exe], and SHA256SUMS (the format `sha256sum -c` reads).
// npm ci installs only this machine's DuckDB bindings package, so each other target's package is
// fetched with `npm pack` at the version the lock file pins, checked against the lock file's
// integrity hash, and unpacked into node_modules/.cache/duckbak-release/. Bun fetches each other
// target's runtime from the npm registry itself (@oven/bun-<os>-<arch>) and caches it in
// ~/.bun/install/cache (BUN_INSTALL_CACHE_DIR, read when bun starts), which outlives npm ci.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { buildBinary, hostIsMusl, nativeFiles, ROOT } from "./build.ts";
import { bindingPackage, hostLabel, osName, RELEASE_TARGETS, releaseFileName, type Target } from "../src/platform/native.ts";

const CACHE = join(ROOT, "node_modules", ".cache", "duckbak-release");
const OUT = join(ROOT, "dist", "release");

/** The version and integrity the lock file gives a package (every platform's bindings are listed there). */
export function lockedPackage(name: string): { version: string; integrity: string } {
  const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8"));
  const entry = lock.packages?.[`node_modules/${name}`];
  if (!entry?.version || !entry?.integrity) throw new Error(`package-lock.json: no version and integrity for ${name}`);
  return entry;
}

async function run(argv: string[], cwd: string): Promise<string> {
  const proc = Bun.spawn(argv, { cwd, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`${argv.join(" ")} exited ${code}: ${err.trim()}`);
  return out;
}

/** The Subresource Integrity string (`sha512-<base64>`) of `data`, in the algorithm `like` uses. */
export function integrityOf(data: Uint8Array, like: string): string {
  const algo = like.slice(0, like.indexOf("-"));
  return `${algo}-${createHash(algo).update(data).digest("base64")}`;
}

/** The target's bindings package folder: node_modules' when npm ci installed it (this machine's), else the verified cache. */
async function bindingDir(target: Target): Promise<string> {
  const name = bindingPackage(target);
  const { version, integrity } = lockedPackage(name);
  const installed = join(ROOT, "node_modules", name);
  if (existsSync(join(installed, "package.json")) && JSON.parse(readFileSync(join(installed, "package.json"), "utf8")).version === version) return installed;

  const dir = join(CACHE, `${name.replace("/", "+")}@${version}`);
  if (existsSync(join(dir, ".integrity")) && readFileSync(join(dir, ".integrity"), "utf8") === integrity) return dir;

  mkdirSync(CACHE, { recursive: true });
  const staging = mkdtempSync(join(CACHE, ".fetch-"));
  try {
    const [packed] = JSON.parse(await run(["npm", "pack", `${name}@${version}`, "--json", "--pack-destination", staging], staging));
    const actual = integrityOf(readFileSync(join(staging, packed.filename)), integrity);
    if (actual !== integrity) throw new Error(`${name}@${version}: the registry's package does not match package-lock.json's integrity (got ${actual})`);
    await run(["tar", "-xzf", packed.filename, "--strip-components=1"], staging);
    rmSync(join(staging, packed.filename));
    nativeFiles(staging, target.platform);
    writeFileSync(join(staging, ".integrity"), integrity);
    rmSync(dir, { recursive: true, force: true });
    renameSync(staging, dir);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return dir;
}

function parseTargets(args: string[]): readonly Target[] {
  if (args.length === 0) return RELEASE_TARGETS;
  return args.map((a) => {
    const t = RELEASE_TARGETS.find((t) => `${osName(t.platform)}-${t.arch}` === a);
    if (!t) throw new Error(`unknown target '${a}'; targets: ${RELEASE_TARGETS.map((t) => `${osName(t.platform)}-${t.arch}`).join(", ")}`);
    return t;
  });
}

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

/** Builds one target's release binary into `outDir`; returns its path. */
export async function buildRelease(target: Target, outDir: string = OUT): Promise<string> {
  const outfile = join(outDir, releaseFileName(pkg.version, target));
  // Release targets are glibc on Linux: a musl host builds even its own target as a cross build.
  const cross = `${osName(target.platform)}-${target.arch}` !== hostLabel(process.platform, process.arch) || hostIsMusl();
  await buildBinary({ target, nativeDir: await bindingDir(target), outfile, cross });
  return outfile;
}

if (import.meta.main) {
  for (const target of parseTargets(process.argv.slice(2))) {
    const started = performance.now();
    const outfile = await buildRelease(target);
    const mib = (statSync(outfile).size / 2 ** 20).toFixed(1);
    console.log(`built ${outfile} (${mib} MiB, ${((performance.now() - started) / 1000).toFixed(1)} s)`);
  }
  // Of every binary in the folder as it is now, so that building one target again keeps the others listed.
  const binaries = readdirSync(OUT).filter((f) => f.startsWith("duckbak-")).sort();
  const sumsFile = join(OUT, "SHA256SUMS");
  writeFileSync(`${sumsFile}.tmp`, binaries.map((f) => `${sha256(join(OUT, f))}  ${f}\n`).join(""));
  renameSync(`${sumsFile}.tmp`, sumsFile);
  console.log(`wrote ${sumsFile}`);
}
