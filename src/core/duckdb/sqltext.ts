// Lexing of SQL that DuckDB itself printed (catalog `sql` columns, EXPORT DATABASE's schema.sql):
// enough to split statements and a CREATE TABLE's column list while honouring quotes and
// parentheses. Pure functions.

/** Index just past the quoted token that starts at `i` ('…' or "…", doubled quotes escape). */
function skipQuoted(sql: string, i: number): number {
  const q = sql[i]!;
  for (let j = i + 1; j < sql.length; j++) {
    if (sql[j] !== q) continue;
    if (sql[j + 1] === q) j++;
    else return j + 1;
  }
  return sql.length;
}

/** Index just past a comment starting at `i`, or `i` when none starts there. */
function skipComment(sql: string, i: number): number {
  if (sql.startsWith("--", i)) {
    const end = sql.indexOf("\n", i);
    return end === -1 ? sql.length : end + 1;
  }
  if (sql.startsWith("/*", i)) {
    const end = sql.indexOf("*/", i + 2);
    return end === -1 ? sql.length : end + 2;
  }
  return i;
}

/** Splits a script into statements at semicolons outside quotes and comments; empty ones dropped. */
export function splitStatements(sql: string): string[] {
  const out: string[] = [];
  let start = 0;
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    if (c === "'" || c === '"') i = skipQuoted(sql, i);
    else if (skipComment(sql, i) !== i) i = skipComment(sql, i);
    else if (c === ";") {
      out.push(sql.slice(start, i));
      start = ++i;
    } else i++;
  }
  out.push(sql.slice(start));
  return out.map((s) => s.trim()).filter((s) => s.length > 0);
}

/**
 * The first `count` comma-separated items of the first parenthesised list in `sql` (a CREATE
 * TABLE's column definitions). Only those items are lexed: what follows them is never looked at.
 */
export function leadingListItems(sql: string, count: number): string[] {
  let i = 0;
  while (i < sql.length && sql[i] !== "(") i = sql[i] === '"' || sql[i] === "'" ? skipQuoted(sql, i) : i + 1;
  const items: string[] = [];
  let start = ++i;
  let depth = 0;
  while (i < sql.length && items.length < count) {
    const c = sql[i]!;
    if (c === "'" || c === '"') {
      i = skipQuoted(sql, i);
      continue;
    }
    if (c === "(") depth++;
    else if (c === ")" && depth > 0) depth--;
    else if ((c === "," || c === ")") && depth === 0) {
      items.push(sql.slice(start, i).trim());
      start = i + 1;
    }
    i++;
  }
  if (items.length < count) throw new Error(`expected ${count} items in the list of: ${sql.slice(0, 200)}`);
  return items;
}

/** `sql` with every quoted token and parenthesised group removed: the words at the top level. */
export function topLevelWords(sql: string): string {
  let out = "";
  let depth = 0;
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    if (c === "'" || c === '"') {
      i = skipQuoted(sql, i);
      out += " ";
      continue;
    }
    if (c === "(") depth++;
    else if (c === ")") depth = Math.max(0, depth - 1);
    else if (depth === 0) out += c;
    i++;
  }
  return out.replace(/\s+/g, " ").trim();
}

/** The dotted name at the start of `sql` (`s."odd ""m""" (x)` → ["s", 'odd "m"']); quotes undone. */
export function leadingName(sql: string): string[] {
  const parts: string[] = [];
  let i = 0;
  for (;;) {
    if (sql[i] === '"') {
      const end = skipQuoted(sql, i);
      parts.push(sql.slice(i + 1, end - 1).replaceAll('""', '"'));
      i = end;
    } else {
      const m = /^[^\s.("]+/.exec(sql.slice(i));
      if (!m) break;
      parts.push(m[0]);
      i += m[0].length;
    }
    if (sql[i] !== ".") break;
    i++;
  }
  return parts;
}
