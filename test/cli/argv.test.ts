import { describe, expect, test } from "bun:test";
import { normalizeArgv } from "../../src/cli/argv.ts";
import { UsageError } from "../../src/core/errors.ts";

const options = { all: new Set(["--keep-days", "--wait", "--json", "-h", "--help", "-v"]), withValue: new Set(["--keep-days", "--wait"]) };

describe("normalizeArgv", () => {
  test.each([
    [["cleanup", "--keep-days", "-1"], ["cleanup", "--keep-days=-1"]],
    [["backup", "--wait", "-3.5", "a.duckdb"], ["backup", "--wait=-3.5", "a.duckdb"]],
    [["backup", "--", "-dash.duckdb", "b.duckdb"], ["backup", "./-dash.duckdb", "b.duckdb"]],
    [["backup", "-h"], ["backup", "-h"]],
    [["backup", "./-dash.duckdb", "--json"], ["backup", "./-dash.duckdb", "--json"]],
  ])("%j -> %j", (input, output) => expect(normalizeArgv(input, options)).toEqual(output));

  test.each([[["backup", "-dash.duckdb"]], [["backup", "--json", "-1"]], [["cleanup", "-x"]]])("%j is refused, saying how to name such a file", (input) => {
    expect(() => normalizeArgv(input, options)).toThrow(UsageError);
    expect(() => normalizeArgv(input, options)).toThrow(`write ./${input.at(-1)} or put it after --`);
  });
});
