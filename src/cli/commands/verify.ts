import type { CAC } from "cac";

// Placeholder until the command lands; replaced by its owner.
export function registerVerify(_cli: CAC): void {}
