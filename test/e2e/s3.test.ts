// The repository on S3 through the compiled binary, against a real S3 protocol server (moto) behind
// a proxy that counts the bytes on the wire and injects failures; what was stored is read back
// independently with the AWS CLI. Nothing outside 127.0.0.1 is contacted.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY, query, runBinary, runSql, sha256File, tempDir, type RunResult } from "../helpers.ts";
import { startMoto, startProxy, type FlakyProxy, type Moto } from "../s3-server.ts";

const PASSWORD = "s3 test password, not the secret key";
let moto: Moto;
let authMoto: Moto;
let proxy: FlakyProxy;
const outputs: string[] = [];

beforeAll(async () => {
  [moto, authMoto] = await Promise.all([startMoto(), startMoto({ auth: true })]);
  await Promise.all(["dbk", "copies", "kill", "flaky", "offsite"].map((b) => moto.createBucket(b)));
  await authMoto.createBucket("authed");
  proxy = await startProxy(moto.port);
}, 180_000);
afterAll(async () => {
  // No output of any run, success or failure, ever contained the secret key.
  for (const o of outputs) {
    expect(o).not.toContain(moto.secretAccessKey);
    expect(o).not.toContain(authMoto.secretAccessKey);
  }
  await proxy?.stop();
  await Promise.all([moto?.stop(), authMoto?.stop()]);
});

/** The binary with the S3 settings in AWS variables (through the proxy), in a fresh HOME. */
async function run(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<RunResult> {
  const env = moto.env({ AWS_ENDPOINT_URL: proxy.endpoint, DUCKBAK_PASSWORD: PASSWORD, HOME: tempDir("duckbak-home-"), ...opts.env });
  const r = await runBinary(args, { cwd: opts.cwd, env });
  outputs.push(r.stdout, r.stderr);
  return r;
}

async function ok(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<RunResult> {
  const r = await run(args, opts);
  if (r.code !== 0) throw new Error(`duckbak ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return r;
}

/** A database of about `rows` * 60 bytes whose rows do not compress away. */
async function makeDb(path: string, rows: number): Promise<void> {
  await runSql(path, [
    `CREATE TABLE t AS SELECT range AS id, md5(range::VARCHAR) || md5((range * 7)::VARCHAR) AS s FROM range(${rows})`,
    "CHECKPOINT",
  ]);
}

const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

describe("repository on S3", () => {
  test("init, backup, a 1% change uploads a few %, list, stats, verify --read-data, restore on a new host", async () => {
    const dir = tempDir();
    const db = join(dir, "prices.duckdb");
    await makeDb(db, 300_000);
    const repo = "s3://dbk/duckbak/prod";
    await ok(["init", "--repo", repo]);
    const objects = await moto.objects("dbk", "duckbak/prod/");
    expect([...objects.keys()].some((k) => k === "duckbak/prod/config")).toBe(true);
    expect([...objects.keys()].some((k) => k.startsWith("duckbak/prod/keys/"))).toBe(true);
    expect((await run(["init", "--repo", repo])).code).toBe(1); // not empty

    proxy.reset();
    await ok(["backup", "--repo", repo, db]);
    const firstUp = proxy.bytesUp;
    const afterFirst = sum(await moto.objects("dbk", "duckbak/prod/"));
    const size = Bun.file(db).size;

    await runSql(db, [`INSERT INTO t SELECT range AS id, md5(range::VARCHAR) || 'x' AS s FROM range(1000000, 1003000)`, "CHECKPOINT"]);
    const sha = sha256File(db);
    proxy.reset();
    await ok(["backup", "--repo", repo, db]);
    const secondUp = proxy.bytesUp;
    const afterSecond = sum(await moto.objects("dbk", "duckbak/prod/"));
    console.log(
      `S3 figures: database ${size} B; first backup ${firstUp} B over the wire (${afterFirst} B stored); ` +
        `after a 1% change ${secondUp} B over the wire (+${afterSecond - afterFirst} B stored)`,
    );
    expect(firstUp).toBeGreaterThan(size / 3);
    expect(secondUp).toBeLessThan(firstUp * 0.15);

    const list = JSON.parse((await ok(["list", "--repo", repo, "--json"])).stdout);
    expect(list.snapshots.length).toBe(2);
    expect((await ok(["stats", "--repo", repo, "--json"])).stdout).toContain('"snapshots": 2');
    await ok(["verify", "--repo", repo, "--read-data"]);

    // A new host: nothing but the binary, the credentials and the password.
    const host = tempDir("duckbak-newhost-");
    const out = join(host, "restore");
    await ok(["restore", "latest", "--repo", repo, "--restore-dir", out], { cwd: host });
    expect(sha256File(join(out, "prices.duckdb"))).toBe(sha);

    // Cleanup on S3: the first snapshot forgotten, the partly used first pack repacked; the rest
    // still verifies and restores, and one table comes back from the snapshot into a live database.
    const before = await moto.objects("dbk", "duckbak/prod/data/");
    const c = JSON.parse((await ok(["cleanup", "--repo", repo, "--keep-last", "1", "--max-unused", "0%", "--json"])).stdout);
    expect(c.packs_repacked).toBeGreaterThan(0);
    const after = await moto.objects("dbk", "duckbak/prod/data/");
    expect(sum(before) - sum(after)).toBe(c.freed_bytes);
    await ok(["verify", "--repo", repo, "--read-data"]);
    const again = join(host, "again");
    await ok(["restore", "latest", "--repo", repo, "--restore-dir", again], { cwd: host });
    expect(sha256File(join(again, "prices.duckdb"))).toBe(sha);
    const live = join(host, "live.duckdb");
    await runSql(live, ["CREATE TABLE other AS SELECT 1 AS x"]);
    await ok(["restore", "latest", "--repo", repo, "--table", "t", "--into", live], { cwd: host });
    expect(await query(live, "SELECT count(*) FROM t")).toEqual([[303000n]]);
  }, 240_000);

  test("kill -9 in the middle of an upload: verify --read-data passes, the next backup completes", async () => {
    const dir = tempDir();
    const db = join(dir, "big.duckdb");
    await makeDb(db, 600_000);
    const repo = "s3://kill/r";
    await ok(["init", "--repo", repo]);
    proxy.reset();
    const env = moto.env({ AWS_ENDPOINT_URL: proxy.endpoint, DUCKBAK_PASSWORD: PASSWORD, HOME: tempDir("duckbak-home-"), NO_COLOR: "1" });
    const proc = Bun.spawn([BINARY, "backup", "--repo", repo, db], { env, stdout: "pipe", stderr: "pipe" });
    // Killed once the first pack upload is under way (its request line seen, body still flowing).
    const deadline = Date.now() + 120_000;
    while (!proxy.requests.some((r) => r.startsWith("PUT /kill/r/data/")) && Date.now() < deadline && proc.exitCode === null) await Bun.sleep(5);
    proc.kill(9);
    await proc.exited;
    expect(proc.signalCode).toBe("SIGKILL");
    expect((await moto.objects("kill", "r/snapshots/")).size).toBe(0);
    await ok(["verify", "--repo", repo, "--read-data"]);
    await ok(["backup", "--repo", repo, db]);
    await ok(["verify", "--repo", repo, "--read-data"]);
    const out = join(tempDir(), "out");
    await ok(["restore", "latest", "--repo", repo, "--restore-dir", out]);
    expect(sha256File(join(out, "big.duckdb"))).toBe(sha256File(db));
  }, 240_000);

  test("copy: local -> S3 (another password) -> restore; only what the destination lacks", async () => {
    const dir = tempDir();
    const db = join(dir, "ledger.duckdb");
    await makeDb(db, 200_000);
    const local = join(dir, "local-repo");
    const remote = "s3://copies/offsite";
    const other = { DUCKBAK_TO_PASSWORD: "the off-site password" };
    await ok(["init", "--repo", local]);
    await ok(["backup", "--repo", local, db]);
    await ok(["init", "--repo", remote], { env: { DUCKBAK_PASSWORD: other.DUCKBAK_TO_PASSWORD } });
    proxy.reset();
    const first = JSON.parse((await ok(["copy", "--repo", local, "--to", remote, "--json"], { env: other })).stdout);
    expect(first.copied).toBe(1);
    const firstUp = proxy.bytesUp;
    // Copied again: nothing to do.
    const again = JSON.parse((await ok(["copy", "--repo", local, "--to", remote, "--json"], { env: other })).stdout);
    expect(again.copied).toBe(0);
    expect(again.uploaded_bytes).toBe(0);
    // A 1% change: the second copy uploads a few %.
    await runSql(db, [`INSERT INTO t SELECT range, md5(range::VARCHAR) FROM range(2000000, 2002000)`, "CHECKPOINT"]);
    const sha = sha256File(db);
    await ok(["backup", "--repo", local, db]);
    proxy.reset();
    const second = JSON.parse((await ok(["copy", "latest", "--repo", local, "--to", remote, "--json"], { env: other })).stdout);
    expect(second.copied).toBe(1);
    console.log(`S3 figures: copy of a ${Bun.file(db).size} B database: ${firstUp} B, then ${proxy.bytesUp} B after a 1% change`);
    expect(proxy.bytesUp).toBeLessThan(firstUp * 0.2);
    // The source's password does not open the copy; the destination's does.
    expect((await run(["list", "--repo", remote])).code).toBe(6);
    const out = join(tempDir(), "out");
    await ok(["verify", "--repo", remote, "--read-data"], { env: { DUCKBAK_PASSWORD: other.DUCKBAK_TO_PASSWORD } });
    await ok(["restore", "latest", "--repo", remote, "--restore-dir", out], { env: { DUCKBAK_PASSWORD: other.DUCKBAK_TO_PASSWORD } });
    expect(sha256File(join(out, "ledger.duckdb"))).toBe(sha);
  }, 240_000);

  test("wrong credentials, missing bucket, a failing server: one line, the bucket and the code, exit 8", async () => {
    const dir = tempDir();
    const db = join(dir, "small.duckdb");
    await makeDb(db, 2000);
    const line = (r: RunResult) => {
      expect(r.code).toBe(8);
      const lines = r.stderr.trim().split("\n");
      expect(lines.length).toBe(1);
      return lines[0]!;
    };
    const auth = { AWS_ENDPOINT_URL: authMoto.endpoint, AWS_ACCESS_KEY_ID: authMoto.accessKeyId, AWS_SECRET_ACCESS_KEY: authMoto.secretAccessKey };
    await ok(["init", "--repo", "s3://authed"], { env: auth });
    expect(line(await run(["list", "--repo", "s3://authed"], { env: { ...auth, AWS_ACCESS_KEY_ID: "AKIANOSUCHKEY0000000" } }))).toMatch(
      /^duckbak: error: s3:\/\/authed\/\S+: InvalidAccessKeyId: /,
    );
    expect(line(await run(["list", "--repo", "s3://authed"], { env: { ...auth, AWS_SECRET_ACCESS_KEY: "not-the-secret" } }))).toMatch(
      /^duckbak: error: s3:\/\/authed\/\S+: SignatureDoesNotMatch: /,
    );
    expect(line(await run(["init", "--repo", "s3://no-such-bucket/x"]))).toMatch(/^duckbak: error: s3:\/\/no-such-bucket\/x\/\S*: NoSuchBucket: bucket 'no-such-bucket' does not exist/);
    const missing = await run(["list", "--repo", "s3://dbk/nothing-here"]);
    expect(missing.code).toBe(10);

    // 500s and dropped connections for a while: retried, the backup completes.
    await ok(["init", "--repo", "s3://flaky/r"]);
    proxy.reset();
    proxy.fail("http500", 1500);
    const during = run(["backup", "--repo", "s3://flaky/r", db]);
    await Bun.sleep(2000);
    proxy.fail("drop", 1000);
    expect((await during).code).toBe(0);
    expect(proxy.faults).toBeGreaterThan(0);
    await ok(["verify", "--repo", "s3://flaky/r", "--read-data"]);
    // A server that keeps failing: a clear error once the retries ([s3] retries = 2) are spent.
    const cwd = join(dir, "cfg");
    mkdirSync(cwd);
    writeFileSync(join(cwd, "duckbak.toml"), "[s3]\nretries = 2\n");
    proxy.fail("http500");
    try {
      const r = await run(["backup", "--repo", "s3://flaky/r", db], { cwd });
      expect(r.code).toBe(8);
      expect(r.stderr).toMatch(/s3:\/\/flaky\/r\/\S+: InternalError: .*3 attempts/);
    } finally {
      proxy.heal();
    }
  }, 240_000);

  test("daily with offsite: tonight's snapshot copied there, retention applied there; without a repository, a snapshot there directly", async () => {
    const dir = tempDir();
    const db = join(dir, "a.duckdb");
    await makeDb(db, 20_000);
    await ok(["init", "--repo", join(dir, "repo")]);
    await ok(["init", "--repo", "s3://offsite/daily"]);
    writeFileSync(join(dir, "duckbak.toml"), `databases = ["a.duckdb"]\nrepository = "repo"\noffsite = "s3://offsite/daily"\n[retention]\nkeep_last = 2\n`);
    for (let i = 0; i < 3; i++) {
      await runSql(db, [`INSERT INTO t SELECT range, md5(range::VARCHAR) FROM range(${100_000 + i * 100}, ${100_100 + i * 100})`, "CHECKPOINT"]);
      const r = await ok(["daily"], { cwd: dir });
      expect(r.stdout).toContain("Off-site: snapshot ");
    }
    const sha = sha256File(db);
    const remote = JSON.parse((await ok(["list", "--repo", "s3://offsite/daily", "--json"])).stdout);
    expect(remote.snapshots.length).toBe(2);
    const local = JSON.parse((await ok(["list", "--json"], { cwd: dir })).stdout);
    expect(local.snapshots.length).toBe(2);
    const log = readFileSync(join(dir, "data/backup.log"), "utf8");
    expect(log).toMatch(/offsite.*s3:\/\/offsite\/daily/);
    outputs.push(log); // checked for the secret key with every output
    const out = join(tempDir(), "out");
    await ok(["restore", "latest", "--repo", "s3://offsite/daily", "--restore-dir", out]);
    expect(sha256File(join(out, "a.duckdb"))).toBe(sha);

    // No repository: the archive locally, and a snapshot taken straight into the off-site one.
    // notify_command is told of that snapshot and where it went.
    writeFileSync(join(dir, "duckbak.toml"), `databases = ["a.duckdb"]\noffsite = "s3://offsite/daily"\nnotify_command = "env | grep ^DUCKBAK_ > notify.env"\n[retention]\nkeep_last = 2\n`);
    await ok(["daily"], { cwd: dir });
    const snaps = JSON.parse((await ok(["list", "--repo", "s3://offsite/daily", "--json"])).stdout).snapshots;
    expect(snaps.length).toBe(2);
    const notified = readFileSync(join(dir, "notify.env"), "utf8");
    for (const line of [`DUCKBAK_SNAPSHOT=${snaps[0].id}`, "DUCKBAK_REPOSITORY=s3://offsite/daily", "DUCKBAK_DATABASES_OK=1", `DUCKBAK_BACKUP_DIR=${join(dir, "data/backups")}`])
      expect(notified).toContain(`${line}\n`);
    // The store failing: the run fails with exit 8, the local archive is still made.
    writeFileSync(join(dir, "duckbak.toml"), `databases = ["a.duckdb"]\noffsite = "s3://offsite/daily"\n[s3]\nretries = 1\n`);
    proxy.fail("drop");
    try {
      const r = await run(["daily"], { cwd: dir });
      expect(r.code).toBe(8);
    } finally {
      proxy.heal();
    }
  }, 240_000);
});
