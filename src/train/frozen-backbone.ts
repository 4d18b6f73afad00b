import type * as ort from 'onnxruntime-node';
import { describeAugmentation, NO_AUGMENTATION } from '../data/augment';
import type { Normalization } from '../data/dataset';
import type { Model } from '../ir/model';
import type { TrainingGraph } from '../model/training-graph';
import { CachedFeatures, computeFeatures, featureModel, findFrozenSplit, FrozenSplit, withFeaturesInput } from './frozen-features';
import type { DataOptions, DeviceOptions, EventOptions, RunOptions } from './options';

/** The trainer options this part reads. */
type Options = DataOptions & DeviceOptions & EventOptions & RunOptions;

/** A run's frozen first part of the model: where the cut is, its cached features, and the graphs of the rest. */
export interface FrozenBackbone {
  split: FrozenSplit;
  /** Floats of features per image. */
  perImage: number;
  /** The features of the training and validation images, in the feature cache. */
  train: CachedFeatures;
  val: CachedFeatures;
  /** The training and evaluation graphs after the cut, fed `features` instead of `input`. */
  trainModel: Model;
  evalModel: Model;
}

/**
 * The cut of a model whose first part trains nothing (a frozen backbone), with that part's features for the
 * training and validation images; undefined when there is no such part, or when augmentation changes the images
 * every epoch (features then cannot be cached).
 */
export async function frozenFeaturesFor(
  o: Options, graph: TrainingGraph, evalModel: Model, normalization: Normalization, sessionOptions: ort.InferenceSession.SessionOptions,
): Promise<FrozenBackbone | undefined> {
  if (o.cacheFeatures === false) return undefined;
  const frozenInputs = new Set(graph.parameters.filter((p) => !graph.trainable.includes(p.name)).map((p) => p.name));
  // No frozen parameters, no backbone: the part before the first trained layer is then only a reshape of the image
  // (an MLP's Flatten), and "features" would be the pixels again, cached on disk a second time.
  if (frozenInputs.size === 0) return undefined;
  const split = findFrozenSplit(graph.model, frozenInputs);
  const evalSplit = split && findFrozenSplit(evalModel, frozenInputs);
  if (split === undefined || evalSplit === undefined || split.perImage.join() !== evalSplit.perImage.join()) return undefined;
  if (describeAugmentation(o.augment ?? NO_AUGMENTATION) !== 'none') {
    o.onNotice?.('note: augmentation is on, so the frozen backbone runs on every batch (its features cannot be cached)');
    return undefined;
  }
  const extractor = featureModel(evalModel, evalSplit, graph.values);
  const [train, val] = await computeFeatures(extractor, evalSplit, [o.train, o.val], {
    normalization, cacheDir: o.cacheDir, onProgress: o.onFeatures, onNotice: o.onNotice, shouldStop: o.shouldStop,
    sessionOptions: featureSessionOptions(o, sessionOptions),
  });
  return {
    split, perImage: split.perImage.reduce((a, b) => a * b, 1), train: train!, val: val!,
    trainModel: withFeaturesInput(graph.model, split), evalModel: withFeaturesInput(evalModel, evalSplit),
  };
}

/**
 * The feature pass's session: on the CPU (it runs once per image), at optimization level `all` unless the run asks
 * for another. Its weights are constants, so `all` may prepack them and move the convolutions to ORT's
 * channel-blocked layout: twice the images per second of `extended` for MobileNetV2 at 224 px (bench/transfer.ts).
 */
export function featureSessionOptions(o: Pick<DeviceOptions, 'graphOptimizationLevel' | 'executionProviders'>, sessionOptions: ort.InferenceSession.SessionOptions): ort.InferenceSession.SessionOptions {
  return {
    ...sessionOptions,
    graphOptimizationLevel: o.graphOptimizationLevel ?? 'all',
    executionProviders: (o.executionProviders ?? ['cpu']).filter((p) => p !== 'webgpu'),
  };
}
