// The build's check that a binary is for the target it was built for (scripts/build.ts).
import { expect, test } from "bun:test";
import { executableTargets } from "../../scripts/build.ts";
import { BINARY } from "../helpers.ts";

function elf(machine: number): Uint8Array {
  const b = new Uint8Array(64);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  new DataView(b.buffer).setUint16(18, machine, true);
  return b;
}

function pe(machine: number): Uint8Array {
  const b = new Uint8Array(256);
  const v = new DataView(b.buffer);
  b.set([0x4d, 0x5a]);
  v.setUint32(0x3c, 0x80, true);
  v.setUint32(0x80, 0x50450000);
  v.setUint16(0x84, machine, true);
  return b;
}

function macho(cpu: number): Uint8Array {
  const b = new Uint8Array(32);
  const v = new DataView(b.buffer);
  v.setUint32(0, 0xfeedfacf, true);
  v.setUint32(4, cpu, true);
  return b;
}

/** A universal Mach-O header (big-endian) listing `cpus`. */
function fat(cpus: number[]): Uint8Array {
  const b = new Uint8Array(8 + 20 * cpus.length);
  const v = new DataView(b.buffer);
  v.setUint32(0, 0xcafebabe);
  v.setUint32(4, cpus.length);
  cpus.forEach((c, i) => v.setUint32(8 + 20 * i, c));
  return b;
}

test("ELF, PE and Mach-O headers name their OS and architecture; anything else is unknown", () => {
  expect([elf(0x3e), elf(0xb7), pe(0x8664), pe(0xaa64), macho(0x01000007), macho(0x0100000c)].map(executableTargets)).toEqual([
    [{ platform: "linux", arch: "x64" }],
    [{ platform: "linux", arch: "arm64" }],
    [{ platform: "win32", arch: "x64" }],
    [{ platform: "win32", arch: "arm64" }],
    [{ platform: "darwin", arch: "x64" }],
    [{ platform: "darwin", arch: "arm64" }],
  ]);
  for (const other of [elf(0x28), pe(0x14c), macho(7), new Uint8Array(64), new TextEncoder().encode("#!/bin/sh\n")]) expect(executableTargets(other)).toEqual([]);
  const truncated = pe(0x8664);
  new DataView(truncated.buffer).setUint32(0x3c, 0x1000, true);
  expect(executableTargets(truncated)).toEqual([]);
});

test("a universal Mach-O (DuckDB's macOS library) is for both Mac architectures", () => {
  expect(executableTargets(fat([0x01000007, 0x0100000c]))).toEqual([
    { platform: "darwin", arch: "x64" },
    { platform: "darwin", arch: "arm64" },
  ]);
});

test("the host binary npm test built is recognised as this machine's", async () => {
  const head = new Uint8Array(await Bun.file(BINARY).slice(0, 4096).arrayBuffer());
  expect(executableTargets(head)).toEqual([{ platform: process.platform as "linux", arch: process.arch as "x64" }]);
});
