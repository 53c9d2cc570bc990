import type { CAC } from "cac";

// Placeholder until the command lands; replaced by its owner.
export function registerDiff(_cli: CAC): void {}
