import type { Dim } from '../ir/shape';

/**
 * The values per image a new head reads when a backbone is cut at a value of `shape` (its shape for one image,
 * batch first), or undefined when the cut is not usable: transfer's linear head needs a fixed number of features,
 * so every dimension after the batch must be a known size. `deepvision inspect` recommends only cuts this accepts,
 * and transfer (OnnxModule.featuresPerImage) refuses the rest, so the two cannot disagree.
 */
export function cutFeatures(shape: readonly Dim[]): number | undefined {
  if (shape.length < 2) return undefined;
  let n = 1;
  for (const d of shape.slice(1)) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 1) return undefined;
    n *= d;
  }
  return Number.isSafeInteger(n) ? n : undefined;
}
