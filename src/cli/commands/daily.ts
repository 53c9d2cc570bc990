import type { CAC } from "cac";

// Placeholder until the command lands; replaced by its owner.
export function registerDaily(_cli: CAC): void {}
