import { describe, expect, test } from "bun:test";
import { UsageError } from "../../src/core/errors.ts";
import {
  DEFAULT_POLICY,
  RetentionPolicyError,
  describePolicy,
  planRetention,
  validatePolicy,
  type BackupRef,
  type RetentionDecision,
  type RetentionPolicy,
} from "../../src/core/retention.ts";

const DAY = 24 * 60 * 60 * 1000;
const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** A backup named like duckbak's default (UTC stamp) unless a name is given. */
function bk(iso: string, name?: string, verified?: boolean): BackupRef {
  const t = new Date(iso);
  const stamp =
    `${t.getUTCFullYear()}${pad(t.getUTCMonth() + 1)}${pad(t.getUTCDate())}` +
    `_${pad(t.getUTCHours())}${pad(t.getUTCMinutes())}${pad(t.getUTCSeconds())}`;
  return { name: name ?? `backup_${stamp}`, timestamp: t, verified };
}

/** The decision as plain names, so a failure shows exactly which backup moved. */
function summary(d: RetentionDecision) {
  return { keep: d.keep.map((k) => [k.backup.name, k.reasons] as const), remove: d.remove.map((b) => b.name) };
}

function shuffle<T>(items: T[], rand: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** mulberry32: small seeded PRNG, so generated cases are the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NONE = "newest (none verified)";

interface Case {
  name: string;
  timeZone: string;
  policy: RetentionPolicy;
  now: string;
  backups: BackupRef[];
  keep: [string, string[]][];
  remove: string[];
}

const calendarCases: Case[] = [
  {
    name: "ISO week-year: 2020-12-31 .. 2021-01-03 are all 2020-W53",
    timeZone: "UTC",
    policy: { keepWeekly: 4 },
    now: "2021-01-12T00:00:00Z",
    backups: [
      bk("2020-12-27T12:00:00Z"), // Sun, 2020-W52
      bk("2020-12-28T12:00:00Z"), // Mon, 2020-W53
      bk("2020-12-31T12:00:00Z"),
      bk("2021-01-01T12:00:00Z"),
      bk("2021-01-03T12:00:00Z"), // Sun, last day of 2020-W53
      bk("2021-01-04T12:00:00Z"), // Mon, 2021-W01
      bk("2021-01-10T12:00:00Z"),
      bk("2021-01-11T12:00:00Z"), // 2021-W02
    ],
    keep: [
      ["backup_20210111_120000", ["weekly 2021-W02", NONE]],
      ["backup_20210110_120000", ["weekly 2021-W01"]],
      ["backup_20210103_120000", ["weekly 2020-W53"]],
      ["backup_20201227_120000", ["weekly 2020-W52"]],
    ],
    remove: ["backup_20210104_120000", "backup_20210101_120000", "backup_20201231_120000", "backup_20201228_120000"],
  },
  {
    name: "ISO week-year: 2018-12-31 is 2019-W01, 2027-01-01 is 2026-W53",
    timeZone: "UTC",
    policy: { keepWeekly: 10 },
    now: "2027-01-02T00:00:00Z",
    backups: [bk("2018-12-30T12:00:00Z"), bk("2018-12-31T12:00:00Z"), bk("2026-12-31T12:00:00Z"), bk("2027-01-01T12:00:00Z")],
    keep: [
      ["backup_20270101_120000", ["weekly 2026-W53", NONE]],
      ["backup_20181231_120000", ["weekly 2019-W01"]],
      ["backup_20181230_120000", ["weekly 2018-W52"]],
    ],
    remove: ["backup_20261231_120000"],
  },
  ...(["UTC", "America/New_York"] as const).map(
    (timeZone): Case => ({
      name: `year boundary in ${timeZone}: both late-December backups are 2023`,
      timeZone,
      policy: { keepMonthly: 2, keepYearly: 2 },
      now: "2024-02-01T00:00:00Z",
      backups: [bk("2023-12-31T22:30:00Z"), bk("2023-12-31T23:30:00Z"), bk("2024-01-15T12:00:00Z")],
      keep: [
        ["backup_20240115_120000", ["monthly 2024-01", "yearly 2024", NONE]],
        ["backup_20231231_233000", ["monthly 2023-12", "yearly 2023"]],
      ],
      remove: ["backup_20231231_223000"],
    }),
  ),
  {
    name: "year boundary in Europe/Berlin: 23:30Z on Dec 31 is already 2024 locally",
    timeZone: "Europe/Berlin",
    policy: { keepMonthly: 2, keepYearly: 2 },
    now: "2024-02-01T00:00:00Z",
    backups: [bk("2023-12-31T22:30:00Z"), bk("2023-12-31T23:30:00Z"), bk("2024-01-15T12:00:00Z")],
    keep: [
      ["backup_20240115_120000", ["monthly 2024-01", "yearly 2024", NONE]],
      ["backup_20231231_223000", ["monthly 2023-12", "yearly 2023"]],
    ],
    remove: ["backup_20231231_233000"],
  },
  {
    name: "month boundary in America/New_York: 03:00Z on Mar 1 is still Feb 29 locally",
    timeZone: "America/New_York",
    policy: { keepDaily: 2, keepMonthly: 2 },
    now: "2024-03-02T00:00:00Z",
    backups: [bk("2024-02-10T12:00:00Z"), bk("2024-03-01T03:00:00Z"), bk("2024-03-01T06:00:00Z")],
    keep: [
      ["backup_20240301_060000", ["daily 2024-03-01", "monthly 2024-03", NONE]],
      ["backup_20240301_030000", ["daily 2024-02-29", "monthly 2024-02"]],
    ],
    remove: ["backup_20240210_120000"],
  },
  {
    name: "month boundary in UTC: both Mar 1 backups are March",
    timeZone: "UTC",
    policy: { keepDaily: 2, keepMonthly: 2 },
    now: "2024-03-02T00:00:00Z",
    backups: [bk("2024-02-10T12:00:00Z"), bk("2024-03-01T03:00:00Z"), bk("2024-03-01T06:00:00Z")],
    keep: [
      ["backup_20240301_060000", ["daily 2024-03-01", "monthly 2024-03", NONE]],
      ["backup_20240210_120000", ["daily 2024-02-10", "monthly 2024-02"]],
    ],
    remove: ["backup_20240301_030000"],
  },
  {
    name: "DST spring forward, Europe/Berlin: 01:30 CET and 03:30 CEST are one day",
    timeZone: "Europe/Berlin",
    policy: { keepDaily: 2 },
    now: "2024-04-01T00:00:00Z",
    backups: [bk("2024-03-30T12:00:00Z"), bk("2024-03-31T00:30:00Z"), bk("2024-03-31T01:30:00Z")],
    keep: [
      ["backup_20240331_013000", ["daily 2024-03-31", NONE]],
      ["backup_20240330_120000", ["daily 2024-03-30"]],
    ],
    remove: ["backup_20240331_003000"],
  },
  {
    // A fixed +01:00 offset would put 22:30Z on Oct 26 and keep it instead of 21:30Z.
    name: "DST fall back, Europe/Berlin: 02:30 CEST and 02:30 CET are one day",
    timeZone: "Europe/Berlin",
    policy: { keepDaily: 2 },
    now: "2024-10-28T00:00:00Z",
    backups: [
      bk("2024-10-26T21:30:00Z"), // Oct 26 23:30 CEST
      bk("2024-10-26T22:30:00Z"), // Oct 27 00:30 CEST
      bk("2024-10-27T00:30:00Z"), // Oct 27 02:30 CEST
      bk("2024-10-27T01:30:00Z"), // Oct 27 02:30 CET
    ],
    keep: [
      ["backup_20241027_013000", ["daily 2024-10-27", NONE]],
      ["backup_20241026_213000", ["daily 2024-10-26"]],
    ],
    remove: ["backup_20241027_003000", "backup_20241026_223000"],
  },
  {
    name: "DST fall back, America/New_York: 01:30 EDT and 01:30 EST are one day",
    timeZone: "America/New_York",
    policy: { keepDaily: 2 },
    now: "2024-11-04T00:00:00Z",
    backups: [bk("2024-11-03T03:30:00Z"), bk("2024-11-03T05:30:00Z"), bk("2024-11-03T06:30:00Z")],
    keep: [
      ["backup_20241103_063000", ["daily 2024-11-03", NONE]],
      ["backup_20241103_033000", ["daily 2024-11-02"]],
    ],
    remove: ["backup_20241103_053000"],
  },
  {
    name: "same New York backups in UTC are all Nov 3",
    timeZone: "UTC",
    policy: { keepDaily: 2 },
    now: "2024-11-04T00:00:00Z",
    backups: [bk("2024-11-03T03:30:00Z"), bk("2024-11-03T05:30:00Z"), bk("2024-11-03T06:30:00Z")],
    keep: [["backup_20241103_063000", ["daily 2024-11-03", NONE]]],
    remove: ["backup_20241103_053000", "backup_20241103_033000"],
  },
  {
    name: "daily counts only days that have backups (restic), newest of each day",
    timeZone: "UTC",
    policy: { keepDaily: 3 },
    now: "2024-02-02T00:00:00Z",
    backups: [
      bk("2024-01-01T12:00:00Z"),
      bk("2024-01-05T08:00:00Z"),
      bk("2024-01-05T18:00:00Z"),
      bk("2024-01-20T12:00:00Z"),
      bk("2024-02-01T01:00:00Z"),
      bk("2024-02-01T23:00:00Z"),
    ],
    keep: [
      ["backup_20240201_230000", ["daily 2024-02-01", NONE]],
      ["backup_20240120_120000", ["daily 2024-01-20"]],
      ["backup_20240105_180000", ["daily 2024-01-05"]],
    ],
    remove: ["backup_20240201_010000", "backup_20240105_080000", "backup_20240101_120000"],
  },
  {
    name: "every rule at once: union, each backup lists all its reasons",
    timeZone: "UTC",
    policy: { keepLast: 1, keepDaily: 2, keepWeekly: 2, keepMonthly: 2, keepYearly: 1 },
    now: "2024-01-16T00:00:00Z",
    backups: [
      bk("2024-01-15T10:00:00Z", "A"), // Mon, 2024-W03
      bk("2024-01-14T10:00:00Z", "B"), // Sun, 2024-W02
      bk("2024-01-14T08:00:00Z", "C"),
      bk("2024-01-08T10:00:00Z", "D"),
      bk("2023-12-20T10:00:00Z", "E"),
      bk("2023-11-05T10:00:00Z", "F"),
    ],
    keep: [
      ["A", ["last 1", "daily 2024-01-15", "weekly 2024-W03", "monthly 2024-01", "yearly 2024", NONE]],
      ["B", ["daily 2024-01-14", "weekly 2024-W02"]],
      ["E", ["monthly 2023-12"]],
    ],
    remove: ["C", "D", "F"],
  },
  {
    name: "seed rule and GFS combine by union",
    timeZone: "UTC",
    policy: { keepDays: 10, keepMinimum: 2, keepMonthly: 3 },
    now: "2024-01-16T00:00:00Z",
    backups: [
      bk("2024-01-15T10:00:00Z", "A"),
      bk("2024-01-14T10:00:00Z", "B"),
      bk("2024-01-08T10:00:00Z", "C"),
      bk("2024-01-05T10:00:00Z", "D"), // 10 days 14 h old
      bk("2023-12-20T10:00:00Z", "E"),
      bk("2023-12-01T10:00:00Z", "F"),
      bk("2023-11-05T10:00:00Z", "G"),
    ],
    keep: [
      ["A", ["keep-days 10", "keep-minimum", "monthly 2024-01", NONE]],
      ["B", ["keep-days 10", "keep-minimum"]],
      ["C", ["keep-days 10"]],
      ["E", ["monthly 2023-12"]],
      ["G", ["monthly 2023-11"]],
    ],
    remove: ["D", "F"],
  },
  {
    name: "keepYearly forever keeps the newest of every year",
    timeZone: "UTC",
    policy: { keepYearly: "forever" },
    now: "2024-06-01T00:00:00Z",
    backups: [
      bk("2019-03-01T00:00:00Z"),
      bk("2019-11-01T00:00:00Z"),
      bk("2021-01-01T00:00:00Z"),
      bk("2021-12-31T23:59:59Z"),
      bk("2024-05-01T00:00:00Z"),
    ],
    keep: [
      ["backup_20240501_000000", ["yearly 2024", NONE]],
      ["backup_20211231_235959", ["yearly 2021"]],
      ["backup_20191101_000000", ["yearly 2019"]],
    ],
    remove: ["backup_20210101_000000", "backup_20190301_000000"],
  },
  {
    name: "ordered by timestamp, never by name",
    timeZone: "UTC",
    policy: { keepLast: 2 },
    now: "2024-06-01T00:00:00Z",
    backups: [bk("2024-05-01T00:00:00Z", "zeta"), bk("2024-05-03T00:00:00Z", "alpha"), bk("2024-05-02T00:00:00Z", "mid")],
    keep: [
      ["alpha", ["last 1", NONE]],
      ["mid", ["last 2"]],
    ],
    remove: ["zeta"],
  },
  {
    name: "equal timestamps: the greater name counts as newer",
    timeZone: "UTC",
    policy: { keepLast: 1 },
    now: "2024-06-01T00:00:00Z",
    backups: [bk("2024-05-01T00:00:00Z", "backup_x"), bk("2024-05-01T00:00:00Z", "backup_y")],
    keep: [["backup_y", ["last 1", NONE]]],
    remove: ["backup_x"],
  },
];

describe("planRetention: calendar periods", () => {
  for (const c of calendarCases) {
    test(c.name, () => {
      const expected = { keep: c.keep, remove: c.remove };
      const now = new Date(c.now);
      expect(summary(planRetention(c.backups, c.policy, now, { timeZone: c.timeZone }))).toEqual(expected);
      expect(summary(planRetention([...c.backups].reverse(), c.policy, now, { timeZone: c.timeZone }))).toEqual(expected);
    });
  }
});

describe("planRetention: seed rule", () => {
  // One backup a day at 02:00Z, 2024-01-01 .. 2024-02-04.
  const daily = Array.from({ length: 35 }, (_, i) => bk(new Date(Date.UTC(2024, 0, 1 + i, 2)).toISOString()));
  const names = (from: number, to: number) => daily.slice(from, to).map((b) => b.name).reverse();

  test("35 daily backups, default policy, an hour after the last: keeps the last 30", () => {
    const d = planRetention(daily, DEFAULT_POLICY, new Date("2024-02-04T03:00:00Z"), { timeZone: "UTC" });
    expect(d.keep.map((k) => k.backup.name)).toEqual(names(5, 35));
    expect(d.remove.map((b) => b.name)).toEqual(names(0, 5));
    expect(d.keep[0].reasons).toEqual(["keep-days 30", "keep-minimum", NONE]);
    expect(d.keep[4].reasons).toEqual(["keep-days 30", "keep-minimum"]);
    expect(d.keep[5].reasons).toEqual(["keep-days 30"]);
    expect(d.keep[29].backup.name).toBe("backup_20240106_020000");
  });

  test("a backup exactly keep-days old is not older than keep-days", () => {
    const d = planRetention(daily, DEFAULT_POLICY, new Date("2024-02-04T02:00:00Z"), { timeZone: "UTC" });
    expect(d.keep.map((k) => k.backup.name)).toEqual(names(4, 35));
    expect(d.remove.map((b) => b.name)).toEqual(names(0, 4));
    const later = planRetention(daily, DEFAULT_POLICY, new Date("2024-02-04T02:00:00.001Z"), { timeZone: "UTC" });
    expect(later.remove.map((b) => b.name)).toEqual(names(0, 5));
  });

  test("keep-days counts 24-hour days, so the time zone does not matter", () => {
    const now = new Date("2024-02-04T03:00:00Z");
    const utc = summary(planRetention(daily, DEFAULT_POLICY, now, { timeZone: "UTC" }));
    for (const timeZone of ["Europe/Berlin", "America/New_York", "Pacific/Chatham"]) {
      expect(summary(planRetention(daily, DEFAULT_POLICY, now, { timeZone }))).toEqual(utc);
    }
  });

  test("all backups old: keep-minimum keeps the 5 newest", () => {
    const old = Array.from({ length: 8 }, (_, i) => bk(`2023-0${i + 1}-15T12:00:00Z`));
    const d = planRetention(shuffle(old, prng(7)), DEFAULT_POLICY, new Date("2024-06-01T00:00:00Z"), { timeZone: "UTC" });
    expect(summary(d)).toEqual({
      keep: [
        ["backup_20230815_120000", ["keep-minimum", NONE]],
        ["backup_20230715_120000", ["keep-minimum"]],
        ["backup_20230615_120000", ["keep-minimum"]],
        ["backup_20230515_120000", ["keep-minimum"]],
        ["backup_20230415_120000", ["keep-minimum"]],
      ],
      remove: ["backup_20230315_120000", "backup_20230215_120000", "backup_20230115_120000"],
    });
  });

  test("fewer backups than keep-minimum: nothing removed", () => {
    const few = [bk("2020-01-01T00:00:00Z"), bk("2020-01-02T00:00:00Z")];
    expect(planRetention(few, DEFAULT_POLICY, new Date("2024-01-01T00:00:00Z"), { timeZone: "UTC" }).remove).toEqual([]);
  });

  test("no backups: nothing to do", () => {
    expect(planRetention([], DEFAULT_POLICY, new Date("2024-01-01T00:00:00Z"))).toEqual({ keep: [], remove: [] });
  });
});

describe("planRetention: the newest restorable backup survives", () => {
  const now = new Date("2024-06-01T00:00:00Z");
  const policy = { keepDays: 7 }; // every backup below is older

  test("the newest verified backup is kept even when newer ones are not", () => {
    const backups = [
      bk("2023-01-01T00:00:00Z", "b1", true),
      bk("2023-02-01T00:00:00Z", "b2", true),
      bk("2023-03-01T00:00:00Z", "b3"),
      bk("2023-04-01T00:00:00Z", "b4", false),
    ];
    expect(summary(planRetention(backups, policy, now, { timeZone: "UTC" }))).toEqual({
      keep: [["b2", ["newest verified"]]],
      remove: ["b4", "b3", "b1"],
    });
  });

  test("with nothing verified, the newest is kept even if known bad", () => {
    const backups = [bk("2023-01-01T00:00:00Z", "b1"), bk("2023-04-01T00:00:00Z", "b4", false)];
    expect(summary(planRetention(backups, policy, now, { timeZone: "UTC" }))).toEqual({
      keep: [["b4", [NONE]]],
      remove: ["b1"],
    });
  });

  test("protection is listed next to the rules that also keep it", () => {
    const backups = [bk("2024-05-30T00:00:00Z", "new", true), bk("2023-01-01T00:00:00Z", "old")];
    expect(summary(planRetention(backups, policy, now, { timeZone: "UTC" }))).toEqual({
      keep: [["new", ["keep-days 7", "newest verified"]]],
      remove: ["old"],
    });
  });
});

describe("policy validation", () => {
  const refused: [string, RetentionPolicy, RegExp][] = [
    ["empty object", {}, /keeps nothing/],
    ["keepDays 0 and keepMinimum 0", { keepDays: 0, keepMinimum: 0 }, /keeps nothing/],
    ["all zero", { keepDays: 0, keepMinimum: 0, keepLast: 0, keepDaily: 0, keepWeekly: 0, keepMonthly: 0, keepYearly: 0 }, /keeps nothing/],
    ["negative keepDays", { keepDays: -1 }, /keepDays must be a non-negative integer, got -1/],
    ["fractional keepMinimum", { keepMinimum: 1.5 }, /keepMinimum must be a non-negative integer, got 1.5/],
    ["NaN keepDaily", { keepDaily: NaN }, /keepDaily must be a non-negative integer, got NaN/],
    ["Infinity keepWeekly", { keepWeekly: Infinity }, /keepWeekly must be/],
    ["string keepMonthly", { keepMonthly: "3" as unknown as number }, /keepMonthly must be a non-negative integer, got "3"/],
    ["forever on keepDaily", { keepDaily: "forever" as unknown as number }, /keepDaily must be/],
    ["negative keepYearly", { keepYearly: -2 }, /keepYearly must be a non-negative integer or "forever", got -2/],
    ["misspelt option", { keepdaily: 3 } as RetentionPolicy, /unknown retention option "keepdaily"/],
  ];
  for (const [name, policy, message] of refused) {
    test(`refuses ${name}`, () => {
      let err: unknown;
      try {
        planRetention([bk("2024-01-01T00:00:00Z")], policy, new Date("2024-01-02T00:00:00Z"), { timeZone: "UTC" });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(RetentionPolicyError);
      expect(err).toBeInstanceOf(UsageError);
      expect((err as UsageError).exitCode).toBe(2);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).not.toContain("\n");
      expect(() => validatePolicy(policy)).toThrow(RetentionPolicyError);
    });
  }

  for (const policy of [DEFAULT_POLICY, { keepMinimum: 1 }, { keepDays: 1 }, { keepYearly: "forever" as const }, { keepDays: 0, keepLast: 1 }]) {
    test(`accepts ${JSON.stringify(policy)}`, () => expect(() => validatePolicy(policy)).not.toThrow());
  }

  test("refuses an unknown time zone", () => {
    expect(() => planRetention([], DEFAULT_POLICY, new Date(), { timeZone: "Mars/Olympus" })).toThrow(/unknown time zone "Mars\/Olympus"/);
  });

  test("refuses invalid timestamps and duplicate names", () => {
    const now = new Date("2024-01-01T00:00:00Z");
    expect(() => planRetention([{ name: "x", timestamp: new Date("nope") }], DEFAULT_POLICY, now)).toThrow(RangeError);
    expect(() => planRetention([bk("2023-01-01T00:00:00Z", "x"), bk("2023-02-01T00:00:00Z", "x")], DEFAULT_POLICY, now)).toThrow(
      /duplicate backup name "x"/,
    );
    expect(() => planRetention([], DEFAULT_POLICY, new Date(NaN))).toThrow(RangeError);
  });
});

describe("describePolicy", () => {
  test.each([
    [DEFAULT_POLICY, "keep backups from the last 30 days, at least the 5 newest; the newest verified backup is always kept"],
    [
      { keepLast: 3, keepDaily: 7, keepWeekly: 4, keepMonthly: 12, keepYearly: "forever" as const },
      "keep the last 3, 7 daily, 4 weekly, 12 monthly, yearly forever; the newest verified backup is always kept",
    ],
    [{ keepYearly: 2, keepDays: 0 }, "keep 2 yearly; the newest verified backup is always kept"],
    [{}, "keep nothing"],
  ])("%j", (policy, text) => expect(describePolicy(policy)).toBe(text));
});

// ---------------------------------------------------------------------------------------------
// Generated cases, checked against an independent model of the rules.

const swedish = new Map<string, Intl.DateTimeFormat>();
/** Local calendar date via a different Intl path than the implementation (sv-SE prints ISO dates). */
function localDate(t: Date, timeZone: string): { y: number; m: number; d: number } {
  if (!swedish.has(timeZone)) {
    swedish.set(timeZone, new Intl.DateTimeFormat("sv-SE", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }));
  }
  const [y, m, d] = swedish
    .get(timeZone)!
    .format(t)
    .split("-")
    .map(Number);
  return { y, m, d };
}

/** ISO week by the ordinal-date formula (not the Thursday method the implementation uses). */
function isoWeekByOrdinal(y: number, m: number, d: number): string {
  const leap = (yy: number) => (yy % 4 === 0 && yy % 100 !== 0) || yy % 400 === 0;
  const p = (yy: number) => (yy + Math.floor(yy / 4) - Math.floor(yy / 100) + Math.floor(yy / 400)) % 7;
  const weeksIn = (yy: number) => (p(yy) === 4 || p(yy - 1) === 3 ? 53 : 52);
  const cum = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
  const ordinal = cum[m - 1] + d + (m > 2 && leap(y) ? 1 : 0);
  const weekday = ((new Date(Date.UTC(y, m - 1, d)).getUTCDay() + 6) % 7) + 1;
  let week = Math.floor((ordinal - weekday + 10) / 7);
  let year = y;
  if (week < 1) week = weeksIn(--year);
  else if (week > weeksIn(y)) [week, year] = [1, y + 1];
  return `${year}-W${pad(week)}`;
}

/** The rules as the brief states them: for the last N periods that have backups, the newest of each. */
function model(backups: BackupRef[], policy: RetentionPolicy, now: Date, timeZone: string) {
  const sorted = [...backups].sort((a, b) => b.timestamp.getTime() - a.timestamp.getTime() || (a.name < b.name ? 1 : -1));
  const reasons = new Map(sorted.map((b) => [b.name, [] as string[]]));
  const add = (b: BackupRef, r: string) => reasons.get(b.name)!.push(r);
  if (policy.keepDays) {
    for (const b of sorted) if (now.getTime() - b.timestamp.getTime() <= policy.keepDays * DAY) add(b, `keep-days ${policy.keepDays}`);
  }
  for (const b of sorted.slice(0, policy.keepMinimum ?? 0)) add(b, "keep-minimum");
  sorted.slice(0, policy.keepLast ?? 0).forEach((b, i) => add(b, `last ${i + 1}`));
  const periodRules: [string, number, (b: BackupRef) => string][] = [
    ["daily", policy.keepDaily ?? 0, (b) => { const { y, m, d } = localDate(b.timestamp, timeZone); return `${y}-${pad(m)}-${pad(d)}`; }],
    ["weekly", policy.keepWeekly ?? 0, (b) => { const { y, m, d } = localDate(b.timestamp, timeZone); return isoWeekByOrdinal(y, m, d); }],
    ["monthly", policy.keepMonthly ?? 0, (b) => { const { y, m } = localDate(b.timestamp, timeZone); return `${y}-${pad(m)}`; }],
    ["yearly", policy.keepYearly === "forever" ? Infinity : (policy.keepYearly ?? 0), (b) => `${localDate(b.timestamp, timeZone).y}`],
  ];
  for (const [label, count, period] of periodRules) {
    const newestOf = new Map<string, BackupRef>();
    for (const b of sorted) if (!newestOf.has(period(b))) newestOf.set(period(b), b);
    [...newestOf.entries()]
      .sort(([, a], [, b]) => sorted.indexOf(a) - sorted.indexOf(b))
      .slice(0, count)
      .forEach(([p, b]) => add(b, `${label} ${p}`));
  }
  const verified = sorted.find((b) => b.verified === true);
  if (verified) add(verified, "newest verified");
  else if (sorted[0]) add(sorted[0], NONE);
  return {
    keep: sorted.filter((b) => reasons.get(b.name)!.length > 0).map((b) => [b.name, reasons.get(b.name)!] as const),
    remove: sorted.filter((b) => reasons.get(b.name)!.length === 0).map((b) => b.name),
    sorted,
  };
}

describe("generated cases (seeded)", () => {
  const ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Pacific/Chatham"];
  // Instants next to DST changes and year ends, where period bugs live.
  const HOT = ["2024-03-31T01:00:00Z", "2024-10-27T01:00:00Z", "2024-11-03T06:00:00Z", "2020-12-31T23:00:00Z", "2026-12-31T23:00:00Z"];
  const rand = prng(20240115);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const maybe = (max: number) => (rand() < 0.4 ? undefined : int(0, max));

  function generate() {
    const timeZone = pick(ZONES);
    const centre = rand() < 0.3 ? new Date(pick(HOT)).getTime() : Date.UTC(2019, 0, 1) + rand() * 8 * 365 * DAY;
    const spread = pick([6 * 3600 * 1000, 3 * DAY, 60 * DAY, 3 * 365 * DAY]);
    const n = int(0, 30);
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      // Some exact duplicates exercise the name tie-break.
      times.push(i > 0 && rand() < 0.1 ? pick(times) : Math.round(centre - rand() * spread));
    }
    const names = shuffle(times.map((_, i) => `n${pad(i, 3)}`), rand); // names unrelated to time
    const backups: BackupRef[] = times.map((t, i) => ({
      name: names[i],
      timestamp: new Date(t),
      verified: rand() < 0.5 ? undefined : rand() < 0.3,
    }));
    const policy: RetentionPolicy = {
      keepDays: rand() < 0.4 ? undefined : int(0, 60),
      keepMinimum: maybe(6),
      keepLast: maybe(4),
      keepDaily: maybe(8),
      keepWeekly: maybe(5),
      keepMonthly: maybe(5),
      keepYearly: rand() < 0.1 ? "forever" : maybe(3),
    };
    for (const key of Object.keys(policy) as (keyof RetentionPolicy)[]) if (policy[key] === undefined) delete policy[key];
    const now = new Date(centre + rand() * spread * 0.5);
    return { timeZone, backups, policy, now };
  }

  const cases = Array.from({ length: 600 }, generate);
  const accepted = cases.filter((c) => {
    try {
      validatePolicy(c.policy);
      return true;
    } catch {
      return false;
    }
  });

  test("the generator covers both outcomes and non-trivial sets", () => {
    expect(accepted.length).toBeGreaterThan(500);
    expect(cases.length - accepted.length).toBeGreaterThan(0);
    const removals = accepted.map((c) => planRetention(c.backups, c.policy, c.now, { timeZone: c.timeZone }).remove.length);
    expect(removals.filter((r) => r > 0).length).toBeGreaterThan(200);
  });

  test("policies that keep nothing are refused", () => {
    for (const c of cases.filter((x) => !accepted.includes(x))) {
      expect(() => planRetention(c.backups, c.policy, c.now, { timeZone: c.timeZone })).toThrow(/keeps nothing/);
    }
  });

  test("invariants hold and the decision equals the model", () => {
    for (const c of accepted) {
      const label = JSON.stringify({ policy: c.policy, timeZone: c.timeZone, now: c.now });
      const d = planRetention(c.backups, c.policy, c.now, { timeZone: c.timeZone });
      const kept = d.keep.map((k) => k.backup);
      const m = model(c.backups, c.policy, c.now, c.timeZone);

      // keep ∪ remove = input, disjoint, same objects
      expect(new Set([...kept, ...d.remove]).size, label).toBe(c.backups.length);
      expect(kept.length + d.remove.length, label).toBe(c.backups.length);
      for (const b of [...kept, ...d.remove]) expect(c.backups.includes(b), label).toBe(true);

      // keep-minimum always holds
      const minimum = m.sorted.slice(0, c.policy.keepMinimum ?? 0);
      for (const b of minimum) expect(kept.includes(b), label).toBe(true);

      // every kept backup has a reason; only the protected newest is kept without a policy rule
      for (const k of d.keep) expect(k.reasons.length, label).toBeGreaterThan(0);
      const protectedOnes = d.keep.filter((k) => k.reasons.every((r) => r === NONE || r === "newest verified"));
      expect(protectedOnes.length, label).toBeLessThanOrEqual(1);

      // exactly what the rules say: nothing kept that no rule keeps, nothing removed that one keeps
      expect(summary(d), label).toEqual({ keep: m.keep, remove: m.remove });

      // independent of input order
      const shuffled = shuffle(c.backups, rand);
      expect(summary(planRetention(shuffled, c.policy, c.now, { timeZone: c.timeZone })), label).toEqual(summary(d));
    }
  });
});
