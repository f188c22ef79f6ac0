// "Did you mean": the Levenshtein distance between two words, and the nearest of a list of candidates.

/** The number of single-character insertions, deletions and substitutions that turn a into b. */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

/** The candidate nearest to `word` by editDistance (the first of equals) and its distance; undefined for none. */
export function nearest(word: string, candidates: Iterable<string>): { candidate: string; distance: number } | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best === undefined ? undefined : { candidate: best, distance: bestD };
}
