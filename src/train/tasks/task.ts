import type * as ort from 'onnxruntime-node';
import type { CheckpointMetadata } from '../../checkpoint/checkpoint';
import type { Batch } from '../../data/batch-pipeline';
import type { ImageDataset, Normalization } from '../../data/dataset';
import type { Model } from '../../ir/model';
import type { EpochMetrics } from '../../metrics/epoch-metrics';
import type { Config } from '../../model/definition';
import type { TaskKind } from '../../model/task-kind';
import type { CachedFeatures } from '../frozen-features';
import type { DataOptions, ModelOptions } from '../options';

/** The trainer options a task reads. */
export type TaskOptions = DataOptions & ModelOptions;

/**
 * What the trainer asks of a task (classification.ts, captioning.ts; the table is index.ts): which config keys the
 * data sets and whether the model fits it, the rows an epoch trains on and their targets, the validation metrics,
 * what checkpoints and the summary record, and the artifacts beyond the common ones. The loss is the training
 * graph's (model/task-losses.ts).
 */
export interface Task {
  readonly kind: TaskKind;
  /**
   * The config keys that follow the data (a classifier's numClasses, a captioner's vocabulary size), besides the
   * image size; refuses data this task cannot train on.
   */
  dataConfig(o: TaskOptions): DataConfigKey[];
  /** Refuses a model whose inputs or logits do not fit the data (a meaningless accuracy, or a crash mid-run). */
  checkModel(o: TaskOptions, evalModel: Model): void;
  /** What an epoch shuffles and batches: the images, or a captioner's (image, caption) pairs. */
  rows(o: TaskOptions): TrainingRows;
  /** The validation split's metrics with the current parameters. */
  validate(o: TaskOptions, run: EvaluationRun, tensors: Map<string, ort.Tensor>): Promise<Validation>;
  /** Loss and top-1 measured each epoch on a fixed sample of the training images (classifiers), or none. */
  readonly trainSample?: TrainSample;
  /** Checkpoint metadata of the task: what export, eval and a resume read (the classes, or the vocabulary). */
  checkpointMetadata(o: TaskOptions): Record<string, string>;
  /** Refuses to resume a checkpoint trained on other targets (classes, vocabulary) than the data gives. */
  checkResume(file: string, meta: CheckpointMetadata, o: TaskOptions): void;
  /** The class names summary.json records (none for a task without classes). */
  summaryClasses(o: TaskOptions): string[];
  /** Writes a finished run's artifacts beyond the common ones (a captioner's generation graphs); returns their names. */
  extraArtifacts(o: TaskOptions, outDir: string, best: BestParameters): string[];
}

/** A config key the data sets: its value, and the data's property in words for the error when the user set another. */
interface DataConfigKey {
  key: string;
  value: number;
  what: string;
}

/** The rows of an epoch: how many, the image of each, and the feeds of a batch's targets. */
export interface TrainingRows {
  readonly count: number;
  /** The images of rows `order`, in order (what the batch pipeline assembles). */
  images(order: readonly number[]): readonly number[];
  /** The target inputs of a batch: its rows, and the assembled batch (whose `labels` are its images'). */
  targets(batch: Batch, rows: readonly number[]): Record<string, ort.Tensor>;
}

/** What an evaluation runs with: the evaluation session, the model's config and normalization, cached features. */
export interface EvaluationRun {
  sessions: {
    readonly evaluation: ort.InferenceSession;
    /** The parameters the evaluation graph reads. */
    readonly evalParameters: string[];
    /** The state with every tensor on the host. */
    onHost(tensors: Map<string, ort.Tensor>): Promise<Map<string, ort.Tensor>>;
  };
  config: Config;
  normalization: Normalization;
  /** The evaluated images as a frozen backbone's cached features. */
  features: CachedFeatures | undefined;
}

/** An epoch's validation: loss, top-1 and top-5, a confusion matrix, and the task's own EpochMetrics fields. */
export interface Validation {
  loss: number;
  top1: number;
  top5: number;
  /** confusion[true][predicted] counts (classifiers). */
  confusion: number[][] | undefined;
  /** Fields of EpochMetrics only this task reports (a captioner's valBleu), written after the common ones. */
  extra: Partial<EpochMetrics>;
}

/** The training-split sample evaluated each epoch. */
interface TrainSample {
  /** Images in the sample. */
  size(o: TaskOptions): number;
  evaluate(run: EvaluationRun, tensors: Map<string, ort.Tensor>, data: ImageDataset, classes: number): Promise<{ loss: number; top1: number }>;
}

/** The best checkpoint's parameters, as a finished run's artifacts are written from. */
interface BestParameters {
  tensors: Map<string, ort.Tensor>;
  config: Config;
}
