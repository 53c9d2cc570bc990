// Monitoring: the Prometheus metrics file, notify_command, healthcheck_url pings, and status
// judging ages by the newest backups and failing on an unreadable archive.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createSampleDatabases, runBinary, startWriter, tempDir } from "../helpers.ts";
import { escapeLabel, parseSamples, renderMetrics } from "../../src/core/monitoring/metrics.ts";
import { tail } from "../../src/core/monitoring/healthcheck.ts";

async function project(config: string) {
  const dir = tempDir();
  const dbs = await createSampleDatabases(join(dir, "data"), { trades: 50 });
  writeFileSync(join(dir, "duckbak.toml"), config);
  return { dir, dbs };
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * A strict reader of the Prometheus text format (0.0.4) as node_exporter's textfile collector
 * takes it: every sample's family has one HELP and one TYPE line before its samples, families are
 * not split, names and labels are valid, values parse, no series repeats. Throws on any deviation.
 */
function parseExposition(text: string): Sample[] {
  if (!text.endsWith("\n")) throw new Error("the file must end with a newline");
  const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
  const help = new Set<string>();
  const type = new Map<string, string>();
  const done = new Set<string>();
  const series = new Set<string>();
  const samples: Sample[] = [];
  let current = "";
  for (const [i, line] of text.slice(0, -1).split("\n").entries()) {
    const where = `line ${i + 1}: ${JSON.stringify(line)}`;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      if (!NAME.test(name)) throw new Error(`${where}: bad metric name`);
      if (done.has(name)) throw new Error(`${where}: family ${name} split`);
      if (name !== current && current) done.add(current);
      current = name;
      if (kind === "HELP") {
        if (help.has(name)) throw new Error(`${where}: second HELP`);
        help.add(name);
      } else {
        if (type.has(name) || !["counter", "gauge", "histogram", "summary", "untyped"].includes(rest)) throw new Error(`${where}: bad TYPE`);
        type.set(name, rest);
      }
      continue;
    }
    if (line.startsWith("#") || line === "") throw new Error(`${where}: unexpected comment or blank line`);
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`${where}: not a sample line`);
    const [, name, rawLabels, rawValue] = m as unknown as [string, string, string | undefined, string];
    if (name !== current || !type.has(name) || !help.has(name)) throw new Error(`${where}: sample before its HELP and TYPE`);
    const labels: Record<string, string> = {};
    for (const l of (rawLabels ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      if (l[1]! in labels) throw new Error(`${where}: label ${l[1]} twice`);
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    }
    if (!/^([+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|NaN|[+-]Inf)$/.test(rawValue)) throw new Error(`${where}: bad value`);
    const key = name + JSON.stringify(Object.entries(labels).sort());
    if (series.has(key)) throw new Error(`${where}: series repeated`);
    series.add(key);
    samples.push({ name, labels, value: Number(rawValue) });
  }
  return samples;
}

const value = (s: Sample[], name: string, labels: Record<string, string>) =>
  s.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v))?.value;

describe("metrics file", () => {
  test("the strict reader rejects what the collector would (negative controls)", () => {
    const good = "# HELP a_bytes x\n# TYPE a_bytes gauge\na_bytes{k=\"v\"} 1\n";
    expect(parseExposition(good)).toHaveLength(1);
    expect(() => parseExposition("a_bytes 1\n")).toThrow("before its HELP");
    expect(() => parseExposition(good + 'a_bytes{k="v"} 2\n')).toThrow("repeated");
    expect(() => parseExposition(good.replace("} 1", "} one"))).toThrow("bad value");
    expect(() => parseExposition(good.replace('k="v"', 'k="a"b"'))).toThrow("not a sample line");
    expect(() => parseExposition(good + "# HELP b x\n# TYPE b gauge\nb 1\n# HELP a_bytes y\n")).toThrow("split");
    expect(() => parseExposition(good.trimEnd())).toThrow("newline");
  });

  test("label values are escaped, and our own reader reads them back", () => {
    const weird = 'C:\\data\\"q"\nx.duckdb';
    expect(escapeLabel(weird)).toBe('C:\\\\data\\\\\\"q\\"\\nx.duckdb');
    const text = renderMetrics([{ name: "m_bytes", help: "h", type: "gauge", samples: [{ labels: { database: weird }, value: 1.5 }] }]);
    expect(parseExposition(text)[0]!.labels.database).toBe(weird);
    expect(parseSamples(text).get("m_bytes")![0]!.labels.database).toBe(weird);
  });

  test("after backup and cleanup: valid Prometheus text, written by temp + rename, values matching the backups", async () => {
    const { dir, dbs } = await project('metrics_file = "metrics/duckbak.prom"\n');
    const file = join(dir, "metrics/duckbak.prom");
    const b = await runBinary(["backup", "--json"], { cwd: dir });
    expect(b.code).toBe(0);
    const backup = JSON.parse(b.stdout);
    let s = parseExposition(readFileSync(file, "utf8"));
    expect((statSync(file).mode & 0o777).toString(8)).toBe("600");
    expect(readdirSync(join(dir, "metrics"))).toEqual(["duckbak.prom"]);
    // Prometheus naming: units as suffixes.
    for (const x of s) expect(x.name).toMatch(/^duckbak_[a-z_]+$/);
    for (const x of s.filter((x) => /timestamp/.test(x.name))) expect(x.name).toEndWith("_timestamp_seconds");
    for (const x of s.filter((x) => /size/.test(x.name))) expect(x.name).toEndWith("_bytes");
    for (const x of s.filter((x) => /duration/.test(x.name))) expect(x.name).toEndWith("_seconds");

    const created = Date.parse(backup.manifest.timestamp) / 1000;
    for (const db of dbs) {
      expect(value(s, "duckbak_database_last_success_timestamp_seconds", { database: db })).toBe(created);
      expect(value(s, "duckbak_database_backups", { database: db })).toBe(1);
      const entry = backup.databases.find((d: any) => d.path === db);
      expect(value(s, "duckbak_database_last_backup_size_bytes", { database: db })).toBe(entry.size_bytes);
      expect(value(s, "duckbak_database_last_backup_duration_seconds", { database: db })).toBe(entry.duration_ms / 1000);
    }
    expect(value(s, "duckbak_last_run_success", { command: "backup" })).toBe(1);
    expect(value(s, "duckbak_last_run_exit_code", { command: "backup" })).toBe(0);
    expect(value(s, "duckbak_backups", {})).toBe(1);
    expect(value(s, "duckbak_newest_backup_size_bytes", {})).toBe(backup.archive_bytes);

    // A cleanup keeps what the backup reported, and adds its own run.
    writeFileSync(join(dir, "data/backups/broken.tar.gz"), "not an archive");
    expect((await runBinary(["backup"], { cwd: dir })).code).toBe(0);
    expect((await runBinary(["cleanup"], { cwd: dir })).code).toBe(0);
    s = parseExposition(readFileSync(file, "utf8"));
    expect(value(s, "duckbak_last_run_success", { command: "backup" })).toBe(1);
    expect(value(s, "duckbak_last_run_success", { command: "cleanup" })).toBe(1);
    expect(value(s, "duckbak_database_backups", { database: dbs[0]! })).toBe(2);
    expect(value(s, "duckbak_backups_unreadable", {})).toBe(1);
    expect(value(s, "duckbak_database_last_backup_duration_seconds", { database: dbs[0]! })).toBeGreaterThan(0);

    // A failed backup: last run 0, exit code recorded; the databases' last success stays.
    const writer = await startWriter(dbs[0]!);
    try {
      expect((await runBinary(["backup", dbs[0]!], { cwd: dir })).code).toBe(1);
    } finally {
      await writer.stop();
    }
    s = parseExposition(readFileSync(file, "utf8"));
    expect(value(s, "duckbak_last_run_success", { command: "backup" })).toBe(0);
    expect(value(s, "duckbak_last_run_exit_code", { command: "backup" })).toBe(1);
    expect(value(s, "duckbak_database_last_success_timestamp_seconds", { database: dbs[0]! })).toBeGreaterThanOrEqual(created);
  });
});

describe("notify_command", () => {
  test("gets the result in its environment and a JSON summary on stdin; its failure only warns", async () => {
    const { dir, dbs } = await project(`notify_command = "cat > notify.json; env | grep ^DUCKBAK_ | sort > notify.env"\n`);
    const r = await runBinary(["daily"], { cwd: dir });
    expect(r.code).toBe(0);
    const summary = JSON.parse(readFileSync(join(dir, "notify.json"), "utf8"));
    expect(summary).toMatchObject({ command: "daily", status: "ok", ok: true, exit_code: 0, deleted: 0, errors: [] });
    expect(summary.archive).toMatch(/backup_\d{8}_\d{6}\.tar\.gz$/);
    expect(summary.databases.map((d: any) => d.path).sort()).toEqual([...dbs].sort());
    for (const d of summary.databases) expect(d).toMatchObject({ ok: true, size_bytes: expect.any(Number), duration_seconds: expect.any(Number), error: null });
    const env = readFileSync(join(dir, "notify.env"), "utf8");
    expect(env).toContain("DUCKBAK_COMMAND=daily\n");
    expect(env).toContain("DUCKBAK_STATUS=ok\n");
    expect(env).toContain("DUCKBAK_EXIT_CODE=0\n");
    expect(env).toContain(`DUCKBAK_ARCHIVE=${summary.archive}\n`);

    writeFileSync(join(dir, "duckbak.toml"), `notify_command = "echo mail server down >&2; exit 3"\n`);
    const failing = await runBinary(["backup"], { cwd: dir });
    expect(failing.code).toBe(0);
    expect(failing.stderr).toContain("warning: notify_command exited 3: mail server down");
  });
});

describe("healthcheck_url", () => {
  function server(status = 200) {
    const hits: { method: string; path: string; body: string }[] = [];
    const s = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(req) {
        hits.push({ method: req.method, path: new URL(req.url).pathname, body: await req.text() });
        return new Response("OK", { status });
      },
    });
    return { url: `http://127.0.0.1:${s.port}/ping/abc-123`, hits, stop: () => s.stop(true) };
  }

  test("daily: /start, then the URL on success, /fail with the log tail on failure", async () => {
    const hc = server();
    try {
      const { dir, dbs } = await project(`healthcheck_url = "${hc.url}"\n`);
      expect((await runBinary(["daily"], { cwd: dir })).code).toBe(0);
      expect(hc.hits.map((h) => `${h.method} ${h.path}`)).toEqual(["GET /ping/abc-123/start", "GET /ping/abc-123"]);

      hc.hits.length = 0;
      const writer = await startWriter(dbs[1]!);
      try {
        expect((await runBinary(["daily"], { cwd: dir })).code).toBe(3);
      } finally {
        await writer.stop();
      }
      expect(hc.hits.map((h) => `${h.method} ${h.path}`)).toEqual(["GET /ping/abc-123/start", "POST /ping/abc-123/fail"]);
      expect(hc.hits[1]!.body).toContain("event=end");
      expect(hc.hits[1]!.body).toContain("status=partial");
      expect(hc.hits[1]!.body).toContain(`${dbs[1]}: locked by PID ${writer.pid}`);
      // A manual backup is not the scheduled job: no pings.
      hc.hits.length = 0;
      expect((await runBinary(["backup"], { cwd: dir })).code).toBe(0);
      expect(hc.hits).toEqual([]);
    } finally {
      hc.stop();
    }
  });

  test("a failed ping (HTTP 500, nobody listening) warns and never fails the backup", async () => {
    const hc = server(500);
    try {
      const { dir } = await project(`healthcheck_url = "${hc.url}"\n`);
      const r = await runBinary(["daily"], { cwd: dir });
      expect(r.code).toBe(0);
      expect(r.stderr).toContain("warning: health check ping 'success' to 127.0.0.1");
      expect(r.stderr).toContain("HTTP 500");
      expect(r.stderr).not.toContain("abc-123"); // the check's secret path stays out of output
      expect(readFileSync(join(dir, "data/backup.log"), "utf8")).toContain("event=monitoring");
    } finally {
      hc.stop();
    }
    const { dir } = await project(`healthcheck_url = "${hc.url}"\n`);
    const down = await runBinary(["daily"], { cwd: dir });
    expect(down.code).toBe(0);
    expect(down.stderr).toContain("warning: health check ping 'start'");
    const bad = await project(`healthcheck_url = "ftp://x"\n`);
    expect((await runBinary(["daily"], { cwd: bad.dir })).code).toBe(2);
  });

  test("tail keeps the end of a long log, cut at a line start", () => {
    const t = tail("a".repeat(50) + "\n" + "b".repeat(20) + "\n", 30);
    expect(t).toBe("b".repeat(20) + "\n");
  });
});

describe("status", () => {
  test("an unreadable archive makes it not OK; a failed daily followed by good backups does not", async () => {
    const { dir, dbs } = await project("");
    expect((await runBinary(["daily"], { cwd: dir })).code).toBe(0);
    const writer = await startWriter(dbs[0]!);
    try {
      expect((await runBinary(["daily"], { cwd: dir })).code).toBe(3);
    } finally {
      await writer.stop();
    }
    expect((await runBinary(["status"], { cwd: dir })).code).toBe(12);
    // A manual backup of everything after the failed daily: the ages are fine again.
    expect((await runBinary(["backup"], { cwd: dir })).code).toBe(0);
    const ok = await runBinary(["status", "--json"], { cwd: dir });
    expect(ok.code).toBe(0);
    const report = JSON.parse(ok.stdout);
    expect(report.problems).toEqual([]);
    expect(report.notes).toEqual([expect.stringMatching(/^last daily run .* failed \(exit 3\).*; every database has a newer backup since$/)]);

    writeFileSync(join(dir, "data/backups/backup_20200101_000000.tar.gz"), "garbage");
    const broken = await runBinary(["status"], { cwd: dir });
    expect(broken.code).toBe(12);
    expect(broken.stdout).toContain("Status: STALE");
    expect(broken.stdout).toMatch(/unreadable archive .*backup_20200101_000000\.tar\.gz: /);
  });
});

describe("with a snapshot repository", () => {
  const env = { ...process.env, NO_COLOR: "1", DUCKBAK_PASSWORD: "pw-monitor" } as Record<string, string>;
  const notify = `notify_command = "env | grep ^DUCKBAK_ | sort > notify.env"\nmetrics_file = "m.prom"\n`;

  async function repoProject(toml: (dbs: string[]) => string) {
    const { dir, dbs } = await project("");
    expect((await runBinary(["init", "--repo", join(dir, "repo")], { env })).code).toBe(0);
    writeFileSync(join(dir, "duckbak.toml"), toml(dbs));
    return { dir, dbs, repo: join(dir, "repo") };
  }
  const list = (s: string) => `databases = [${s}]\n`;
  const quoted = (dbs: string[]) => dbs.map((d) => JSON.stringify(d)).join(", ");

  test("repository only: after daily, status is OK by the snapshot; notify and the metrics file report the snapshot", async () => {
    const { dir, dbs, repo } = await repoProject((dbs) => `${list(quoted(dbs))}repository = "repo"\n${notify}`);
    const daily = await runBinary(["daily"], { cwd: dir, env });
    expect([daily.code, daily.stderr]).toEqual([0, ""]);
    const [snap] = JSON.parse((await runBinary(["list", "--json"], { cwd: dir, env })).stdout).snapshots;

    const text = await runBinary(["status"], { cwd: dir, env });
    expect([text.code, text.stderr]).toEqual([0, ""]);
    expect(text.stdout).toContain(`Snapshots in the repository ${repo} (maximum age 26h):`);
    for (const db of dbs) expect(text.stdout).toMatch(new RegExp(`  ok +${db} +snapshot ${snap.short_id} `));
    expect(text.stdout).toContain("Status: OK");
    expect(text.stdout).not.toContain("data/backups");
    const json = JSON.parse((await runBinary(["status", "--json"], { cwd: dir, env })).stdout);
    expect(json).toMatchObject({ ok: true, command: "status", exit_code: 0, backup_dir: null, repository: repo, problems: [], unreadable_snapshots: [] });
    for (const [i, db] of dbs.entries())
      expect(json.databases[i]).toMatchObject({
        path: db, newest_backup: snap.id, created_at: snap.created_at, stale: false,
        targets: [{ kind: "snapshot", location: repo, newest_backup: snap.id, created_at: snap.created_at, stale: false, source_damage: [] }],
      });

    const notified = readFileSync(join(dir, "notify.env"), "utf8");
    expect(notified).toContain(`DUCKBAK_DATABASES_OK=${dbs.length}\n`);
    expect(notified).toContain("DUCKBAK_DATABASES_FAILED=0\n");
    expect(notified).toContain(`DUCKBAK_SNAPSHOT=${snap.id}\n`);
    expect(notified).toContain(`DUCKBAK_REPOSITORY=${repo}\n`);
    expect(notified).toContain("DUCKBAK_BACKUP_DIR=\n");
    expect(notified).toContain("DUCKBAK_ARCHIVE=\n");

    const s = parseExposition(readFileSync(join(dir, "m.prom"), "utf8"));
    for (const db of dbs) {
      expect(value(s, "duckbak_database_last_success_timestamp_seconds", { database: db, repository: repo })).toBe(new Date(snap.created_at).getTime() / 1000);
      expect(value(s, "duckbak_database_backups", { database: db, repository: repo })).toBe(1);
      expect(value(s, "duckbak_database_last_backup_duration_seconds", { database: db })).toBeGreaterThan(0);
    }
    expect(value(s, "duckbak_snapshots", { repository: repo })).toBe(1);
    expect(value(s, "duckbak_newest_snapshot_timestamp_seconds", { repository: repo })).toBe(new Date(snap.created_at).getTime() / 1000);
    expect(s.filter((x) => x.labels.backup_dir !== undefined)).toEqual([]);

    // Too old, then a configured database no snapshot holds: STALE, exit 12, naming the snapshot.
    await Bun.sleep(1100);
    const old = await runBinary(["status", "--max-age", "1s"], { cwd: dir, env });
    expect(old.code).toBe(12);
    for (const db of dbs) expect(old.stdout).toMatch(new RegExp(`  - ${db}: newest snapshot ${snap.short_id} in the repository ${repo} is \\d+s old, over the maximum of 1s`));
    const extra = join(dir, "data/new.duckdb");
    writeFileSync(join(dir, "duckbak.toml"), `${list(quoted([...dbs, extra]))}repository = "repo"\n`);
    const missing = await runBinary(["status"], { cwd: dir, env });
    expect(missing.code).toBe(12);
    expect(missing.stdout).toMatch(new RegExp(`  MISSING +${extra} +in no snapshot`));
    expect(missing.stdout).toContain(`  - ${extra}: no snapshot in the repository ${repo}\n`);

    // A repository status cannot open is its error (wrong password: 6, none: 2), never STALE.
    const wrong = await runBinary(["status"], { cwd: dir, env: { ...env, DUCKBAK_PASSWORD: "nope" } });
    expect([wrong.code, wrong.stdout]).toEqual([6, ""]);
    expect(wrong.stderr).toContain("wrong password");
    const wrongJson = await runBinary(["status", "--json"], { cwd: dir, env: { ...env, DUCKBAK_PASSWORD: "nope" } });
    expect(JSON.parse(wrongJson.stdout)).toMatchObject({ ok: false, command: "status", exit_code: 6 });
    const none = { ...env };
    delete none.DUCKBAK_PASSWORD;
    const noPassword = await runBinary(["status"], { cwd: dir, env: none });
    expect([noPassword.code, noPassword.stdout]).toEqual([2, ""]);
    expect(noPassword.stderr).toContain("the repository needs a password");

    // A manual backup and cleanup into the repository are monitored too.
    writeFileSync(join(dir, "duckbak.toml"), `${list(quoted(dbs))}repository = "repo"\n${notify}`);
    expect((await runBinary(["backup"], { cwd: dir, env })).code).toBe(0);
    const [second] = JSON.parse((await runBinary(["list", "--json"], { cwd: dir, env })).stdout).snapshots;
    const afterBackup = readFileSync(join(dir, "notify.env"), "utf8");
    expect(afterBackup).toContain("DUCKBAK_COMMAND=backup\n");
    expect(afterBackup).toContain(`DUCKBAK_SNAPSHOT=${second.id}\n`);
    expect(afterBackup).toContain(`DUCKBAK_DATABASES_OK=${dbs.length}\n`);
    let m = parseExposition(readFileSync(join(dir, "m.prom"), "utf8"));
    expect(value(m, "duckbak_snapshots", { repository: repo })).toBe(2);
    expect(value(m, "duckbak_last_run_success", { command: "backup" })).toBe(1);
    expect(value(m, "duckbak_last_run_success", { command: "daily" })).toBe(1);
    expect((await runBinary(["cleanup", "--keep-last", "1"], { cwd: dir, env })).code).toBe(0);
    m = parseExposition(readFileSync(join(dir, "m.prom"), "utf8"));
    expect(value(m, "duckbak_snapshots", { repository: repo })).toBe(1);
    expect(value(m, "duckbak_last_run_success", { command: "cleanup" })).toBe(1);
    expect(readFileSync(join(dir, "notify.env"), "utf8")).toContain("DUCKBAK_COMMAND=cleanup\n");
  });

  test("archives and a repository: each must be recent; a fresh archive does not hide an old snapshot", async () => {
    const both = (dbs: string[]) => `${list(quoted(dbs))}backup_dir = "bk"\nrepository = "repo"\n`;
    const { dir, dbs, repo } = await repoProject(both);
    expect((await runBinary(["daily"], { cwd: dir, env })).code).toBe(0);
    const ok = await runBinary(["status", "--json"], { cwd: dir, env });
    expect(ok.code).toBe(0);
    const report = JSON.parse(ok.stdout);
    expect([report.backup_dir, report.repository]).toEqual([join(dir, "bk"), repo]);
    for (const d of report.databases) expect(d.targets.map((t: any) => [t.kind, t.stale])).toEqual([["archive", false], ["snapshot", false]]);

    // An archive made later without the repository: it is fresh, the snapshot is not.
    await Bun.sleep(3000);
    writeFileSync(join(dir, "duckbak.toml"), `${list(quoted(dbs))}backup_dir = "bk"\n`);
    expect((await runBinary(["backup"], { cwd: dir, env })).code).toBe(0);
    writeFileSync(join(dir, "duckbak.toml"), both(dbs));
    const stale = await runBinary(["status", "--max-age", "3s"], { cwd: dir, env });
    expect(stale.code).toBe(12);
    expect(stale.stdout).toContain(`Backups in ${join(dir, "bk")} and snapshots in the repository ${repo} (maximum age 3s; each database needs a recent one in both):`);
    for (const db of dbs) {
      expect(stale.stdout).toMatch(new RegExp(`  ok +${db} +backup_\\d+_\\d+ `));
      expect(stale.stdout).toMatch(new RegExp(`  STALE +${db} +snapshot [0-9a-f]{8} `));
      expect(stale.stdout).toMatch(new RegExp(`  - ${db}: newest snapshot [0-9a-f]{8} in the repository ${repo} is \\d+s old`));
    }
  });
});
