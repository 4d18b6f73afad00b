import type * as ort from 'onnxruntime-node';
import type { AugmentConfig } from '../data/augment';
import type { CaptionData } from '../data/captions/load-captions';
import type { ImageDataset, Normalization } from '../data/dataset';
import type { EpochMetrics } from '../metrics/epoch-metrics';
import type { ConfigValue, ModelDefinition } from '../model/definition';
import type { OptimizerConfig } from '../optim/config';
import type { Schedule } from '../optim/schedule';

/**
 * The trainer's options, as types only (no code), grouped by concern: each part of the trainer names the groups it
 * reads, and a caller passes one flat object with all of them.
 */

/** What is trained: the model definition and its configuration, and where it came from. */
export interface ModelOptions {
  definition: ModelDefinition;
  variant?: string;
  config?: Record<string, ConfigValue>;
  /** The graph file the definition came from, recorded in checkpoints so `deepvision eval` can rebuild the model. */
  graphFile?: string;
  /** Continue from this checkpoint (a `last.safetensors` of an earlier run). */
  resume?: string;
}

/** What it is trained on: the splits, caption data, augmentation, and how batches and features are prepared. */
export interface DataOptions {
  train: ImageDataset;
  val: ImageDataset;
  /**
   * For a captioner (a definition with task 'captioning'): the caption data; `train` and `val` are then its splits'
   * images. Each training row is one (image, caption) pair; validation reports token accuracy and greedy BLEU.
   */
  captions?: CaptionData;
  /** Augmentation of the training split (default none); validation images are never augmented. */
  augment?: AugmentConfig;
  /** What --data named (recorded in checkpoints, so `deepvision eval` finds the same data and split). */
  data?: { source: string; valFraction?: number };
  /** How summary.json names the data (default: `data.source`, else the training set's name); the CLI passes --data as typed. */
  dataLabel?: string;
  /** Worker threads that assemble and augment batches ahead of training (default 0: on the trainer's thread). */
  workers?: number;
  /** Training images (a fixed seeded sample) on which train accuracy is measured each epoch, in eval mode (default 2,000). */
  trainAccuracySample?: number;
  /** Validation images captioned for BLEU each epoch (default 500). */
  bleuImages?: number;
  /**
   * Whether the features of a frozen first part of the model (a pretrained backbone) are computed once per image and
   * cached on disk (default true; not with augmentation).
   */
  cacheFeatures?: boolean;
  /** Folder of the feature cache (default: the image cache's). */
  cacheDir?: string;
}

/** How it is optimized: epochs, batches, optimizer, learning rates and their schedule, when to stop. */
export interface OptimizationOptions {
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
  /** Stop after this many updates (tests). */
  maxSteps?: number;
}

/**
 * The most threads a run's sessions and native kernels take: far beyond any core count these machines have, and
 * the native addon's own ceiling. onnxruntime would start as many as asked (100,000 kept a one-epoch run busy for
 * minutes before its first batch).
 */
export const MAX_THREADS = 256;

/** Where it runs: threads, execution providers, graph optimization. */
export interface DeviceOptions {
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
  /**
   * On the CPU provider, update the parameters with the fused native optimizer where it is built (default true;
   * otherwise, or with false, with the optimizer graph, as on WebGPU and in the page). See src/native/.
   */
  nativeFastPath?: boolean;
}

/** The run: its folder, what is written before its summary, and the request to stop. */
export interface RunOptions {
  outDir: string;
  /**
   * Called when training has ended, before summary.json is written: files that belong to a finished run (the CLI's
   * artifacts) are written here, so that a run with a summary has them all (the sweep counts such a run as done).
   */
  beforeSummary?: (result: TrainResult) => void | Promise<void>;
  /** Checked between batches: when it returns true, a checkpoint is written and training stops (Ctrl-C). */
  shouldStop?: () => boolean;
}

/** What the caller hears while it runs (the CLI draws its progress from these). */
export interface EventOptions {
  /**
   * Receives progress events after each update (the CLI draws a bar from them); `loss` is the epoch's mean so far,
   * NaN before the first loss is read back from a GPU.
   */
  onBatch?: (e: { epoch: number; batch: number; batches: number; loss: number; imagesPerSecond: number }) => void;
  onEpoch?: (m: EpochMetrics) => void;
  /** Progress of computing backbone features (per data set). */
  onFeatures?: (done: number, total: number, what: string) => void;
  /** One-line notes for the user (the CLI prints them). */
  onNotice?: (message: string) => void;
}

export type TrainOptions = ModelOptions & DataOptions & OptimizationOptions & DeviceOptions & RunOptions & EventOptions;

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
  /** The files a finished run wrote beside its checkpoints (training, eval, optimizer and inference graphs, ...). */
  artifacts: string[];
}
