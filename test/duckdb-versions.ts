// Other DuckDB versions for compatibility and hot-copy tests: `@duckdb/node-api@X` installed from the
// npm registry into a folder the tests own (kept between runs, ignored by git), and scripts run
// against it in a child process, so the embedded DuckDB of duckbak never sees the other version.
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./helpers.ts";

export const VERSIONS_DIR = process.env.DUCKBAK_TEST_DUCKDB_DIR ?? join(ROOT, "test/.duckdb-versions");

/** Versions that install here and exercise distinct storage formats (newest last). */
export const DUCKDB_VERSIONS = ["1.1.3-alpha.12", "1.2.2-alpha.19", "1.3.2-alpha.26", "1.4.4-r.4", "1.5.5-r.5"] as const;

/** The folder holding node_modules/@duckdb/node-api@`version`; installs it on first use. */
export async function installDuckDB(version: string): Promise<string> {
  const dir = join(VERSIONS_DIR, version);
  if (existsSync(join(dir, "node_modules/@duckdb/node-api/package.json"))) return dir;
  mkdirSync(VERSIONS_DIR, { recursive: true });
  // Install beside, then rename: concurrent test files and killed runs never see half an install.
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  mkdirSync(tmp);
  writeFileSync(join(tmp, "package.json"), JSON.stringify({ private: true, type: "module" }));
  const proc = Bun.spawn(["npm", "install", "--no-audit", "--no-fund", "--silent", `@duckdb/node-api@${version}`], {
    cwd: tmp,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [err, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`npm install @duckdb/node-api@${version} failed: ${err.trim()}`);
  }
  try {
    renameSync(tmp, dir);
  } catch {
    rmSync(tmp, { recursive: true, force: true }); // another test file installed it first
  }
  return dir;
}

/**
 * Runs `source` (an ES module; `import { DuckDBInstance } from "@duckdb/node-api"` resolves to
 * `version`) with `args` as process.argv.slice(2). Resolves with stdout; rejects with stderr.
 */
export async function runWithDuckDB(version: string, source: string, args: string[] = []): Promise<string> {
  const proc = spawnWithDuckDB(version, await writeScript(version, source), args);
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`script under DuckDB ${version} exited ${code}: ${err.trim()}`);
  return out;
}

/** Writes `source` into the version's folder (so that its imports resolve there); returns its path. */
export async function writeScript(version: string, source: string): Promise<string> {
  const dir = await installDuckDB(version);
  const name = `script-${new Bun.CryptoHasher("sha256").update(source).digest("hex").slice(0, 16)}.mjs`;
  const path = join(dir, name);
  if (!existsSync(path)) {
    writeFileSync(`${path}.${process.pid}`, source);
    renameSync(`${path}.${process.pid}`, path);
  }
  return path;
}

/** A long-running script (e.g. a writer under load) with pipes; the caller stops it. */
export function spawnWithDuckDB(_version: string, script: string, args: string[] = []) {
  return Bun.spawn([process.execPath, script, ...args], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
}
