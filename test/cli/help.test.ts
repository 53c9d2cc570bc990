// Each command's --help names it and documents its options, so a user can find them without the README.
import { expect, test } from "bun:test";
import { runBinary } from "../helpers.ts";

test.each([
  ["cleanup", ["--keep-days", "--keep-minimum", "--keep-last", "--keep-daily", "--keep-weekly", "--keep-monthly", "--keep-yearly", "--dry-run", "--lock-wait"]],
  ["daily", ["--config", "--log-file", "--backup-dir", "--wait", "--lock-wait"]],
  ["status", ["--max-age", "--backup-dir", "--config", "--log-file", "--json"]],
  ["unlock", ["--backup-dir", "--config"]],
  ["schedule", ["--at", "--config", "--method", "--system", "--dry-run", "--json"]],
  ["backup", ["--lock-wait"]],
])("%s --help", async (command, options) => {
  const r = await runBinary([command, "--help"]);
  expect(r.code).toBe(0);
  expect(r.stdout).toContain(`$ duckbak ${command}`);
  for (const option of options) expect(r.stdout).toContain(option);
});
