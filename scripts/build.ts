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
  renameSync(staging, outfile);
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
