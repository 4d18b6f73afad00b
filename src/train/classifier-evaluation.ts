import * as ort from 'onnxruntime-node';
import type { ImageDataset, Normalization } from '../data/dataset';
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
