// kill -9 at the commit instants of archive writing and cleanup (restore's: restore-crash.test.ts):
// every archive under a final name is whole, and the next run clears what the dead one left.
import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { killAtPause, runBinary, runSql, tempDir } from "../helpers.ts";

const archives = (bk: string) => readdirSync(bk).filter((n) => n.endsWith(".tar.gz") && !n.startsWith(".")).sort();
const leftovers = (bk: string) => readdirSync(bk).filter((n) => n.startsWith(".duckbak-tmp"));

async function allVerify(bk: string): Promise<void> {
  for (const a of archives(bk)) expect((await runBinary(["verify", join(bk, a), "--quick"])).code).toBe(0);
}

describe("kill -9 at commit instants", async () => {
  const dir = tempDir();
  const db = join(dir, "d.duckdb");
  await runSql(db, ["CREATE TABLE t AS SELECT range AS x FROM range(1000)"]);

  test("backup killed before its archive is linked into place: no archive, and the next backup clears the temporary", async () => {
    const bk = join(dir, "bk1");
    await killAtPause(["backup", db, "--backup-dir", bk, "--name", "a"], "archive:commit");
    expect(archives(bk)).toEqual([]);
    expect(leftovers(bk)).toHaveLength(1);
    expect((await runBinary(["backup", db, "--backup-dir", bk, "--name", "a"])).code).toBe(0);
    expect(archives(bk)).toEqual(["a.tar.gz"]);
    expect(leftovers(bk)).toEqual([]);
    await allVerify(bk);
  });

  test("backup killed between the link and the temporary's removal: the archive is whole, the next run clears the temporary", async () => {
    const bk = join(dir, "bk2");
    await killAtPause(["backup", db, "--backup-dir", bk, "--name", "a"], "move:linked");
    expect(archives(bk)).toEqual(["a.tar.gz"]);
    await allVerify(bk);
    expect((await runBinary(["backup", db, "--backup-dir", bk, "--name", "b"])).code).toBe(0);
    expect(archives(bk)).toEqual(["a.tar.gz", "b.tar.gz"]);
    expect(leftovers(bk)).toEqual([]);
  });

  test("cleanup killed after its first deletion: the other archives are whole, the next cleanup finishes", async () => {
    const bk = join(dir, "bk3");
    for (const name of ["a", "b", "c"]) expect((await runBinary(["backup", db, "--backup-dir", bk, "--name", name])).code).toBe(0);
    await killAtPause(["cleanup", "--backup-dir", bk, "--keep-last", "1"], "cleanup:deleted");
    expect(archives(bk)).toHaveLength(2);
    await allVerify(bk);
    const r = await runBinary(["cleanup", "--backup-dir", bk, "--keep-last", "1"]);
    expect(r.code).toBe(0);
    expect(archives(bk)).toEqual(["c.tar.gz"]);
    await allVerify(bk);
  });
});
