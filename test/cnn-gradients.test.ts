/** End to end: the seed CNN's training graph (small input) against finite differences, parameter by parameter. */
import * as ort from 'onnxruntime-node';
import cnn from '../graphs/cnn';
import { checkGradientGraph } from '../src/autodiff/gradcheck';
import { buildTrainingGraph } from '../src/model/training-graph';
import { encodeModel } from '../src/onnx/write';
import { trainingFeeds } from './support/training-feeds';

test('gradients of the seed CNN (8x8 input, 3 classes, batch 4) match finite differences', async () => {
  const graph = buildTrainingGraph(cnn, { config: { imageSize: 8, numClasses: 3 }, seed: 1 });
  expect(graph.trainable).toHaveLength(18);
  expect(graph.model.graph.outputs.map((v) => v.name).slice(0, 3)).toEqual(['loss', 'features.0.0.weight_grad', 'features.0.0.bias_grad']);
  const feeds = trainingFeeds(graph, 8, [0, 2, 1, 2]);
  const report = await checkGradientGraph(encodeModel(graph.model), feeds, graph.trainable, { sample: 3, largest: 3, seed: 2, eps: 1e-3 });
  if (!report.ok) console.log(report);
  expect(report.ok).toBe(true);
  expect(report.checked).toBeGreaterThan(80);
});

