import type { CAC } from "cac";

// Placeholder until the command lands; replaced by its owner.
export function registerExport(_cli: CAC): void {}
