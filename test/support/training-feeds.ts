import * as ort from 'onnxruntime-node';
import type { TrainingGraph } from '../../src/model/training-graph';
import { Rng } from '../../src/util/rng';

/** Feeds for a classifier's training graph: a seeded random batch, the given labels, and the initial parameters. */
export function trainingFeeds(graph: TrainingGraph, imageSize: number, labels: number[], seed = 5): Record<string, ort.Tensor> {
  const rng = new Rng(seed);
  const n = labels.length;
  const feeds: Record<string, ort.Tensor> = {
    input: new ort.Tensor('float32', Float32Array.from({ length: n * 3 * imageSize * imageSize }, () => rng.normal()), [n, 3, imageSize, imageSize]),
    labels: new ort.Tensor('int64', BigInt64Array.from(labels.map(BigInt)), [n]),
  };
  for (const [name, value] of graph.values) feeds[name] = new ort.Tensor('float32', value.typed() as Float32Array, [...value.dims]);
  return feeds;
}
