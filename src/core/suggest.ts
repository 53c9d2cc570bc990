// "did you mean --keep-days?": the nearest of the valid names to one a user mistyped.

/** Edit distance with adjacent transpositions (optimal string alignment). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest candidate, ignoring case, `-` and `_`, when it is close enough to be a plausible typo. */
export function nearest(word: string, candidates: Iterable<string>): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, "");
  const w = norm(word);
  let best: { name: string; distance: number } | undefined;
  for (const c of candidates) {
    const n = norm(c);
    // A prefix ("--keep" for "--keep-days") counts as close.
    const distance = n.startsWith(w) && w.length >= 3 ? 1 : editDistance(w, n);
    if (!best || distance < best.distance) best = { name: c, distance };
  }
  return best && best.distance <= Math.max(2, Math.floor(w.length / 3)) ? best.name : undefined;
}

/** "; did you mean X?", or "". */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const n = nearest(word, candidates);
  return n ? `; did you mean ${n}?` : "";
}
