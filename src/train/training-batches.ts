import { NO_AUGMENTATION } from '../data/augment';
import { Batch, BatchPipeline } from '../data/batch-pipeline';
import { Normalization, pixelSourceOf } from '../data/dataset';
import type { FrozenBackbone } from './frozen-backbone';
import { featureBatches } from './frozen-features';
import type { DataOptions, OptimizationOptions } from './options';

/** The trainer options this part reads. */
type Options = DataOptions & OptimizationOptions;

/** The training batches of a run, and the data input of the training graph they feed. */
export interface TrainingBatches {
  /** The data input of the training and evaluation graphs: the images, or the backbone's cached features. */
  readonly inputName: 'input' | 'features';
  /** Its dimensions per image. */
  readonly inputDims: readonly number[];
  /** The batches of epoch `epoch` (0-based) over the images in `order`, from batch `first` on. */
  epoch(order: readonly number[], epoch: number, first: number): AsyncGenerator<Batch>;
  close(): Promise<void>;
}

/**
 * Batches of the training images, assembled and augmented by a BatchPipeline; with a frozen backbone, batches of
 * its cached features.
 */
export function trainingBatches(o: Options, normalization: Normalization, seed: number, frozen: FrozenBackbone | undefined): TrainingBatches {
  if (frozen !== undefined) {
    return {
      inputName: 'features', inputDims: frozen.split.perImage,
      epoch: (order, _epoch, first) => featureBatches(frozen.train, o.train.labels, order, o.batchSize, first),
      close: () => Promise.resolve(),
    };
  }
  const pipeline = new BatchPipeline({
    source: pixelSourceOf(o.train), labels: o.train.labels, channels: o.train.channels, height: o.train.height, width: o.train.width,
    normalization, augment: o.augment ?? NO_AUGMENTATION, seed,
  }, o.workers ?? 0);
  return {
    inputName: 'input', inputDims: [o.train.channels, o.train.height, o.train.width],
    epoch: (order, epoch, first) => pipeline.epoch(order, o.batchSize, epoch, first),
    close: () => pipeline.close(),
  };
}
