import * as ort from 'onnxruntime-node';
import type { ImageDataset, Normalization } from '../data/dataset';
import { softmax } from '../portable/image-preprocessing';
import { outputOf } from '../portable/session-output';
import type { CachedFeatures } from './frozen-features';
import { evaluationBatchSize, InputBatch } from './input-batch';
import { Average, topKCorrect } from './metrics';

/** A classifier's evaluation: loss, top-1 and top-5 accuracy, and the confusion matrix (confusion[true][predicted]). */
export interface ClassifierMetrics {
  loss: number;
  top1: number;
  top5: number;
  confusion: number[][];
}

export interface EvaluationOptions {
  /**
   * Test-time augmentation: each image also runs mirrored left-right and the two softmax outputs are averaged;
   * the loss is then the cross-entropy of the averaged probabilities. Images only (not cached features).
   */
  flip?: boolean;
}

/** Loss, top-1 and top-5 accuracy of the current parameters on a data set (eval mode). */
export async function evaluate(
  session: ort.InferenceSession, parameterNames: string[], tensors: Map<string, ort.Tensor>, data: ImageDataset, normalization: Normalization, classes: number,
  features?: CachedFeatures, options: EvaluationOptions = {},
): Promise<ClassifierMetrics> {
  if (options.flip === true && features !== undefined) throw new Error('flipped test-time augmentation needs the images, not cached features');
  const batchSize = evaluationBatchSize(data, 256, features);
  const batch = new InputBatch(data, normalization, batchSize, features);
  const labels = batch.labels;
  const loss = new Average();
  let top1 = 0;
  let top5 = 0;
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let start = 0; start < data.count; start += batchSize) {
    const n = Math.min(batchSize, data.count - start);
    const input = batch.fill(Array.from({ length: n }, (_, i) => start + i));
    const feeds: Record<string, ort.Tensor> = { [batch.name]: input, labels: new ort.Tensor('int64', labels.subarray(0, n), [n]) };
    for (const name of parameterNames) feeds[name] = tensors.get(name)!;
    const out = await session.run(feeds);
    let logits = outputOf(out, 'logits', 'the evaluation graph').data as Float32Array;
    if (options.flip === true) {
      const scores = softmaxRows(logits, classes);
      mirrorRows(input);
      const mirrored = softmaxRows(outputOf(await session.run(feeds), 'logits', 'the evaluation graph').data as Float32Array, classes);
      for (let i = 0; i < scores.length; i++) scores[i] = (scores[i]! + mirrored[i]!) / 2;
      for (let i = 0; i < n; i++) loss.add(-Math.log(scores[i * classes + Number(labels[i])]!), 1);
      logits = Float32Array.from(scores);
    } else {
      loss.add((outputOf(out, 'loss', 'the evaluation graph').data as Float32Array)[0]!, n);
    }
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

/** Each row's softmax, in double (a probability too small for a float would make the loss infinite). */
function softmaxRows(logits: Float32Array, classes: number): Float64Array {
  const p = new Float64Array(logits.length);
  for (let row = 0; row < logits.length; row += classes) p.set(softmax(logits.subarray(row, row + classes)), row);
  return p;
}

/** Mirrors an image batch [N, C, H, W] left-right, in place. */
function mirrorRows(input: ort.Tensor): void {
  const data = input.data as Float32Array;
  const width = input.dims[input.dims.length - 1]!;
  for (let row = 0; row < data.length; row += width) data.subarray(row, row + width).reverse();
}
