// Each command's --help names it and documents its options, so a user can find them without the README.
import { expect, test } from "bun:test";
import { runBinary } from "../helpers.ts";

test.each([
  ["cleanup", ["--keep-days", "--keep-minimum", "--keep-last", "--keep-daily", "--keep-weekly", "--keep-monthly", "--keep-yearly", "--dry-run", "--lock-wait", "--bak-older-than"]],
  ["daily", ["--config", "--log-file", "--backup-dir", "--wait", "--lock-wait"]],
  ["status", ["--max-age", "--backup-dir", "--config", "--log-file", "--json"]],
  ["unlock", ["--backup-dir", "--config"]],
  ["schedule", ["--at", "--config", "--method", "--system", "--dry-run", "--json"]],
  ["backup", ["--name", "--no-compress", "--compression", "--backup-dir", "--config", "--wait", "--lock-wait", "--json"]],
  ["list", ["--backup-dir", "--config", "--json", "--repo"]],
  ["verify", ["--quick", "--backup-dir", "--json", "--repo", "--read-data"]],
  ["restore", ["--overwrite", "--restore-dir", "--only", "--no-verify", "--lock-wait", "--json", "--table", "--into", "--replace"]],
  ["ls", ["--backup-dir", "--config", "--json"]],
  ["sql", ["--only", "--backup-dir", "--config", "--json"]],
  ["export", ["--format", "--compression", "--table", "--since", "--date-column", "--out", "--wait", "--json"]],
  ["import", ["--into", "--append", "--json"]],
  ["diff", ["--backup-dir", "--config", "--json"]],
  ["inspect", ["--json"]],
  ["init", ["--repo", "--json"]],
  ["stats", ["--repo", "--json"]],
  ["key", ["--repo", "--json"]],
])("%s --help", async (command, options) => {
  const r = await runBinary([command, "--help"]);
  expect(r.code).toBe(0);
  expect(r.stdout).toContain(`$ duckbak ${command}`);
  for (const option of options) expect(r.stdout).toContain(option);
});
