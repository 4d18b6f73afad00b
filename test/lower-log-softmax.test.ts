/** The WebGPU rewrite of LogSoftmax (src/passes/lower-log-softmax.ts) keeps the training graph's results. */
import * as ort from 'onnxruntime-node';
import cnn from '../graphs/cnn';
import { buildTrainingGraph } from '../src/model/training-graph';
import { decodeModel } from '../src/onnx/read';
import { encodeModel } from '../src/onnx/write';
import { lowerLogSoftmax } from '../src/passes/lower-log-softmax';
import { trainingFeeds } from './support/training-feeds';

test('the seed CNN\'s training graph without LogSoftmax gives the same loss and gradients, under the same output names', async () => {
  const graph = buildTrainingGraph(cnn, { config: { imageSize: 8, numClasses: 5 }, seed: 4 });
  const lowered = decodeModel(encodeModel(graph.model));
  expect(lowerLogSoftmax(lowered)).toBe(1);
  expect(lowered.graph.nodes.map((n) => n.opType)).not.toContain('LogSoftmax');
  expect(lowered.graph.outputs.map((v) => v.name)).toEqual(graph.model.graph.outputs.map((v) => v.name));
  // Logits far apart: the max subtraction is what keeps exp() finite.
  const feeds = trainingFeeds(graph, 8, [0, 4, 2, 2, 1, 3]);
  const [expected, actual] = await Promise.all([graph.model, lowered].map(async (m) => (await ort.InferenceSession.create(encodeModel(m))).run(feeds)));
  for (const name of Object.keys(expected!)) {
    const e = expected![name]!.data as Float32Array;
    const a = actual![name]!.data as Float32Array;
    const scale = e.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-6);
    const worst = e.reduce((m, v, i) => Math.max(m, Math.abs(v - a[i]!)), 0);
    expect([name, worst / scale < 1e-5]).toEqual([name, true]);
  }
});

test('large logits stay finite', async () => {
  const graph = buildTrainingGraph(cnn, { config: { imageSize: 8, numClasses: 5 }, seed: 4 });
  const lowered = decodeModel(encodeModel(graph.model));
  lowerLogSoftmax(lowered);
  // Scale the last layer's weights so that the logits are in the thousands.
  const feeds = trainingFeeds(graph, 8, [0, 4, 2, 2]);
  const last = graph.parameters.filter((p) => p.name.endsWith('.weight')).pop()!.name;
  feeds[last] = new ort.Tensor('float32', (feeds[last]!.data as Float32Array).map((v) => v * 1e4), feeds[last]!.dims);
  const out = await (await ort.InferenceSession.create(encodeModel(lowered))).run(feeds);
  const loss = (out.loss!.data as Float32Array)[0]!;
  expect(Number.isFinite(loss)).toBe(true);
  expect(loss).toBeGreaterThan(1);
});
