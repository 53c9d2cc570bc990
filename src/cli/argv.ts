// Arguments as a user means them, before cac (mri) reads them: mri takes `-1` after an option for
// a flag named "1", and `-dash.duckdb` for the flags -d -a -s -h (h: help, exit 0, no backup made).
import type { CAC } from "cac";
import { UsageError } from "../core/errors.ts";

const NUMBER = /^-\d+(\.\d+)?$/;

/** The registered options' spellings (`--keep-days`, `-v`), and which of them take a value. */
export function optionSpellings(cli: CAC): { all: Set<string>; withValue: Set<string> } {
  const all = new Set<string>();
  const withValue = new Set<string>();
  for (const command of [cli.globalCommand, ...cli.commands])
    for (const o of command.options)
      for (const part of o.rawName.split(",")) {
        const flag = part.trim().split(/\s/)[0]!;
        all.add(flag);
        if (/[<[]/.test(o.rawName)) withValue.add(flag);
      }
  return { all, withValue };
}

/**
 * `--keep-days -1` becomes `--keep-days=-1` (the command then says the value is invalid);
 * arguments after `--` are operands (a name starting with a dash is passed as `./-name`); any
 * other single-dash word that is not an option is refused, saying how to name such a file.
 */
export function normalizeArgv(argv: string[], options: { all: Set<string>; withValue: Set<string> }): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      for (const rest of argv.slice(i + 1)) out.push(rest.startsWith("-") ? `./${rest}` : rest);
      break;
    }
    const prev = out.at(-1);
    if (NUMBER.test(a) && prev !== undefined && options.withValue.has(prev)) {
      out[out.length - 1] = `${prev}=${a}`;
      continue;
    }
    if (a.startsWith("-") && !a.startsWith("--") && a !== "-" && !options.all.has(a))
      throw new UsageError(`unknown option '${a}' (for a file name that starts with a dash, write ./${a} or put it after --)`);
    out.push(a);
  }
  return out;
}
