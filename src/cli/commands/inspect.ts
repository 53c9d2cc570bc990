import type { CAC } from "cac";

// Placeholder until the command lands; replaced by its owner.
export function registerInspect(_cli: CAC): void {}
