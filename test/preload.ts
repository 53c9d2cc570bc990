// Loaded before every test file (bunfig.toml): the binaries and library code the tests run keep
// their caches (the extracted DuckDB library, the repository's sum caches) in one temporary folder
// per test run, not in the user's ~/.cache. Tests that assert on a cache set their own.
import { afterAll } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const cache = mkdtempSync(join(tmpdir(), "duckbak-test-cache-"));
process.env.XDG_CACHE_HOME = cache;
// In a preload file afterAll is global: it runs once, after the last test file.
afterAll(() => rmSync(cache, { recursive: true, force: true }));
