import type { CAC } from "cac";
import { DuckbakError, UsageError } from "../../core/errors.ts";
import { resolvePassword } from "../../core/crypto/password.ts";
import { loadContext, type CommonFlags } from "../context.ts";
import { formatTable, printJson } from "../output.ts";
import { REPO_OPTION, openRepository, repoLocation } from "../repo.ts";

interface KeyFlags extends CommonFlags {
  repo?: string;
}

export function registerKey(cli: CAC): void {
  cli
    .command("key <action> [id]", "Repository passwords: `key list`, `key add` (the new one from DUCKBAK_NEW_PASSWORD or DUCKBAK_NEW_PASSWORD_FILE), `key remove ID`")
    .option(...REPO_OPTION)
    .option("--config <file>", "Config file (default: ./duckbak.toml when present)")
    .option("--json", "Print the result as JSON")
    .example("DUCKBAK_NEW_PASSWORD=... duckbak key add --repo /mnt/backup/duckbak   # a second password")
    .example("duckbak key remove 3f9a1c2e --repo /mnt/backup/duckbak                # not the one in use")
    .action(async (action: string, id: string | undefined, flags: KeyFlags) => runKey(action, id, flags));
}

async function runKey(action: string, id: string | undefined, flags: KeyFlags): Promise<number> {
  const { config } = loadContext(flags);
  const location = repoLocation(flags.repo, config);
  if (!location) throw new UsageError("key needs --repo LOCATION (or DUCKBAK_REPOSITORY, or repository in duckbak.toml)");
  if (!["list", "add", "remove"].includes(action)) throw new UsageError(`key ${action}: the actions are list, add and remove`);
  // Before the repository is opened: a missing new password is said at once.
  const newPassword = action === "add" ? resolvePassword({ variable: "DUCKBAK_NEW_PASSWORD" }) : null;
  const repo = await openRepository(location, config);
  if (newPassword !== null) {
    const key = await repo.addKey(newPassword);
    const short = key.slice("keys/".length, "keys/".length + 8);
    if (flags.json) return printJson("key", { repository: repo.location, action, key: key.slice("keys/".length) });
    else console.log(`Added key ${short}: the new password opens ${repo.location} too.`);
    return 0;
  }
  const keys = await repo.listKeys();
  if (action === "list") {
    if (flags.json) return printJson("key", { repository: repo.location, action, keys: keys.map((k) => ({ id: k.id, created_at: k.created, current: k.current })) });
    else for (const line of formatTable([["ID", "CREATED (UTC)", ""], ...keys.map((k) => [k.id.slice(0, 8), k.created, k.current ? "(this password)" : ""])])) console.log(line);
    return 0;
  }
  if (!id) throw new UsageError("key remove needs the ID of a key (see key list)");
  const match = keys.filter((k) => k.id.startsWith(id));
  if (match.length !== 1) throw new UsageError(`key remove ${id}: matches ${match.length} keys (see key list)`);
  if (match[0]!.current) throw new DuckbakError(`key ${id}: is the key of the password in use; remove it with another password`);
  await repo.store.delete(`keys/${match[0]!.id}`);
  if (flags.json) return printJson("key", { repository: repo.location, action, key: match[0]!.id });
  else console.log(`Removed key ${match[0]!.id.slice(0, 8)}: its password no longer opens ${repo.location}.`);
  return 0;
}
