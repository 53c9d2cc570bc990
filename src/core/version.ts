import pkg from "../../package.json" with { type: "json" };
import bindings from "@duckdb/node-bindings/package.json" with { type: "json" };
import { hostLabel } from "../platform/native.ts";

export const DUCKBAK_VERSION: string = pkg.version;

/**
 * The embedded DuckDB's version as `SELECT version()` reports it, known at build time so that
 * `--version` does not load the 70 MB library: the bindings package is DuckDB's version plus a
 * `-r.N` release of the bindings (test/core/version.test.ts checks it against the library).
 */
export const DUCKDB_VERSION: string = `v${bindings.version.replace(/-r\.\d+$/, "")}`;

/** `duckbak 0.1.0 (DuckDB v1.5.5, linux-x64)`: what `duckbak --version` prints. */
export function versionLine(platform: string = process.platform, arch: string = process.arch): string {
  return `duckbak ${DUCKBAK_VERSION} (DuckDB ${DUCKDB_VERSION}, ${hostLabel(platform, arch)})`;
}
