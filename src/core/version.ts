import pkg from "../../package.json" with { type: "json" };

export const DUCKBAK_VERSION: string = pkg.version;
