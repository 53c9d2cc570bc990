import { describe, expect, test } from "bun:test";
import { leadingListItems, leadingName, splitStatements, topLevelWords } from "../../../src/core/duckdb/sqltext.ts";

describe("splitStatements", () => {
  test.each([
    ["CREATE TABLE a(x INT);\nCREATE VIEW v AS SELECT 1;", ["CREATE TABLE a(x INT)", "CREATE VIEW v AS SELECT 1"]],
    ["SELECT ';' AS \"a;b\";;;SELECT 2", ["SELECT ';' AS \"a;b\"", "SELECT 2"]],
    ["CREATE MACRO m(x := 'it''s; fine') AS x;", ["CREATE MACRO m(x := 'it''s; fine') AS x"]],
    ["-- header; not a statement\nSELECT 1; /* a ; b */ SELECT 2", ["-- header; not a statement\nSELECT 1", "/* a ; b */ SELECT 2"]],
    ["  \n", []],
  ])("%p", (sql, expected) => {
    expect(splitStatements(sql)).toEqual(expected);
  });
});

describe("leadingListItems", () => {
  test("takes the column definitions and stops before what follows, however malformed", () => {
    const sql = `CREATE TABLE "Odd (Schema)"."t,1"(id INTEGER DEFAULT(nextval('s')) PRIMARY KEY, "a, b" STRUCT(x INTEGER, "y)" VARCHAR), c VARCHAR DEFAULT('(,'), FOREIGN KEY (id) REFERENCES Odd (Schema).t"(id));`;
    expect(leadingListItems(sql, 3)).toEqual([
      "id INTEGER DEFAULT(nextval('s')) PRIMARY KEY",
      `"a, b" STRUCT(x INTEGER, "y)" VARCHAR)`,
      "c VARCHAR DEFAULT('(,')",
    ]);
  });

  test("the last column closes the list", () => {
    expect(leadingListItems("CREATE TABLE t(a INTEGER, b DECIMAL(18,3));", 2)).toEqual(["a INTEGER", "b DECIMAL(18,3)"]);
  });

  test("fewer items than expected is an error", () => {
    expect(() => leadingListItems("CREATE TABLE t(a INTEGER);", 2)).toThrow("expected 2 items");
  });
});

describe("topLevelWords", () => {
  test.each([
    [`g INTEGER GENERATED ALWAYS AS((id * 2))`, "g INTEGER GENERATED ALWAYS AS"],
    [`"name" VARCHAR NOT NULL UNIQUE`, "VARCHAR NOT NULL UNIQUE"],
    [`note VARCHAR DEFAULT('PRIMARY KEY')`, "note VARCHAR DEFAULT"],
    [`"UNIQUE" STRUCT("PRIMARY KEY" INTEGER)`, "STRUCT"],
  ])("%p", (def, words) => {
    expect(topLevelWords(def)).toBe(words);
  });
});

describe("leadingName", () => {
  test.each([
    [`add2 (a, b := 2) AS a + b`, ["add2"]],
    [`s2."odd ""m.x""" (x) AS (x)`, ["s2", 'odd "m.x"']],
    [`"Sales Ünïcode".top_n(n) AS TABLE SELECT 1`, ["Sales Ünïcode", "top_n"]],
  ])("%p", (sql, parts) => {
    expect(leadingName(sql)).toEqual(parts);
  });
});
