// Which policy is in force when the config and the command line each set some retention rules.
import { describe, expect, test } from "bun:test";
import { effectivePolicy } from "../../src/core/cleanup.ts";
import { RetentionPolicyError, validatePolicy } from "../../src/core/retention.ts";

describe("effectivePolicy", () => {
  test.each([
    ["nothing set: the seed rule", {}, {}, { keepDays: 30, keepMinimum: 5 }],
    ["--keep-days alone keeps the 5-minimum", {}, { keepDays: 60 }, { keepDays: 60, keepMinimum: 5 }],
    ["only GFS rules: exactly those", {}, { keepDaily: 7, keepYearly: "forever" }, { keepDaily: 7, keepYearly: "forever" }],
    ["GFS in the config, --keep-days on the command line", { keepDaily: 7, keepWeekly: 4 }, { keepDays: 10 }, { keepDays: 10, keepMinimum: 5, keepDaily: 7, keepWeekly: 4 }],
    ["flags override the config key by key", { keepDays: 60, keepMinimum: 10 }, { keepMinimum: 2, keepDays: undefined }, { keepDays: 60, keepMinimum: 2 }],
  ] as const)("%s", (_, config, flags, expected) => {
    expect(effectivePolicy(config, flags)).toEqual(expected);
  });

  test("turning both seed numbers off with nothing else is refused as deleting everything", () => {
    const policy = effectivePolicy({ keepDays: 0 }, { keepMinimum: 0 });
    expect(() => validatePolicy(policy)).toThrow(RetentionPolicyError);
    expect(() => validatePolicy(policy)).toThrow("would delete every backup");
  });
});
