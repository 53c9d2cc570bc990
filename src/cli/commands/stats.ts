import type { CAC } from "cac";
import { UsageError } from "../../core/errors.ts";
import { repositoryStats } from "../../core/repo/stats.ts";
import { loadContext, type CommonFlags } from "../context.ts";
import { formatBytes, printJson } from "../output.ts";
import { REPO_OPTION, openRepository, repoLocation } from "../repo.ts";

interface StatsFlags extends CommonFlags {
  repo?: string;
}

export function registerStats(cli: CAC): void {
  cli
    .command("stats", "Snapshot repository: stored bytes, bytes the snapshots hold, deduplication ratio")
    .option(...REPO_OPTION)
    .option("--config <file>", "Config file (default: ./duckbak.toml when present)")
    .option("--json", "Print the result as JSON")
    .action(async (flags: StatsFlags) => runStats(flags));
}

async function runStats(flags: StatsFlags): Promise<number> {
  const { config } = loadContext(flags);
  const location = repoLocation(flags.repo, config);
  if (!location) throw new UsageError("stats needs --repo LOCATION (or DUCKBAK_REPOSITORY, or repository in duckbak.toml)");
  const repo = await openRepository(location, config);
  const s = await repositoryStats(repo);
  if (flags.json) {
    return printJson("stats", {
      repository: repo.location,
      snapshots: s.snapshots,
      stored_bytes: s.storedBytes,
      packs: s.packs,
      pack_bytes: s.packBytes,
      blobs: s.blobs,
      unique_bytes: s.uniqueBytes,
      list_blobs: s.listBlobs,
      list_bytes: s.listBytes,
      logical_bytes: s.logicalBytes,
      dedup_ratio: Math.round(s.dedupRatio * 100) / 100,
    });
  }
  console.log(`Repository ${repo.location}`);
  console.log(`  snapshots       ${s.snapshots}`);
  console.log(`  stored          ${formatBytes(s.storedBytes)} (${s.packs} packs, ${formatBytes(s.packBytes)})`);
  console.log(`  distinct chunks ${s.blobs} (${formatBytes(s.uniqueBytes)} before compression)`);
  console.log(`  chunk lists     ${s.listBlobs} (${formatBytes(s.listBytes)} of chunk ids)`);
  console.log(`  snapshots hold  ${formatBytes(s.logicalBytes)} of database files`);
  console.log(`  dedup ratio     ${s.dedupRatio.toFixed(2)}x (held / stored)`);
  return 0;
}
