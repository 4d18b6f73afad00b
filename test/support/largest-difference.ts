/** The largest |expected - got| over two arrays of the same length, and the largest |expected| (the scale to judge it by). */
export function largestDifference(expected: ArrayLike<number>, got: ArrayLike<number>): { difference: number; scale: number } {
  let scale = 0;
  let difference = 0;
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i]!));
    difference = Math.max(difference, Math.abs(expected[i]! - got[i]!));
  }
  return { difference, scale };
}
