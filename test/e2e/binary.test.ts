// The single-binary promise, against the compiled binary: it needs no environment, no particular
// working directory and no node_modules. DuckDB's native files are extracted on first start into a
// cache folder named by their hash, atomically, checked by hash at every start, and into a private
// folder in the temp dir when no cache folder can be written. Every run here is a real `backup`,
// whose lock-holder child loads DuckDB to open the database: the row counts it reports land in the
// manifest, and are checked.
import { beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, statSync, symlinkSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { BINARY, ROOT, runSql, sh, tempDir, type RunResult } from "../helpers.ts";
import { DUCKBAK_VERSION, DUCKDB_VERSION } from "../../src/core/version.ts";

const NATIVE_DIR = dirname(Bun.resolveSync(`@duckdb/node-bindings-${process.platform}-${process.arch}/package.json`, ROOT));
const NATIVE_FILES = readdirSync(NATIVE_DIR)
  .filter((f) => /\.(node|so|dylib|dll)$/.test(f))
  .sort();
const LIBRARY = NATIVE_FILES.find((f) => f.startsWith("libduckdb"))!;
const UID = process.getuid?.() ?? 0;
const ROWS = 1234;

const work = tempDir("duckbak-binary-");
const db = join(work, "trades.duckdb");
beforeAll(async () => {
  await runSql(db, [`CREATE TABLE trades AS SELECT i AS id, 'SYM' || (i % 50) AS symbol, i * 0.5 AS price FROM range(${ROWS}) t(i)`]);
});

/** A new empty folder for one test's cache, home or temp dir. */
const fresh = (name: string) => mkdtempSync(join(work, `${name}-`));

async function exec(argv: string[], opts: { env: Record<string, string>; cwd?: string }): Promise<RunResult> {
  const proc = Bun.spawn(argv, { cwd: opts.cwd, env: opts.env, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

/** `duckbak backup` of the test database into a new folder, with exactly `env` as environment. */
function backup(env: Record<string, string>, opts: { cwd?: string; exe?: string; prefix?: string[] } = {}): Promise<RunResult> {
  const argv = [...(opts.prefix ?? []), opts.exe ?? BINARY, "backup", db, "--backup-dir", fresh("bk"), "--json"];
  return exec(argv, { env, cwd: opts.cwd });
}

function expectBackedUp(r: RunResult): void {
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  const result = JSON.parse(r.stdout);
  expect(result.ok).toBe(true);
  expect(existsSync(result.archive)).toBe(true);
  expect(result.manifest.databases[0].tables).toEqual([{ schema: "main", name: "trades", rows: ROWS }]);
}

/**
 * `root` (a `.../duckbak` folder) holds one entry and nothing else, no temporaries: a folder named
 * by a hash with the package's native files, byte for byte. Returns that folder.
 */
function expectExtracted(root: string): string {
  const entries = readdirSync(root);
  expect(entries).toHaveLength(1);
  expect(entries[0]).toMatch(/^[0-9a-f]{8,}$/);
  const dir = join(root, entries[0]!);
  expect(readdirSync(dir).sort()).toEqual(NATIVE_FILES);
  for (const f of NATIVE_FILES) expect(readFileSync(join(dir, f)).equals(readFileSync(join(NATIVE_DIR, f)))).toBe(true);
  return dir;
}

/** An environment where neither the XDG nor the home cache folder can be made: both lie below a regular file. */
function noCacheEnv(tmp: string): Record<string, string> {
  const file = join(fresh("file"), "not-a-folder");
  writeFileSync(file, "");
  return { HOME: join(file, "home"), XDG_CACHE_HOME: join(file, "cache"), TMPDIR: tmp };
}

function expectPrivateFolder(path: string): void {
  const st = statSync(path);
  expect(st.isDirectory()).toBe(true);
  expect(st.uid).toBe(UID);
  expect((st.mode & 0o777).toString(8)).toBe("700");
}

describe("single binary", () => {
  test("--version names duckbak, the embedded DuckDB and the target, without loading DuckDB (nothing extracted)", async () => {
    const cache = fresh("version");
    const home = fresh("home");
    for (const flag of ["--version", "-v"]) {
      const r = await exec([BINARY, flag], { env: { XDG_CACHE_HOME: cache, HOME: home } });
      expect(r).toEqual({ code: 0, stdout: `duckbak ${DUCKBAK_VERSION} (DuckDB ${DUCKDB_VERSION}, linux-${process.arch})\n`, stderr: "" });
    }
    expect(readdirSync(cache)).toEqual([]);
    expect(readdirSync(home)).toEqual([]);
  });

  test("runs with an empty environment (env -i: no HOME, no PATH) and leaves nothing in the working directory", async () => {
    const cwd = fresh("cwd");
    expectBackedUp(await backup({}, { cwd, prefix: ["env", "-i"] }));
    expect(readdirSync(cwd)).toEqual([]);
  });

  test("first start extracts the native files into $XDG_CACHE_HOME/duckbak/<hash>/; later starts reuse them", async () => {
    const cache = fresh("xdg");
    expectBackedUp(await backup({ XDG_CACHE_HOME: cache }));
    const dir = expectExtracted(join(cache, "duckbak"));
    const before = statSync(join(dir, LIBRARY));

    expectBackedUp(await backup({ XDG_CACHE_HOME: cache }));
    const after = statSync(join(expectExtracted(join(cache, "duckbak")), LIBRARY));
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
  });

  test("without XDG_CACHE_HOME it extracts into ~/.cache/duckbak/<hash>/", async () => {
    const home = fresh("home");
    expectBackedUp(await backup({ HOME: home }));
    expectExtracted(join(home, ".cache", "duckbak"));
  });

  test("a relative XDG_CACHE_HOME is ignored (XDG spec): nothing is created below the working directory", async () => {
    const cwd = fresh("cwd");
    const home = fresh("home");
    expectBackedUp(await backup({ XDG_CACHE_HOME: "relative-cache", HOME: home }, { cwd }));
    expect(readdirSync(cwd)).toEqual([]);
    expectExtracted(join(home, ".cache", "duckbak"));
  });

  test("four first starts at once all succeed from the one cache folder, left intact and without temporaries", async () => {
    const cache = fresh("race");
    const tmp = fresh("tmp");
    // Nowhere else to go: a run that found the cache half-written cannot fall back quietly.
    const env = { ...noCacheEnv(tmp), XDG_CACHE_HOME: cache };
    const results = await Promise.all([1, 2, 3, 4].map(() => backup(env)));
    for (const r of results) expectBackedUp(r);
    expectExtracted(join(cache, "duckbak"));
    expect(readdirSync(tmp)).toEqual([]);
  });

  test("a damaged cache (truncated, or altered at the same size) is detected by hash and repaired", async () => {
    const cache = fresh("damaged");
    expectBackedUp(await backup({ XDG_CACHE_HOME: cache }));
    const lib = join(expectExtracted(join(cache, "duckbak")), LIBRARY);

    truncateSync(lib, 4096);
    expectBackedUp(await backup({ XDG_CACHE_HOME: cache }));
    expectExtracted(join(cache, "duckbak"));

    const size = statSync(lib).size;
    const fd = openSync(lib, "r+");
    writeSync(fd, new Uint8Array(64 * 1024).fill(0xcc), 0, 64 * 1024, 1024 * 1024);
    closeSync(fd);
    expect(statSync(lib).size).toBe(size);
    expectBackedUp(await backup({ XDG_CACHE_HOME: cache }));
    expectExtracted(join(cache, "duckbak"));
  });

  test("four starts at once on a damaged cache all succeed and leave it repaired", async () => {
    const cache = fresh("damaged-race");
    expectBackedUp(await backup({ XDG_CACHE_HOME: cache }));
    truncateSync(join(expectExtracted(join(cache, "duckbak")), LIBRARY), 0);
    const results = await Promise.all([1, 2, 3, 4].map(() => backup({ XDG_CACHE_HOME: cache })));
    for (const r of results) expectBackedUp(r);
    expectExtracted(join(cache, "duckbak"));
  });

  test("no usable cache folder (HOME and XDG_CACHE_HOME below a regular file): a private 0700 folder in the temp dir", async () => {
    const tmp = fresh("tmp");
    expectBackedUp(await backup(noCacheEnv(tmp)));
    const root = join(tmp, `duckbak-${UID}`);
    expectPrivateFolder(root);
    expectExtracted(root);
  });

  test("a temp-dir folder of that name that others can write, or a symlink, is not used; the one used instead is reused", async () => {
    const open = fresh("tmp");
    const planted = join(open, `duckbak-${UID}`);
    mkdirSync(planted);
    chmodSync(planted, 0o777);
    const linked = fresh("tmp");
    const target = fresh("target");
    symlinkSync(target, join(linked, `duckbak-${UID}`));

    for (const tmp of [open, linked]) {
      expectBackedUp(await backup(noCacheEnv(tmp)));
      expectBackedUp(await backup(noCacheEnv(tmp)));
      const used = readdirSync(tmp).filter((n) => n !== `duckbak-${UID}`);
      expect(used).toHaveLength(1);
      expectPrivateFolder(join(tmp, used[0]!));
      expectExtracted(join(tmp, used[0]!));
    }
    expect(readdirSync(planted)).toEqual([]);
    expect(readdirSync(target)).toEqual([]);
  });

  // Root ignores permission bits, so a read-only folder needs a read-only mount.
  describe.skipIf(process.platform !== "linux" || UID !== 0)("on read-only and noexec mounts (root)", () => {
    async function withMount(options: string, body: (dir: string) => Promise<void>): Promise<void> {
      const dir = fresh("mnt");
      await sh(["mount", "-t", "tmpfs", "-o", options, "tmpfs", dir]);
      try {
        await body(dir);
      } finally {
        await sh(["umount", dir]);
      }
    }

    test("a read-only home and cache folder: falls back to the private temp folder", async () => {
      await withMount("ro", async (home) => {
        const tmp = fresh("tmp");
        expectBackedUp(await backup({ HOME: home, XDG_CACHE_HOME: join(home, "cache"), TMPDIR: tmp }));
        expect(readdirSync(home)).toEqual([]);
        expectPrivateFolder(join(tmp, `duckbak-${UID}`));
        expectExtracted(join(tmp, `duckbak-${UID}`));
      });
    });

    test("a cache folder on a noexec mount, where the library cannot be loaded: falls back to the private temp folder", async () => {
      await withMount("noexec", async (home) => {
        const tmp = fresh("tmp");
        expectBackedUp(await backup({ HOME: home, TMPDIR: tmp }));
        expectExtracted(join(tmp, `duckbak-${UID}`));
      });
    });
  });

  test("runs from a copy outside the repository, out of reach of node_modules, with / as working directory", async () => {
    const exe = join(fresh("copy"), "duckbak");
    copyFileSync(BINARY, exe);
    chmodSync(exe, 0o755);
    for (let d = dirname(exe); ; d = dirname(d)) {
      expect(existsSync(join(d, "node_modules"))).toBe(false);
      if (d === dirname(d)) break;
    }
    const cache = fresh("xdg");
    expectBackedUp(await backup({ XDG_CACHE_HOME: cache }, { exe, cwd: "/" }));
    expectExtracted(join(cache, "duckbak"));
  });
});
