import type { CAC } from "cac";

// Placeholder until the command lands; replaced by its owner.
export function registerImport(_cli: CAC): void {}
