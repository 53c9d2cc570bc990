import { expect, test } from "bun:test";
import { DUCKDB_VERSION, versionLine } from "../../src/core/version.ts";
import pkg from "../../package.json" with { type: "json" };
import { DuckDBInstance } from "@duckdb/node-api";

test("the build-time DuckDB version is the one the library reports", async () => {
  const con = await (await DuckDBInstance.create(":memory:")).connect();
  expect(DUCKDB_VERSION).toBe(String((await con.runAndReadAll("SELECT version()")).getRows()[0]![0]));
});

test("the version line names duckbak, DuckDB, and the OS as release files do", () => {
  expect(versionLine("win32", "x64")).toBe(`duckbak ${pkg.version} (DuckDB ${DUCKDB_VERSION}, windows-x64)`);
  expect(versionLine("linux", "arm64")).toBe(`duckbak ${pkg.version} (DuckDB ${DUCKDB_VERSION}, linux-arm64)`);
});
