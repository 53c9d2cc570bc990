// Memory stays bounded whatever the archive size: verify and restore of a small and of a larger
// archive, peak RSS (VmHWM) compared. Reading the whole archive head into memory (the bug this
// guards against) made the larger run ~its archive size bigger.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { peakRss, runBinary, runSql, tempDir } from "../helpers.ts";

const MiB = 1024 * 1024;
const STRESS = process.env.DUCKBAK_STRESS === "1";

describe.skipIf(process.platform !== "linux")("memory", () => {
  const dir = tempDir();
  const bk = join(dir, "bk");

  /** A database of about `mib` MiB that DuckDB stores uncompressed (random-looking blobs). */
  async function archiveOf(name: string, mib: number, codec: string[]): Promise<string> {
    const db = join(dir, `${name}.duckdb`);
    await runSql(db, [`CREATE TABLE r AS SELECT repeat(unhex(md5(range::VARCHAR)), 262144) AS b FROM range(${Math.ceil(mib / 4)})`]);
    const r = await runBinary(["backup", db, "--backup-dir", bk, "--name", name, ...codec]);
    expect(r.code).toBe(0);
    return name;
  }

  const cases: [string, string[]][] = STRESS ? [["none", ["--no-compress"]], ["gzip", []]] : [["none", ["--no-compress"]]];
  for (const [codec, flags] of cases)
    test(`verify --quick and restore of a ${STRESS ? "600" : "120"} MiB ${codec} archive use no more memory than of a 4 MiB one`, async () => {
      const small = await archiveOf(`small-${codec}`, 4, flags);
      const big = await archiveOf(`big-${codec}`, STRESS ? 600 : 120, flags);
      const commands = (name: string) => [
        ["verify", name, "--quick", "--backup-dir", bk],
        ["restore", name, "--restore-dir", join(dir, `r-${name}`), "--backup-dir", bk],
        ...(STRESS ? [["verify", name, "--backup-dir", bk]] : []),
      ];
      for (const [i, cmd] of commands(small).entries()) {
        const s = await peakRss(cmd);
        const b = await peakRss(commands(big)[i]!);
        expect(s.code).toBe(0);
        expect(b.code).toBe(0);
        console.log(`${cmd[0]} ${cmd[2] === "--quick" ? "--quick " : ""}peak RSS: ${Math.round(s.peak / MiB)} MiB small, ${Math.round(b.peak / MiB)} MiB big`);
        expect(b.peak).toBeLessThan(250 * MiB);
        // DuckDB's buffer pool (96 MB when verify reads every column) is the only size-dependent part.
        expect(b.peak - s.peak).toBeLessThan((cmd.includes("--quick") || cmd[0] === "restore" ? 48 : 110) * MiB);
      }
    });
});
