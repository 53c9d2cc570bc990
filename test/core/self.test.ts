import { expect, test } from "bun:test";
import { emulatorPrefix } from "../../src/core/self.ts";

test("DUCKBAK_EMULATOR: unset or empty runs the binary directly; a JSON array of strings is prefixed", () => {
  expect(emulatorPrefix(undefined)).toEqual([]);
  expect(emulatorPrefix("")).toEqual([]);
  expect(emulatorPrefix('["qemu-aarch64-static","-L","/usr/aarch64-linux-gnu"]')).toEqual(["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu"]);
});

test("DUCKBAK_EMULATOR: anything else is a usage error (exit 2) that shows the expected form", () => {
  for (const bad of ["qemu-aarch64-static -L /x", "[]", '[""]', "[1]", '{"a":1}']) {
    expect(() => emulatorPrefix(bad)).toThrow('DUCKBAK_EMULATOR: expected a JSON array of strings, such as ["qemu-aarch64-static","-L","/usr/aarch64-linux-gnu"]');
    try {
      emulatorPrefix(bad);
    } catch (err) {
      expect((err as { exitCode?: number }).exitCode).toBe(2);
    }
  }
});
