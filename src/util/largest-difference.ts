/** max |a[i] - b[i]| of two outputs: Infinity if their sizes differ, NaN if either holds a NaN. */
export function largestDifference(expected: Float32Array, got: Float32Array): number {
  if (got.length !== expected.length) return Infinity;
  let max = 0;
  for (let i = 0; i < got.length; i++) max = Math.max(max, Math.abs(got[i]! - expected[i]!));
  return expected.some(Number.isNaN) || got.some(Number.isNaN) ? NaN : max;
}
