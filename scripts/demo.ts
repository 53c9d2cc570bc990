// `npm run demo`: sample databases shaped like the seed's in a scratch folder (./demo), then the
// main job run with the compiled binary, as an operator would run it.
import { rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { createSampleDatabases } from "./sample-databases.ts";

const root = resolve(import.meta.dir, "..");
const binary = join(root, "dist", process.platform === "win32" ? "duckbak.exe" : "duckbak");
const demo = join(root, "demo");

rmSync(demo, { recursive: true, force: true });
await createSampleDatabases(join(demo, "data"));
writeFileSync(
  join(demo, "duckbak.toml"),
  `# duckbak configuration for the demo (see README.md for every key)
databases = ["data/results.duckdb", "data/audit_trail.duckdb", "data/tca.duckdb"]
backup_dir = "data/backups"
compression = "gzip"
`,
);

function run(args: string[]): void {
  console.log(`\n$ duckbak ${args.join(" ")}`);
  const r = Bun.spawnSync([binary, ...args], { cwd: demo, stdout: "inherit", stderr: "inherit" });
  if (r.exitCode !== 0) {
    console.error(`demo: 'duckbak ${args.join(" ")}' exited with ${r.exitCode}`);
    process.exit(r.exitCode ?? 1);
  }
}

console.log(`Sample databases created in ${join(demo, "data")}`);
run(["backup"]);
run(["backup", "--compression", "zstd", "--name", "before_schema_change"]);
run(["list"]);
run(["verify", "before_schema_change"]);
run(["restore", "before_schema_change", "--restore-dir", "restored"]);
console.log(`\nThe demo's files are in ${demo} (restored copies in ${join(demo, "restored")});`);
console.log(`archives are standard tar: tar -tzf ${join("demo", "data", "backups", "backup_*.tar.gz")}`);
