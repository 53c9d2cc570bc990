import type { CAC } from "cac";
import { UsageError } from "../../core/errors.ts";
import { copySnapshots } from "../../core/repo/copy.ts";
import { loadContext, type CommonFlags } from "../context.ts";
import { LOCK_WAIT_OPTION, lockWaitSeconds } from "../lock.ts";
import { formatBytes, plural, printJson } from "../output.ts";
import { REPO_OPTION, openRepository, repoLocation, repoLockNotice, targetLocation, targetPassword } from "../repo.ts";

interface CopyFlags extends CommonFlags {
  repo?: string;
  to?: string;
  lockWait?: string;
}

export function registerCopy(cli: CAC): void {
  cli
    .command("copy [...snapshots]", "Copy snapshots (all, or the ones named) to another repository, uploading only what it lacks")
    .option(...REPO_OPTION)
    .option("--to <location>", "Destination repository (a folder or s3://bucket/prefix), created beforehand with init; its password: DUCKBAK_TO_PASSWORD or DUCKBAK_TO_PASSWORD_FILE, else the source's")
    .option(...LOCK_WAIT_OPTION)
    .option("--config <file>", "Config file (default: ./duckbak.toml when present)")
    .option("--json", "Print the result as JSON")
    .example("duckbak copy --repo /mnt/backup/duckbak --to s3://my-bucket/duckbak/prod")
    .example("duckbak copy latest --repo /mnt/backup/duckbak --to s3://my-bucket/duckbak/prod")
    .action(async (snapshots: string[], flags: CopyFlags) => runCopy(snapshots, flags));
}

async function runCopy(snapshots: string[], flags: CopyFlags): Promise<number> {
  const { config } = loadContext(flags);
  const from = repoLocation(flags.repo, config);
  if (!from) throw new UsageError("copy needs --repo LOCATION (or DUCKBAK_REPOSITORY, or repository in duckbak.toml)");
  if (!flags.to || flags.to === (true as unknown)) throw new UsageError("copy needs --to LOCATION: the repository to copy to");
  const to = targetLocation(String(flags.to));
  const src = await openRepository(from, config);
  const dst = await openRepository(to, config, targetPassword(config));
  const lockWait = lockWaitSeconds(flags.lockWait, config);
  const results = await copySnapshots(src, dst, {
    snapshots,
    lockWaitSeconds: lockWait,
    onLockWait: repoLockNotice(lockWait),
    onSnapshot: (r) => {
      if (flags.json) return;
      const what = r.copied ? `copied, ${plural(r.newBlobs, "new chunk")}, ${formatBytes(r.uploadedBytes)} written` : "already there";
      console.log(`${r.source.slice(0, 8)} -> ${r.target.slice(0, 8)}  ${r.timestamp}  ${what}`);
    },
  });
  const copied = results.filter((r) => r.copied);
  const uploaded = copied.reduce((n, r) => n + r.uploadedBytes, 0);
  if (flags.json)
    return printJson("copy", {
      from: src.location,
      to: dst.location,
      snapshots: results.map((r) => ({ source: r.source, target: r.target, created_at: r.timestamp, copied: r.copied, new_blobs: r.newBlobs, uploaded_bytes: r.uploadedBytes })),
      copied: copied.length,
      uploaded_bytes: uploaded,
    });
  console.log(`${plural(copied.length, "snapshot")} copied to ${dst.location} (${formatBytes(uploaded)} written), ${results.length - copied.length} already there`);
  return 0;
}
