import { Rng } from '../util/rng';
import { AugmentConfig, augmentImage, eraseRandomBox, isIdentityAugmentation } from './augment';
import type { Normalization } from './dataset';
import type { PixelSource } from './pixel-source';
import type { PixelReader } from './pixel-store';

/** What a batch is made from: shared by the trainer's thread and the pipeline's worker threads. */
export interface BatchSpec {
  /** Where the images are: in (shared) memory, or record files each thread opens on its own. */
  source: PixelSource;
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
export function assembleBatch(
  spec: BatchSpec, reader: PixelReader, indices: ArrayLike<number>, epoch: number, batch: number, input: Float32Array, labels: BigInt64Array,
): void {
  const plane = spec.height * spec.width;
  const image = spec.channels * plane;
  // In memory, images are read where they are; from records, the batch's bytes are gathered first.
  const inMemory = spec.source.kind === 'memory' ? spec.source.pixels : undefined;
  const pixels = inMemory ?? new Uint8Array(indices.length * image);
  if (inMemory === undefined) reader.gather(indices, pixels);
  const offset = (b: number) => (inMemory !== undefined ? indices[b]! : b) * image;
  const plain = isIdentityAugmentation(spec.augment);
  const rng = plain ? undefined : Rng.derive(spec.seed, `augment/${epoch}/${batch}`);
  const eraseRng = spec.augment.erase > 0 ? Rng.derive(spec.seed, `erase/${epoch}/${batch}`) : undefined;
  const scratch = plain ? undefined : new Float32Array(image);
  const scale = spec.normalization.std.map((s) => 1 / (255 * s));
  const shift = spec.normalization.mean.map((m, c) => -m / spec.normalization.std[c]!);
  for (let b = 0; b < indices.length; b++) {
    const src = offset(b);
    labels[b] = BigInt(spec.labels[indices[b]!]!);
    if (rng !== undefined) {
      augmentImage(pixels, src, spec.channels, spec.height, spec.width, spec.augment, rng, spec.normalization, input, b * image, scratch!);
      if (eraseRng !== undefined) eraseRandomBox(input, b * image, spec.channels, spec.height, spec.width, spec.augment, eraseRng);
      continue;
    }
    for (let c = 0; c < spec.channels; c++) {
      const k = scale[c]!;
      const o = shift[c]!;
      const from = src + c * plane;
      const to = b * image + c * plane;
      for (let i = 0; i < plane; i++) input[to + i] = pixels[from + i]! * k + o;
    }
  }
}
