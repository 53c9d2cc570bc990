// Builds dist/duckbak: one executable holding the CLI, the codec worker and DuckDB's native
// library. `@duckdb/node-bindings` require()s every platform's package, which the bundler cannot
// follow, so the build redirects it to a generated module that embeds this platform's addon and
// libduckdb as file assets and loads them through src/core/duckdb/embedded-binding.ts.
import { readdirSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileHash } from "../src/core/duckdb/embedded-binding.ts";

const root = resolve(import.meta.dir, "..");
const outfile = process.env.DUCKBAK_OUTFILE ?? join(root, "dist", process.platform === "win32" ? "duckbak.exe" : "duckbak");

function nativePackageDir(): string {
  const libc = process.platform === "linux" && !(process.report?.getReport() as any)?.header?.glibcVersionRuntime ? "-musl" : "";
  const name = `@duckdb/node-bindings-${process.platform}-${process.arch}${libc}`;
  return dirname(Bun.resolveSync(`${name}/package.json`, root));
}

const pkgDir = nativePackageDir();
const files = readdirSync(pkgDir).filter((f) => f.endsWith(".node") || /\.(so|dylib|dll)$/.test(f));
const addon = files.find((f) => f.endsWith(".node"));
if (!addon) throw new Error(`no .node addon in ${pkgDir}`);

const imports = files.map((f, i) => `import asset${i} from ${JSON.stringify(join(pkgDir, f))} with { type: "file" };`).join("\n");
const list = files
  .map((f, i) => `{ name: ${JSON.stringify(f)}, asset: asset${i}, hash: ${JSON.stringify(fileHash(join(pkgDir, f)))} }`)
  .join(", ");
const loaderSource = `${imports}
import { loadEmbeddedBinding } from ${JSON.stringify(join(root, "src/core/duckdb/embedded-binding.ts"))};
const binding = loadEmbeddedBinding([${list}], ${JSON.stringify(addon)});
export default binding;
`;

mkdirSync(dirname(outfile), { recursive: true });
// Built under a temporary name and renamed, so a running test never sees a half-written binary.
const staging = `${outfile}.tmp-${process.pid}`;
const result = await Bun.build({
  entrypoints: [join(root, "src/cli/main.ts"), join(root, "src/core/archive/codec-worker.ts")],
  compile: { outfile: staging },
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
  for (const log of result.logs) console.error(log);
  rmSync(staging, { force: true });
  process.exit(1);
}
renameSync(staging, outfile);
console.log(`built ${outfile}`);
