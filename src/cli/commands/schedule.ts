import type { CAC } from "cac";

// Placeholder until the command lands; replaced by its owner.
export function registerSchedule(_cli: CAC): void {}
