import type * as ort from 'onnxruntime-node';
import type { AugmentConfig } from '../data/augment';
import type { ImageDataset, Normalization } from '../data/dataset';
import type { CaptionData } from '../data/captions/load-captions';
import type { ConfigValue, ModelDefinition } from '../model/definition';
import type { OptimizerConfig } from '../optim/config';
import type { Schedule } from '../optim/schedule';
import { EpochEvaluation } from './evaluation';
import { finishRun } from './finish-run';
import { frozenFeaturesFor } from './frozen-backbone';
import { checkImportedModels } from './imported-models';
import { modelForData } from './model-for-data';
import { RunFolder } from './run-folder';
import { trainingBatches } from './training-batches';
import { EpochTrainer, learningRateAtStep } from './training-epoch';
import { sessionOptionsFor, TrainingSessions } from './training-sessions';
import { TrainingState } from './training-state';

export { evaluate } from './evaluation';
export { TrainingError } from './training-error';

export interface TrainOptions {
  definition: ModelDefinition;
  variant?: string;
  config?: Record<string, ConfigValue>;
  train: ImageDataset;
  val: ImageDataset;
  epochs: number;
  batchSize: number;
  optimizer: OptimizerConfig;
  learningRate: number;
  schedule?: Schedule;
  warmupSteps?: number;
  clipGradNorm?: number;
  labelSmoothing?: number;
  seed?: number;
  /**
   * Learning rates of parameter groups, by name prefix (`{ 'backbone.': 1e-4 }`): those parameters train at this
   * rate instead of `learningRate`, under the same schedule. The longest matching prefix wins.
   */
  learningRates?: Record<string, number>;
  /** Stop when the validation loss has not improved for this many epochs. */
  patience?: number;
  outDir: string;
  threads?: number;
  /** Execution providers, in order of preference (default: CPU). */
  executionProviders?: string[];
  /** ORT graph optimization level (default 'extended': level 'all' adds an NCHWc pass that slows training graphs). */
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * On the CPU provider, run convolutions with onnxruntime's channel-blocked kernels where this machine has them
   * (default true; the training and evaluation graphs are lowered in memory, the artifacts on disk stay standard ONNX).
   */
  blockedConvolutions?: boolean;
  /** Continue from this checkpoint (a `last.safetensors` of an earlier run). */
  resume?: string;
  /** The graph file the definition came from, recorded in checkpoints so `deepvision eval` can rebuild the model. */
  graphFile?: string;
  /** Stop after this many updates (tests). */
  maxSteps?: number;
  /** Augmentation of the training split (default none); validation images are never augmented. */
  augment?: AugmentConfig;
  /** What --data named (recorded in checkpoints, so `deepvision eval` finds the same data and split). */
  data?: { source: string; valFraction?: number };
  /** How summary.json names the data (default: `data.source`, else the training set's name); the CLI passes --data as typed. */
  dataLabel?: string;
  /**
   * Called when training has ended, before summary.json is written: files that belong to a finished run (the CLI's
   * artifacts) are written here, so that a run with a summary has them all (the sweep counts such a run as done).
   */
  beforeSummary?: (result: TrainResult) => void | Promise<void>;
  /** Worker threads that assemble and augment batches ahead of training (default 0: on the trainer's thread). */
  workers?: number;
  /** Training images (a fixed seeded sample) on which train accuracy is measured each epoch, in eval mode (default 2,000). */
  trainAccuracySample?: number;
  /**
   * Receives progress events after each update (the CLI draws a bar from them); `loss` is the epoch's mean so far,
   * NaN before the first loss is read back from a GPU.
   */
  onBatch?: (e: { epoch: number; batch: number; batches: number; loss: number; imagesPerSecond: number }) => void;
  onEpoch?: (m: EpochMetrics) => void;
  /**
   * Whether the features of a frozen first part of the model (a pretrained backbone) are computed once per image and
   * cached on disk (default true; not with augmentation).
   */
  cacheFeatures?: boolean;
  /** Folder of the feature cache (default: the image cache's). */
  cacheDir?: string;
  /** Progress of computing backbone features (per data set). */
  onFeatures?: (done: number, total: number, what: string) => void;
  /**
   * For a captioner (a definition with task 'captioning'): the caption data; `train` and `val` are then its splits'
   * images. Each training row is one (image, caption) pair; validation reports token accuracy and greedy BLEU.
   */
  captions?: CaptionData;
  /** Validation images captioned for BLEU each epoch (default 500). */
  bleuImages?: number;
  /** One-line notes for the user (the CLI prints them). */
  onNotice?: (message: string) => void;
  /** Checked between batches: when it returns true, a checkpoint is written and training stops (Ctrl-C). */
  shouldStop?: () => boolean;
}

export interface EpochMetrics {
  epoch: number;
  step: number;
  learningRate: number;
  trainLoss: number;
  valLoss: number;
  valTop1: number;
  valTop5: number;
  seconds: number;
  imagesPerSecond: number;
  /** Captioners: corpus BLEU-1..4 of greedy captions of validation images. */
  valBleu?: number[];
  /** Eval-mode loss and top-1 on a fixed sample of the training split (without augmentation). */
  trainEvalLoss?: number;
  trainTop1?: number;
}

export type StopReason = 'completed' | 'early-stopping' | 'interrupted' | 'max-steps';

export interface TrainResult {
  history: EpochMetrics[];
  best: EpochMetrics | undefined;
  stopped: StopReason;
  lastCheckpoint: string;
  bestCheckpoint: string;
  normalization: Normalization;
  /** Validation confusion matrix of the best epoch: confusion[true][predicted] counts. */
  confusion: number[][] | undefined;
  /** Final parameters and state by name. */
  tensors: Map<string, ort.Tensor>;
}

/**
 * Trains a classifier with the generated training graph and optimizer graph in onnxruntime-node: seeded
 * shuffling, validation every epoch (loss, top-1, top-5), best and last checkpoints, early stopping, exact resume,
 * a NaN guard and a clean stop on request. Metrics are appended to `<outDir>/metrics.jsonl`; when the run ends
 * (finished, stopped early or on request) `<outDir>/summary.json` records it (see RunSummary).
 */
export async function train(o: TrainOptions): Promise<TrainResult> {
  const seed = o.seed ?? 0;
  const model = modelForData(o, seed);
  await checkImportedModels(model.graph.importedModels);
  const sessionOptions = sessionOptionsFor(o);
  // A frozen backbone runs once per image: training and evaluation then run the rest on its cached features.
  const frozen = await frozenFeaturesFor(o, model.graph, model.evalModel, model.normalization, sessionOptions);
  const sessions = await TrainingSessions.create(o, model, frozen, sessionOptions);
  const state = TrainingState.start(o, model, seed);
  const folder = RunFolder.open(o, { model, seed, state, sessions });
  const batches = trainingBatches(o, model.normalization, seed, frozen);
  const epochs = new EpochTrainer(o, { graph: model.graph, seed, sessions, state, folder, batches });
  const evaluation = new EpochEvaluation(o, { model, seed, sessions, frozen });

  let stopped: StopReason = 'completed';
  for (let epoch = state.position.epoch; epoch < o.epochs; epoch++) {
    const trained = await epochs.train(epoch);
    if (trained.stopped !== undefined) {
      stopped = trained.stopped;
      break;
    }
    const val = await evaluation.validation(state.tensors);
    const onTrain = await evaluation.onTrainSample(state.tensors);
    const metrics: EpochMetrics = {
      epoch: epoch + 1, step: state.position.step, learningRate: learningRateAtStep(o, Math.max(1, state.position.step)),
      trainLoss: trained.trainLoss, valLoss: val.loss, valTop1: val.top1, valTop5: val.top5, seconds: trained.seconds, imagesPerSecond: trained.images / trained.seconds,
      ...(onTrain ? { trainEvalLoss: onTrain.loss, trainTop1: onTrain.top1 } : {}),
      ...('bleu' in val ? { valBleu: val.bleu } : {}),
    };
    const improved = state.endEpoch(metrics, 'confusion' in val ? val.confusion : undefined, trained.nextEpochRng);
    if (improved) await folder.saveBest();
    await folder.saveLast();
    // After the checkpoint: a kill before this line leaves a log one epoch short, which the resume rewrites.
    folder.writeMetrics();
    o.onEpoch?.(metrics);
    if (o.patience !== undefined && state.sinceBest >= o.patience && epoch + 1 < o.epochs) {
      stopped = 'early-stopping';
      break;
    }
  }
  return finishRun(o, { sessions, batches, state, folder, stopped, normalization: model.normalization });
}
