import type { CAC } from "cac";
import { UsageError } from "../../core/errors.ts";
import { Repository } from "../../core/repo/repository.ts";
import { openStore } from "../../core/store/index.ts";
import { loadContext, type CommonFlags } from "../context.ts";
import { REPO_OPTION, repoLocation, repoPassword } from "../repo.ts";
import { printJson } from "../output.ts";

interface InitFlags extends CommonFlags {
  repo?: string;
}

export function registerInit(cli: CAC): void {
  cli
    .command("init", "Create an encrypted snapshot repository (--repo), protected by DUCKBAK_PASSWORD")
    .option(...REPO_OPTION)
    .option("--config <file>", "Config file (default: ./duckbak.toml when present)")
    .option("--json", "Print the result as JSON")
    .example("DUCKBAK_PASSWORD=... duckbak init --repo /mnt/backup/duckbak")
    .action(async (flags: InitFlags) => runInit(flags));
}

async function runInit(flags: InitFlags): Promise<number> {
  const { config } = loadContext(flags);
  const location = repoLocation(flags.repo, config);
  if (!location) throw new UsageError("init needs --repo LOCATION (or DUCKBAK_REPOSITORY, or repository in duckbak.toml)");
  const repo = await Repository.init(openStore(location, { s3: config.s3 }), repoPassword(config));
  if (flags.json) printJson("init", { repository: repo.location, id: repo.config.id });
  else console.log(`Created repository ${repo.location}. Keep the password safe: without it the snapshots cannot be read.`);
  return 0;
}
