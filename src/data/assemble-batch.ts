import { Rng } from '../util/rng';
import { AugmentConfig, augmentImage, isIdentityAugmentation } from './augment';
import type { Normalization } from './dataset';

/** What a batch is made from: shared by the trainer's thread and the pipeline's worker threads. */
export interface BatchSpec {
  pixels: Uint8Array;
  labels: Int32Array;
  channels: number;
  height: number;
  width: number;
  normalization: Normalization;
  augment: AugmentConfig;
  seed: number;
}

/**
 * Fills `input` (NCHW float32) and `labels` for the images at `indices`: normalized, and augmented when the spec
 * asks for it, with a generator derived from (seed, epoch, batch) so that the result does not depend on which
 * thread assembles the batch or when.
 */
export function assembleBatch(spec: BatchSpec, indices: ArrayLike<number>, epoch: number, batch: number, input: Float32Array, labels: BigInt64Array): void {
  const plane = spec.height * spec.width;
  const image = spec.channels * plane;
  const plain = isIdentityAugmentation(spec.augment);
  const rng = plain ? undefined : Rng.derive(spec.seed, `augment/${epoch}/${batch}`);
  const scratch = plain ? undefined : new Float32Array(image);
  const scale = spec.normalization.std.map((s) => 1 / (255 * s));
  const shift = spec.normalization.mean.map((m, c) => -m / spec.normalization.std[c]!);
  for (let b = 0; b < indices.length; b++) {
    const src = indices[b]! * image;
    labels[b] = BigInt(spec.labels[indices[b]!]!);
    if (rng !== undefined) {
      augmentImage(spec.pixels, src, spec.channels, spec.height, spec.width, spec.augment, rng, spec.normalization, input, b * image, scratch!);
      continue;
    }
    for (let c = 0; c < spec.channels; c++) {
      const k = scale[c]!;
      const o = shift[c]!;
      const from = src + c * plane;
      const to = b * image + c * plane;
      for (let i = 0; i < plane; i++) input[to + i] = spec.pixels[from + i]! * k + o;
    }
  }
}
