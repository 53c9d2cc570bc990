import { resolve } from "node:path";
import { DuckbakError, ExitCode } from "./errors.ts";

// The compiled binary runs its bundled code from Bun's embedded file system.
const COMPILED = import.meta.path.startsWith("/$bunfs/") || import.meta.path.includes("~BUN");
const CLI_ENTRY = resolve(import.meta.dir, "../cli/main.ts");

/**
 * DUCKBAK_EMULATOR, a JSON array of strings: the command that runs this binary where the kernel
 * cannot exec it itself, e.g. `["qemu-aarch64-static","-L","/usr/aarch64-linux-gnu"]` for the
 * linux-arm64 binary on an x64 host without binfmt_misc (how its tests run it). Prefixed to the
 * helper processes duckbak starts from its own binary; qemu-user does not follow exec by itself.
 */
export function emulatorPrefix(value: string | undefined): string[] {
  if (value === undefined || value === "") return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    parsed = null;
  }
  if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((a) => typeof a === "string" && a !== "")) {
    throw new DuckbakError(`DUCKBAK_EMULATOR: expected a JSON array of strings, such as ["qemu-aarch64-static","-L","/usr/aarch64-linux-gnu"]`, ExitCode.USAGE);
  }
  return parsed;
}

/** argv that runs this duckbak (the compiled binary, or `bun src/cli/main.ts` in development). */
export function selfCommand(args: string[]): string[] {
  return COMPILED ? [...emulatorPrefix(process.env.DUCKBAK_EMULATOR), process.execPath, ...args] : [process.execPath, CLI_ENTRY, ...args];
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
