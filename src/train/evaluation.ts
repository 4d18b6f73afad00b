import type * as ort from 'onnxruntime-node';
import { ImageDataset, subsetOf } from '../data/dataset';
import { Rng } from '../util/rng';
import type { FrozenBackbone } from './frozen-backbone';
import { CachedFeatures, featureSubset } from './frozen-features';
import type { ModelForData } from './model-for-data';
import type { DataOptions, ModelOptions } from './options';
import type { EvaluationRun, Validation } from './tasks/task';
import type { TrainingSessions } from './training-sessions';

/** The trainer options this part reads. */
type Options = DataOptions & ModelOptions;

/** What an epoch is evaluated with. */
export interface EvaluationParts {
  model: ModelForData;
  seed: number;
  sessions: TrainingSessions;
  frozen: FrozenBackbone | undefined;
}

/**
 * The evaluations after each epoch, in eval mode, as the model's task measures them: the validation split (a
 * classifier's loss, top-1, top-5 and confusion; a captioner's token metrics and BLEU), and for a task that has
 * one, loss and top-1 on a fixed seeded sample of the training split.
 */
export class EpochEvaluation {
  private readonly valRun: EvaluationRun;
  private readonly trainSample: { data: ImageDataset; run: EvaluationRun } | undefined;

  constructor(private readonly o: Options, private readonly parts: EvaluationParts) {
    const { seed, frozen, model, sessions } = parts;
    const run = (features: CachedFeatures | undefined): EvaluationRun => ({ sessions, config: model.graph.config, normalization: model.normalization, features });
    this.valRun = run(frozen?.val);
    const sampleSize = model.task.trainSample?.size(o) ?? 0;
    const sampleIndices = new Rng(`train-accuracy/${seed}`).shuffle([...Array(o.train.count).keys()]).slice(0, sampleSize);
    this.trainSample = sampleSize > 0 ? {
      data: subset(o.train, sampleIndices),
      run: run(frozen && featureSubset(frozen.train, sampleIndices)),
    } : undefined;
  }

  /** The validation split's metrics. */
  validation(tensors: Map<string, ort.Tensor>): Promise<Validation> {
    return this.parts.model.task.validate(this.o, this.valRun, tensors);
  }

  /** Loss and top-1 on the training sample, or undefined without one. */
  async onTrainSample(tensors: Map<string, ort.Tensor>): Promise<{ loss: number; top1: number } | undefined> {
    const sample = this.trainSample;
    const evaluate = this.parts.model.task.trainSample?.evaluate;
    if (sample === undefined || evaluate === undefined) return undefined;
    return evaluate(sample.run, tensors, sample.data, this.o.train.classNames.length);
  }
}

/** The images at `indices` as a data set of their own (shares nothing with the original). */
function subset(data: ImageDataset, indices: number[]): ImageDataset {
  return subsetOf(data, indices, `${data.name} (sample)`);
}
