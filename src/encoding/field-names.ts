/**
 * Makes result column names unique without losing data (CONTRACT.md "Values in results").
 *
 * Scheme: the first occurrence of a name keeps it; each later duplicate of `a` gets the lowest
 * `a_k` (k = 2, 3, ...) that is neither a name some column really has nor a name already handed out.
 * Real names win because every column's own name is reserved before any suffix is chosen:
 * `a, a, a_2` gives `a, a_3, a_2`, and `a_2, a, a` gives `a_2, a, a_3`.
 * The empty name is a name like any other: `"", ""` gives `"", "_2"`.
 */
export function uniqueFieldNames(names: readonly string[]): string[] {
  const taken = new Set(names);
  if (taken.size === names.length) return names.slice();

  const seen = new Set<string>();
  // Next suffix to try per base name, so n copies of one name cost O(n), not O(n²).
  const nextSuffix = new Map<string, number>();
  const out: string[] = [];
  for (const name of names) {
    if (!seen.has(name)) {
      seen.add(name);
      out.push(name);
      continue;
    }
    let k = nextSuffix.get(name) ?? 2;
    let candidate = `${name}_${k}`;
    while (taken.has(candidate)) {
      k++;
      candidate = `${name}_${k}`;
    }
    nextSuffix.set(name, k + 1);
    taken.add(candidate);
    out.push(candidate);
  }
  return out;
}
