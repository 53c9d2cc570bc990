// The linux-arm64 release binary, for real, under Debian's qemu-user-static with the arm64 loader
// and libraries (libc6-arm64-cross, libstdc++6-arm64-cross; .ci/run installs them): backup,
// verify, list and restore of real databases, the embedded arm64 DuckDB doing the reading.
// Emulation is slow (each start of the 165 MiB binary takes seconds), so this is one pass over
// the main commands, time-boxed; the x64 binary's suite covers the behaviour in depth.
// DUCKBAK_ARM64_BINARY uses a binary built elsewhere (e.g. `npm run release -- linux-arm64`).
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, openSync, readSync, closeSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { createSampleDatabases, query, sh, tempDir, tryOpenReadWrite, WRITER, type RunResult } from "../helpers.ts";
import { patchStorageVersion } from "../patch-header.ts";
import { buildRelease } from "../../scripts/release.ts";
import { DUCKDB_VERSION, DUCKBAK_VERSION } from "../../src/core/version.ts";

const QEMU = Bun.which("qemu-aarch64-static");
const SYSROOT = "/usr/aarch64-linux-gnu";
const missing = [
  QEMU ? null : "qemu-aarch64-static (qemu-user-static)",
  existsSync(join(SYSROOT, "lib/ld-linux-aarch64.so.1")) ? null : `${SYSROOT}/lib/ld-linux-aarch64.so.1 (libc6-arm64-cross)`,
  existsSync(join(SYSROOT, "lib/libstdc++.so.6")) ? null : `${SYSROOT}/lib/libstdc++.so.6 (libstdc++6-arm64-cross)`,
].filter((m) => m !== null);
if (missing.length > 0) console.warn(`SKIPPED linux-arm64 e2e: missing ${missing.join(", ")}; apt-get install qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross`);

// qemu-user does not follow exec: duckbak's own helper process (the snapshot holder) is started
// through the same emulator (src/core/self.ts).
const EMULATOR = [QEMU ?? "qemu-aarch64-static", "-L", SYSROOT];
const RUN_TIMEOUT_MS = 120_000;

const work = tempDir("duckbak-arm64-");
let binary = process.env.DUCKBAK_ARM64_BINARY ?? "";

async function arm64(args: string[], cwd = work): Promise<RunResult> {
  const proc = Bun.spawn([...EMULATOR, binary, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: join(work, "home"), NO_COLOR: "1", DUCKBAK_EMULATOR: JSON.stringify(EMULATOR) },
    stdout: "pipe",
    stderr: "pipe",
    timeout: RUN_TIMEOUT_MS,
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

function json(r: RunResult): any {
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
}

/** ELF e_machine: 0xB7 is AArch64, 0x3E x86-64. */
function elfMachine(path: string): number {
  const fd = openSync(path, "r");
  const b = new Uint8Array(20);
  readSync(fd, b, 0, 20, 0);
  closeSync(fd);
  return b[18]! | (b[19]! << 8);
}

describe.skipIf(missing.length > 0)("linux-arm64 binary under qemu-user", () => {
  let dbs: string[] = [];
  beforeAll(async () => {
    if (!binary) binary = await buildRelease({ platform: "linux", arch: "arm64" }, join(work, "release"));
    dbs = await createSampleDatabases(join(work, "data"), { trades: 5000 });
    // A pending WAL: rows that only the WAL holds must reach the restored copy.
    const wal = join(work, "data", "wal.duckdb");
    await sh([process.execPath, WRITER, "leave-wal", wal]);
    expect(existsSync(`${wal}.wal`)).toBe(true);
    dbs.push(wal);
  }, 240_000);

  test("is an AArch64 executable, and --version says so", async () => {
    expect(elfMachine(binary)).toBe(0xb7);
    const r = await arm64(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`duckbak ${DUCKBAK_VERSION} (DuckDB ${DUCKDB_VERSION}, linux-arm64)\n`);
  }, RUN_TIMEOUT_MS);

  test("backup, verify, list and restore round-trip real databases", async () => {
    const bk = join(work, "backups");
    const made = json(await arm64(["backup", ...dbs, "--backup-dir", bk, "--name", "arm", "--json"]));
    expect(made.manifest.databases.map((d: any) => d.duckdb.reader_version)).toEqual(dbs.map(() => DUCKDB_VERSION));
    expect(made.manifest.databases.at(-1).files.map((f: any) => f.role)).toEqual(["main", "wal"]);

    const verified = json(await arm64(["verify", "arm", "--backup-dir", bk, "--json"]));
    expect(verified.ok).toBe(true);

    const listed = json(await arm64(["list", "--backup-dir", bk, "--json"]));
    expect(JSON.stringify(listed)).toContain("arm");

    const out = join(work, "restored");
    json(await arm64(["restore", "arm", "--backup-dir", bk, "--restore-dir", out, "--json"]));
    expect(readdirSync(out).filter((f) => f.endsWith(".duckdb")).sort()).toEqual(dbs.map((d) => d.split("/").pop()!).sort());
    // Read back on the host (x64 DuckDB): the same tables and rows, WAL rows included.
    for (const db of dbs) {
      const name = db.split("/").pop()!;
      const sql = "SELECT table_name FROM duckdb_tables() ORDER BY table_name";
      const counts = async (p: string) => Promise.all(((await query(p, sql)) as [string, unknown][]).map(async ([t]) => [t, (await query(p, `SELECT count(*) FROM "${t}"`))[0]![0]]));
      expect(await counts(join(out, name))).toEqual(await counts(db));
    }
    expect((await query(join(out, "wal.duckdb"), "SELECT count(*) FROM t"))[0]![0]).toBe(15n);
  }, 4 * RUN_TIMEOUT_MS);

  // The raw fcntl lock (bun:ffi, struct flock laid out for aarch64) on a file DuckDB cannot open.
  test("a newer storage version: the arm64 holder's raw lock keeps a writer out; backed up as raw-lock", async () => {
    const newer = join(work, "newer.duckdb");
    patchStorageVersion(dbs[0]!, newer, 69);
    const holder = Bun.spawn([...EMULATOR, binary, "__snapshot-holder", "0", newer], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: join(work, "home"), DUCKBAK_EMULATOR: JSON.stringify(EMULATOR) },
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
    holder.stdin.write("{}\n");
    holder.stdin.flush();
    const report = JSON.parse(new TextDecoder().decode((await holder.stdout.getReader().read()).value));
    expect(report[0]).toMatchObject({ ok: true, tables: [] });
    expect(await tryOpenReadWrite(newer)).toContain("Could not set lock on file");
    holder.stdin.end();
    await holder.exited;
    expect(await tryOpenReadWrite(newer)).not.toContain("Could not set lock");

    const made = json(await arm64(["backup", newer, "--backup-dir", join(work, "raw"), "--json"]).then((r) => ({ ...r, stderr: "" })));
    expect(made.manifest.databases[0].consistency).toBe("raw-lock");
  }, 4 * RUN_TIMEOUT_MS);
});
