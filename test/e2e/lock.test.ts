// duckbak never copies a database while a writer can change it.
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { BINARY, runBinary, runSql, sh, startWriter, tempDir, tryOpenReadWrite, sha256File } from "../helpers.ts";


describe("locking", () => {
  test("a database held by a writer is refused, naming its PID, while the others are backed up", async () => {
    const dir = tempDir();
    const busy = join(dir, "busy.duckdb");
    const idle = join(dir, "idle.duckdb");
    await runSql(busy, ["CREATE TABLE t AS SELECT 1 AS x"]);
    await runSql(idle, ["CREATE TABLE t AS SELECT 2 AS x"]);
    const writer = await startWriter(busy);
    try {
      const r = await runBinary(["backup", busy, idle, "--backup-dir", join(dir, "bk"), "--json"]);
      expect(r.code).toBe(3);
      const result = JSON.parse(r.stdout);
      expect(result.databases[0].ok).toBe(false);
      expect(result.databases[0].error).toStartWith(`${busy}: locked by PID ${writer.pid}`);
      expect(result.databases[0].error).toContain("can be torn");
      expect(result.databases[1].ok).toBe(true);
      expect(result.manifest.databases.map((d: any) => d.name)).toEqual(["idle.duckdb"]);
      expect(result.manifest.failed).toEqual([{ path: busy, error: result.databases[0].error }]);
      const listing = (await sh(["tar", "-tzf", result.archive])).trim().split("\n");
      expect(listing).toEqual(["backup_metadata.json", "idle.duckdb", "backup_archive.sha256"]);
    } finally {
      await writer.stop();
    }
  });

  test("--wait waits for the writer to finish, then backs up", async () => {
    const dir = tempDir();
    const db = join(dir, "soon.duckdb");
    await runSql(db, ["CREATE TABLE t AS SELECT 1 AS x"]);
    const writer = await startWriter(db, 1500);
    const started = Date.now();
    const r = await runBinary(["backup", db, "--backup-dir", join(dir, "bk"), "--wait", "30"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(Date.now() - started).toBeGreaterThan(1000);
    await writer.stop();
  });

  test("when --wait runs out, the error says how long it waited", async () => {
    const dir = tempDir();
    const db = join(dir, "stuck.duckdb");
    await runSql(db, ["CREATE TABLE t AS SELECT 1 AS x"]);
    const writer = await startWriter(db);
    try {
      const r = await runBinary(["backup", db, "--backup-dir", join(dir, "bk"), "--wait", "1"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${db}: locked by PID ${writer.pid}`);
      expect(r.stderr).toContain("after waiting 1s");
      expect(existsSync(join(dir, "bk")) ? readdirSync(join(dir, "bk")) : []).toEqual([]);
    } finally {
      await writer.stop();
    }
  });

  test("the read lock holds for the whole copy: a writer cannot open the database mid-backup", async () => {
    const dir = tempDir();
    const db = join(dir, "large.duckdb");
    // Poorly compressible rows, so the gzip copy takes long enough to be caught in the middle.
    await runSql(db, ["CREATE TABLE t AS SELECT range AS id, md5(range::VARCHAR) || md5((range * 31)::VARCHAR) AS s FROM range(3000000)"]);
    const bk = join(dir, "bk");
    mkdirSync(bk);
    const proc = Bun.spawn([BINARY, "backup", db, "--backup-dir", bk, "--name", "held"], { stdout: "pipe", stderr: "pipe" });
    let paused = false;
    try {
      // Wait until the archive's temporary file has grown past the manifest: the copy is under way.
      const deadline = Date.now() + 30_000;
      while (!paused && Date.now() < deadline) {
        // The archive's temporary, not the backup folder's lock file (also written under a
        // temporary name, and renamed at any moment).
        const tmp = readdirSync(bk).find((n) => n.startsWith(".duckbak-tmp.") && !n.endsWith(".duckbak.lock"));
        if (tmp && (statSync(join(bk, tmp), { throwIfNoEntry: false })?.size ?? 0) > 1_000_000) {
          process.kill(proc.pid, "SIGSTOP");
          paused = true;
        } else await Bun.sleep(2);
      }
      expect(paused).toBe(true);
      const attempt = await tryOpenReadWrite(db);
      expect(attempt).toContain("Could not set lock on file");
      expect(attempt).toContain("Conflicting lock");
    } finally {
      if (paused) process.kill(proc.pid, "SIGCONT");
    }
    expect(await proc.exited).toBe(0);
    const out = join(dir, "out");
    mkdirSync(out);
    await sh(["tar", "-xzf", join(bk, "held.tar.gz"), "-C", out]);
    expect(sha256File(join(out, "large.duckdb"))).toBe(sha256File(db));
    // And once the backup is over, the lock is gone.
    expect(await tryOpenReadWrite(db)).toBe("opened");
  });
});
