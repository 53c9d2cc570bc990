// Every command's --json output, through the binary: one document on stdout, the envelope, snake_case
// keys, and the shape docs/JSON.md documents for it. To add a command: a section with an example in
// docs/JSON.md and a row in CASES below (its `doc` is the section's heading).
import { beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createSampleDatabases, ROOT, runBinary, tempDir } from "../helpers.ts";

interface Case {
  /** The heading of the example in docs/JSON.md. */
  doc: string;
  /** Arguments, without --json; run in the fixture folder (sample databases in data/, a duckbak.toml). */
  argv: string[];
  exit?: number;
  /** Extra environment variables. */
  env?: Record<string, string>;
}

const REPO_ENV = { DUCKBAK_PASSWORD: "json-test-password" };

// In order: later rows use what earlier ones made (the backup j1, the export ex).
const CASES: Case[] = [
  { doc: "backup", argv: ["backup", "--name", "j1"] },
  { doc: "list", argv: ["list"] },
  { doc: "verify", argv: ["verify", "j1"] },
  { doc: "restore", argv: ["restore", "j1", "--restore-dir", "restored"] },
  { doc: "restore (table)", argv: ["restore", "j1", "--table", "audit_log", "--into", "restored/audit_trail.duckdb", "--replace"] },
  { doc: "ls", argv: ["ls", "j1"] },
  { doc: "sql", argv: ["sql", "j1", "SELECT count(*) AS n FROM tca.tca_fills"] },
  { doc: "diff", argv: ["diff", "j1"] },
  { doc: "export", argv: ["export", "data/tca.duckdb", "--out", "ex"] },
  { doc: "import", argv: ["import", "ex", "--into", "imported.duckdb"] },
  { doc: "inspect", argv: ["inspect", "data/tca.duckdb"] },
  { doc: "cleanup", argv: ["cleanup", "--dry-run"] },
  { doc: "daily (dry run)", argv: ["daily", "--dry-run"] },
  { doc: "daily", argv: ["daily"] },
  { doc: "status", argv: ["status"] },
  { doc: "unlock", argv: ["unlock"] },
  { doc: "schedule install (cron)", argv: ["schedule", "install", "--method", "cron", "--dry-run"] },
  { doc: "schedule install (systemd)", argv: ["schedule", "install", "--method", "systemd", "--dry-run"] },
  { doc: "schedule install (schtasks)", argv: ["schedule", "install", "--method", "schtasks", "--dry-run"] },
  { doc: "schedule remove (cron)", argv: ["schedule", "remove", "--method", "cron", "--dry-run"] },
  { doc: "schedule remove (systemd)", argv: ["schedule", "remove", "--method", "systemd", "--dry-run"] },
  { doc: "schedule status (cron)", argv: ["schedule", "status", "--method", "cron"] },
  { doc: "schedule status (systemd)", argv: ["schedule", "status", "--method", "systemd"] },
  { doc: "init (repository)", argv: ["init", "--repo", "repo"], env: REPO_ENV },
  { doc: "backup (repository)", argv: ["backup", "--repo", "repo"], env: REPO_ENV },
  { doc: "list (repository)", argv: ["list", "--repo", "repo"], env: REPO_ENV },
  { doc: "ls (repository)", argv: ["ls", "latest", "--repo", "repo"], env: REPO_ENV },
  { doc: "sql (repository)", argv: ["sql", "latest", "--repo", "repo", "SELECT count(*) AS n FROM tca.tca_fills"], env: REPO_ENV },
  { doc: "restore (repository)", argv: ["restore", "latest", "--repo", "repo", "--restore-dir", "restored-repo"], env: REPO_ENV },
  { doc: "restore (table, repository)", argv: ["restore", "latest", "--repo", "repo", "--table", "audit_log", "--into", "restored/audit_trail.duckdb", "--replace"], env: REPO_ENV },
  { doc: "verify (repository)", argv: ["verify", "--repo", "repo"], env: REPO_ENV },
  { doc: "cleanup (repository)", argv: ["cleanup", "--repo", "repo", "--dry-run"], env: REPO_ENV },
  { doc: "stats", argv: ["stats", "--repo", "repo"], env: REPO_ENV },
  { doc: "key", argv: ["key", "list", "--repo", "repo"], env: REPO_ENV },
  { doc: "init (repository)", argv: ["init", "--repo", "repo2"], env: REPO_ENV },
  { doc: "copy", argv: ["copy", "--repo", "repo", "--to", "repo2"], env: REPO_ENV },
];

/** The examples of docs/JSON.md by heading. */
function documentedExamples(): Map<string, unknown> {
  const text = readFileSync(join(ROOT, "docs/JSON.md"), "utf8");
  const examples = new Map<string, unknown>();
  for (const m of text.matchAll(/^### (.+)\n[^#]*?```json\n([\s\S]*?)```/gm)) examples.set(m[1]!.trim(), JSON.parse(m[2]!));
  return examples;
}

const typeOf = (v: unknown) => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v);

/**
 * Where `actual` departs from the documented `doc`: objects have the same keys (more are allowed
 * where doc has a "..." key), every array element matches the doc's first, values have the same
 * type or are null.
 */
export function shapeProblems(doc: unknown, actual: unknown, at = "$"): string[] {
  if (doc === null || actual === null) return [];
  if (typeOf(doc) !== typeOf(actual)) return [`${at}: documented ${typeOf(doc)}, got ${typeOf(actual)}`];
  if (Array.isArray(doc)) return doc.length === 0 ? [] : (actual as unknown[]).flatMap((a, i) => shapeProblems(doc[0], a, `${at}[${i}]`));
  if (typeof doc !== "object") return [];
  const d = doc as Record<string, unknown>;
  const a = actual as Record<string, unknown>;
  const problems: string[] = [];
  for (const k of Object.keys(a)) {
    if (!/^[a-z][a-z0-9_]*$/.test(k)) problems.push(`${at}.${k}: not snake_case`);
    if (k in d) problems.push(...shapeProblems(d[k], a[k], `${at}.${k}`));
    else if (!("..." in d)) problems.push(`${at}.${k}: not documented`);
  }
  // Documented keys are always present (null when they do not apply); `error` only on failure.
  for (const k of Object.keys(d)) if (k !== "..." && k !== "error" && !(k in a)) problems.push(`${at}.${k}: missing`);
  return problems;
}

/** Every key at every depth is snake_case. */
function nonSnakeKeys(v: unknown, at = "$"): string[] {
  if (Array.isArray(v)) return v.flatMap((x, i) => nonSnakeKeys(x, `${at}[${i}]`));
  if (v === null || typeof v !== "object") return [];
  return Object.entries(v).flatMap(([k, x]) => [...(/^[a-z][a-z0-9_]*$/.test(k) ? [] : [`${at}.${k}`]), ...nonSnakeKeys(x, `${at}.${k}`)]);
}

async function runJson(argv: string[], cwd: string, env: Record<string, string> = {}) {
  const r = await runBinary([...argv, "--json"], { cwd, env: { ...(process.env as Record<string, string>), NO_COLOR: "1", ...env } });
  let json: any;
  expect(() => (json = JSON.parse(r.stdout)), `${argv.join(" ")}: stdout is one JSON document:\n${r.stdout}\n${r.stderr}`).not.toThrow();
  return { ...r, json };
}

describe("--json", () => {
  const examples = documentedExamples();
  const dir = tempDir();
  beforeAll(async () => {
    await createSampleDatabases(join(dir, "data"), { trades: 300 });
    writeFileSync(join(dir, "duckbak.toml"), "# test config\n");
  });

  test.each(CASES.map((c) => [c.doc, c] as const))("%s: envelope and documented shape", async (doc, c) => {
    const r = await runJson(c.argv, dir, c.env);
    const exit = c.exit ?? 0;
    expect(r.code, r.stderr).toBe(exit);
    expect(r.json).toMatchObject({ ok: exit === 0, command: doc.replace(/ \(.*\)$/, ""), exit_code: exit });
    expect(examples.has(doc), `docs/JSON.md documents ${doc}`).toBe(true);
    expect(shapeProblems(examples.get(doc), r.json)).toEqual([]);
    expect(nonSnakeKeys(r.json)).toEqual([]);
  });

  test("every example in docs/JSON.md is tested, and shows the envelope", () => {
    for (const [heading, example] of examples) {
      expect(CASES.map((c) => c.doc), `a row in CASES for "${heading}"`).toContain(heading);
      expect(example).toMatchObject({ ok: true, command: heading.replace(/ \(.*\)$/, ""), exit_code: 0 });
    }
  });

  test("every command with --json in its help has a documented example", async () => {
    const help = (await runBinary(["--help"])).stdout;
    const commands = [...help.matchAll(/^ {2}([a-z][\w-]*) /gm)].map((m) => m[1]!);
    expect(commands).toContain("backup");
    for (const command of commands) {
      const own = await runBinary([command, "--help"]);
      if (!own.stdout.includes("--json")) continue;
      expect([...examples.keys()].some((h) => h === command || h.startsWith(`${command} `)), `docs/JSON.md documents ${command}`).toBe(true);
    }
  });

  test("failures print the envelope with the error: bad option, missing backup, partial backup, stale status", async () => {
    const bad = await runJson(["cleanup", "--keep-dais", "3"], dir);
    expect(bad.code).toBe(2);
    expect(bad.json).toEqual({
      ok: false,
      command: "cleanup",
      exit_code: 2,
      error: { message: "unknown option '--keep-dais' for cleanup; did you mean --keep-days? (see duckbak cleanup --help)", exit_code: 2 },
    });

    const missing = await runJson(["verify", "nope"], dir);
    expect(missing.code).toBe(10);
    expect(missing.json).toMatchObject({ ok: false, command: "verify", exit_code: 10, error: { exit_code: 10 } });
    expect(missing.json.error.message).toContain("nope: no such backup");
    expect(Object.keys(missing.json)).toEqual(["ok", "command", "exit_code", "error"]);

    const unknown = await runJson(["frobnicate"], dir);
    expect(unknown.json).toMatchObject({ ok: false, command: null, exit_code: 2 });

    // A partial backup: the body, and the error naming what failed.
    writeFileSync(join(dir, "not-a-db.duckdb"), "plain text");
    const partial = await runJson(["backup", "data/tca.duckdb", "not-a-db.duckdb", "--name", "partial"], dir);
    expect(partial.code).toBe(3);
    expect(partial.json).toMatchObject({ ok: false, command: "backup", exit_code: 3, error: { exit_code: 3 } });
    expect(partial.json.error.message).toContain("not-a-db.duckdb");
    const withError = { ...(examples.get("backup") as object), error: { message: "", exit_code: 3 } };
    expect(shapeProblems(withError, partial.json)).toEqual([]);

    const stale = await runJson(["status", "--max-age", "0.001s"], dir);
    expect(stale.code).toBe(12);
    expect(stale.json).toMatchObject({ ok: false, command: "status", exit_code: 12 });
    expect(stale.json.error.message).toContain("old, over the maximum");
  });

  test("the shape check catches a missing, an extra and a camelCase key (negative control)", () => {
    const doc = { ok: true, a_b: 1, list: [{ x: "s" }] };
    expect(shapeProblems(doc, { ok: true, a_b: 1, list: [{ x: "s" }] })).toEqual([]);
    expect(shapeProblems(doc, { ok: true, list: [] })).toEqual(["$.a_b: missing"]);
    expect(shapeProblems(doc, { ok: true, a_b: 1, list: [{ x: "s", yZ: 1 }] })).toEqual(["$.list[0].yZ: not snake_case", "$.list[0].yZ: not documented"]);
    expect(shapeProblems(doc, { ok: true, a_b: "1", list: [] })).toEqual(["$.a_b: documented number, got string"]);
  });
});
