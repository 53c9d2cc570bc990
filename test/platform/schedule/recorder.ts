import type { RunResult } from "../../../src/platform/schedule/index.ts";

/** A stand-in for spawning schtasks/systemctl: records each argv and answers with `respond`. */
export function recorder(respond: (argv: string[]) => Partial<RunResult> = () => ({})) {
  const calls: string[][] = [];
  const run = async (argv: readonly string[]): Promise<RunResult> => {
    calls.push([...argv]);
    return { exitCode: 0, stdout: "", stderr: "", ...respond([...argv]) };
  };
  return { calls, run };
}
