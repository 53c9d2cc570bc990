import { resolve } from "node:path";

// The compiled binary runs its bundled code from Bun's embedded file system.
const COMPILED = import.meta.path.startsWith("/$bunfs/") || import.meta.path.includes("~BUN");
const CLI_ENTRY = resolve(import.meta.dir, "../cli/main.ts");

/** argv that runs this duckbak (the compiled binary, or `bun src/cli/main.ts` in development). */
export function selfCommand(args: string[]): string[] {
  return COMPILED ? [process.execPath, ...args] : [process.execPath, CLI_ENTRY, ...args];
}

/** Absolute path of the program a scheduler should run. */
export function selfExecutable(): string | null {
  return COMPILED ? process.execPath : null;
}

/**
 * URL of a module under src/ that runs on its own (a worker). In the binary, bundled entry points
 * sit at their path below src/ (scripts/build.ts makes src/cli/main.ts and the workers entries).
 */
export function moduleUrl(srcRelativePath: string): string {
  return new URL(COMPILED ? `./${srcRelativePath}` : `../${srcRelativePath}`, import.meta.url).href;
}
