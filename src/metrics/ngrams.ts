/**
 * The n-grams of order `n` of a token list and how often each occurs. Keys are the JSON of the n-gram, so that no
 * token, whatever characters it holds, can make two different n-grams share a key.
 */
export function ngramCounts(tokens: readonly string[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = JSON.stringify(tokens.slice(i, i + n));
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}
