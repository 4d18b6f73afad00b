import * as ort from 'onnxruntime-node';
import { ImageDataset, Normalization, subsetOf } from '../data/dataset';
import { outputOf } from '../portable/session-output';
import { Rng } from '../util/rng';
import { CaptionMetrics, evaluateCaptions } from './caption-evaluation';
import type { FrozenBackbone } from './frozen-backbone';
import { CachedFeatures, featureSubset } from './frozen-features';
import { evaluationBatchSize, InputBatch } from './input-batch';
import { Average, topKCorrect } from './metrics';
import type { ModelForData } from './model-for-data';
import type { DataOptions, ModelOptions } from './options';
import type { TrainingSessions } from './training-sessions';

/** The trainer options this part reads. */
type Options = DataOptions & ModelOptions;

/** A classifier's evaluation: loss, top-1 and top-5 accuracy, and the confusion matrix (confusion[true][predicted]). */
export interface ClassifierMetrics {
  loss: number;
  top1: number;
  top5: number;
  confusion: number[][];
}

/** Loss, top-1 and top-5 accuracy of the current parameters on a data set (eval mode). */
export async function evaluate(
  session: ort.InferenceSession, parameterNames: string[], tensors: Map<string, ort.Tensor>, data: ImageDataset, normalization: Normalization, classes: number,
  features?: CachedFeatures,
): Promise<ClassifierMetrics> {
  const batchSize = evaluationBatchSize(data, 256, features);
  const batch = new InputBatch(data, normalization, batchSize, features);
  const labels = batch.labels;
  const loss = new Average();
  let top1 = 0;
  let top5 = 0;
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let start = 0; start < data.count; start += batchSize) {
    const n = Math.min(batchSize, data.count - start);
    const feeds: Record<string, ort.Tensor> = {
      [batch.name]: batch.fill(Array.from({ length: n }, (_, i) => start + i)),
      labels: new ort.Tensor('int64', labels.subarray(0, n), [n]),
    };
    for (const name of parameterNames) feeds[name] = tensors.get(name)!;
    const out = await session.run(feeds);
    const logits = outputOf(out, 'logits', 'the evaluation graph').data as Float32Array;
    loss.add((outputOf(out, 'loss', 'the evaluation graph').data as Float32Array)[0]!, n);
    top1 += topKCorrect(logits, labels.subarray(0, n), classes, 1);
    top5 += topKCorrect(logits, labels.subarray(0, n), classes, Math.min(5, classes));
    for (let i = 0; i < n; i++) {
      let predicted = 0;
      for (let k = 1; k < classes; k++) if (logits[i * classes + k]! > logits[i * classes + predicted]!) predicted = k;
      confusion[Number(labels[i])]![predicted]!++;
    }
  }
  return { loss: loss.value, top1: top1 / data.count, top5: top5 / data.count, confusion };
}

/** What an epoch is evaluated with. */
export interface EvaluationParts {
  model: ModelForData;
  seed: number;
  sessions: TrainingSessions;
  frozen: FrozenBackbone | undefined;
}

/**
 * The evaluations after each epoch, in eval mode: the validation split (a classifier's loss, top-1, top-5 and
 * confusion; a captioner's token metrics and BLEU), and top-1 on a fixed seeded sample of the training split.
 */
export class EpochEvaluation {
  private readonly valFeatures: CachedFeatures | undefined;
  private readonly trainSample: { data: ImageDataset; features: CachedFeatures | undefined } | undefined;

  constructor(private readonly o: Options, private readonly parts: EvaluationParts) {
    const { seed, frozen } = parts;
    this.valFeatures = frozen?.val;
    // Captioners report token accuracy on validation only.
    const sampleSize = o.captions !== undefined ? 0 : Math.min(o.trainAccuracySample ?? 2000, o.train.count);
    const sampleIndices = new Rng(`train-accuracy/${seed}`).shuffle([...Array(o.train.count).keys()]).slice(0, sampleSize);
    this.trainSample = sampleSize > 0 ? {
      data: subset(o.train, sampleIndices),
      features: frozen && featureSubset(frozen.train, sampleIndices),
    } : undefined;
  }

  /** The validation split's metrics. */
  async validation(tensors: Map<string, ort.Tensor>): Promise<ClassifierMetrics | CaptionMetrics> {
    const { o } = this;
    const { model, sessions } = this.parts;
    return o.captions !== undefined
      ? await evaluateCaptions(sessions.evaluation, sessions.evalParameters, await sessions.onHost(tensors), o.captions.val, {
        definition: o.definition, variant: o.variant, config: model.graph.config, vocabulary: o.captions.vocabulary, normalization: model.normalization, bleuImages: o.bleuImages,
        features: this.valFeatures,
      })
      : await evaluate(sessions.evaluation, sessions.evalParameters, tensors, o.val, model.normalization, o.train.classNames.length, this.valFeatures);
  }

  /** Loss and top-1 on the training sample, or undefined without one. */
  async onTrainSample(tensors: Map<string, ort.Tensor>): Promise<ClassifierMetrics | undefined> {
    const sample = this.trainSample;
    if (sample === undefined) return undefined;
    const { model, sessions } = this.parts;
    return evaluate(sessions.evaluation, sessions.evalParameters, tensors, sample.data, model.normalization, this.o.train.classNames.length, sample.features);
  }
}

/** The images at `indices` as a data set of their own (shares nothing with the original). */
function subset(data: ImageDataset, indices: number[]): ImageDataset {
  return subsetOf(data, indices, `${data.name} (sample)`);
}
