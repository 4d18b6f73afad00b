import * as path from 'node:path';
import { AugmentConfig, describeAugmentation } from '../../data/augment';
import { ConfigValue, ModelDefinition, resolveConfig } from '../../model/definition';
import type { OptimizerConfig } from '../../optim/config';
import type { Schedule } from '../../optim/schedule';
import { MAX_THREADS, TrainOptions } from '../../train/options';
import { UserError } from '../errors';
import { flagNumber, nonNegativeInt, optionalPositiveInt, positiveInt, wholeNumberUpTo } from './flag-number';
import type { TrainFlags } from './train-flags';
import { MAX_CAPTION_TOKENS } from '../../portable/search-limits';
import { inputSideProblem, MAX_INPUT_SIDE } from '../../data/input-size';
import { isGeneratedData } from '../../data/kinds';

// The flags become training options in the order the command has always checked them, so a run with several bad
// flags reports the same one first: these before the data is loaded, the schedule after (it counts batches), and
// the remaining options last.

export interface OptimizationSettings {
  epochs: number;
  batchSize: number;
  learningRate: number;
  optimizer: OptimizerConfig;
  seed: number;
}

/** A run's ceiling on epochs: each is a pass over the data, and a run keeps one line of metrics per epoch. */
export const MAX_EPOCHS = 1_000_000;

export function optimizationFromFlags(f: TrainFlags): OptimizationSettings {
  const epochs = wholeNumberUpTo('epochs', f.epochs, 1, MAX_EPOCHS);
  const batchSize = flagNumber('batch-size', f.batchSize, positiveInt);
  const learningRate = flagNumber('lr', f.lr, (n) => n > 0);
  const weightDecay = flagNumber('weight-decay', f.weightDecay, (n) => n >= 0);
  const optimizer: OptimizerConfig = f.optimizer === 'sgd'
    ? { kind: 'sgd', momentum: flagNumber('momentum', f.momentum, (n) => n >= 0 && n < 1), nesterov: f.nesterov, weightDecay }
    : { kind: f.optimizer, weightDecay };
  const seed = flagNumber('seed', f.seed, nonNegativeInt);
  return { epochs, batchSize, learningRate, optimizer, seed };
}

export function chooseImageSize(f: TrainFlags, definition: ModelDefinition, config: Record<string, ConfigValue>): number {
  let modelImageSize: unknown;
  try {
    modelImageSize = resolveConfig(definition, f.variant, config).imageSize;
  } catch (err) {
    throw new UserError((err as Error).message);
  }
  // An imageSize the user set (--set) sizes the data; else folders use the model's own, shapes its 32 px.
  const size = optionalPositiveInt('image-size', f.imageSize, MAX_INPUT_SIDE)
    ?? (typeof config.imageSize === 'number' ? config.imageSize : !isGeneratedData(f.data) && typeof modelImageSize === 'number' ? modelImageSize : 32);
  // --set imageSize=N, or a graph or backbone declaring its input, is held to the same ceiling as --image-size.
  const refused = inputSideProblem(size);
  if (refused !== undefined) throw new UserError(`${refused} (--image-size, --set imageSize or the model's input)`);
  return size;
}

/** What to load of the data set, for classifiers and captioners alike. */
export interface DataRequest {
  trainSize: number | undefined;
  valSize: number | undefined;
  imageSize: number;
  seed: number;
  valFraction: number | undefined;
  cacheDir: string | undefined;
}

export function dataRequestFromFlags(f: TrainFlags, imageSize: number, seed: number): DataRequest {
  return {
    trainSize: optionalPositiveInt('train-size', f.trainSize), valSize: optionalPositiveInt('val-size', f.valSize), imageSize, seed,
    valFraction: f.valFraction === undefined ? undefined : flagNumber('val-fraction', f.valFraction, (n) => n > 0 && n < 1), cacheDir: f.cacheDir,
  };
}

/** Captioners: how the vocabulary is built and the captions cut. */
export interface CaptionRequest {
  minCount: number;
  maxLength: number | undefined;
}

export function captionRequestFromFlags(f: TrainFlags): CaptionRequest {
  return { minCount: optionalPositiveInt('min-count', f.minCount) ?? (isGeneratedData(f.data) ? 1 : 5), maxLength: optionalPositiveInt('max-length', f.maxLength, MAX_CAPTION_TOKENS) };
}

export function workersFromFlags(f: TrainFlags, augment: AugmentConfig): number {
  return f.workers === undefined ? (describeAugmentation(augment) === 'none' ? 0 : 1) : flagNumber('workers', f.workers, (n) => Number.isInteger(n) && n >= 0 && n <= 64);
}

/** The learning-rate schedule, whose steps are updates: `batches` per epoch. */
export function scheduleFromFlags(f: TrainFlags, epochs: number, batches: number): Schedule {
  return f.schedule === 'step'
    ? { kind: 'step', stepSize: flagNumber('step-size', f.stepSize, positiveInt) * batches, gamma: flagNumber('gamma', f.gamma, (n) => n > 0) }
    : f.schedule === 'cosine' ? { kind: 'cosine', totalSteps: epochs * batches } : { kind: 'constant' };
}

export function outputFolder(f: TrainFlags, modelName: string): string {
  // Named after the data set's folder (not its path: `--data ../data/photos` gives models/cnn-photos).
  const dataLabel = isGeneratedData(f.data) ? f.data : path.basename(path.resolve(f.data));
  return f.out ?? path.join('models', `${modelName}${f.variant ? `-${f.variant}` : ''}-${dataLabel}`);
}

/** The training options checked last, just before training starts. */
export type RemainingOptions = Pick<TrainOptions,
  'variant' | 'learningRates' | 'warmupSteps' | 'clipGradNorm' | 'labelSmoothing' | 'patience' | 'threads' | 'resume'
  | 'trainAccuracySample' | 'data' | 'dataLabel' | 'graphOptimizationLevel' | 'blockedConvolutions' | 'cacheFeatures'
  | 'cacheDir' | 'bleuImages'>;

export function remainingOptionsFromFlags(f: TrainFlags): RemainingOptions {
  return {
    variant: f.variant,
    learningRates: f.backboneLr === undefined ? undefined : { 'backbone.': flagNumber('backbone-lr', f.backboneLr, (n) => n > 0) },
    warmupSteps: flagNumber('warmup-steps', f.warmupSteps, nonNegativeInt),
    clipGradNorm: f.clipGradNorm === undefined ? undefined : flagNumber('clip-grad-norm', f.clipGradNorm, (n) => n > 0),
    labelSmoothing: flagNumber('label-smoothing', f.labelSmoothing, (n) => n >= 0 && n < 1),
    patience: f.patience === undefined ? undefined : flagNumber('patience', f.patience, positiveInt),
    threads: wholeNumberUpTo('threads', f.threads, 0, MAX_THREADS), resume: f.resume,
    trainAccuracySample: flagNumber('train-eval-size', f.trainEvalSize, nonNegativeInt),
    data: { source: isGeneratedData(f.data) ? f.data : path.resolve(f.data), valFraction: f.valFraction === undefined ? undefined : Number(f.valFraction) }, dataLabel: f.data,
    graphOptimizationLevel: f.graphOptimization, blockedConvolutions: f.blockedConv,
    cacheFeatures: f.featureCache, cacheDir: f.cacheDir,
    bleuImages: f.bleuImages === undefined ? undefined : flagNumber('bleu-images', f.bleuImages, nonNegativeInt),
  };
}
