/** End to end: the seed CNN's training graph (small input) against finite differences, parameter by parameter. */
import * as ort from 'onnxruntime-node';
import cnn from '../graphs/cnn';
import { checkGradientGraph } from '../src/autodiff/gradcheck';
import { buildTrainingGraph } from '../src/model/training-graph';
import { encodeModel } from '../src/onnx/write';
import { Rng } from '../src/util/rng';

test('gradients of the seed CNN (8x8 input, 3 classes, batch 4) match finite differences', async () => {
  const graph = buildTrainingGraph(cnn, { config: { imageSize: 8, numClasses: 3 }, seed: 1 });
  expect(graph.trainable).toHaveLength(18);
  expect(graph.model.graph.outputs.map((v) => v.name).slice(0, 3)).toEqual(['loss', 'features.0.0.weight_grad', 'features.0.0.bias_grad']);
  const rng = new Rng(5);
  const feeds: Record<string, ort.Tensor> = {
    input: new ort.Tensor('float32', Float32Array.from({ length: 4 * 3 * 8 * 8 }, () => rng.normal()), [4, 3, 8, 8]),
    labels: new ort.Tensor('int64', BigInt64Array.from([0n, 2n, 1n, 2n]), [4]),
  };
  for (const [name, value] of graph.values) feeds[name] = new ort.Tensor('float32', value.typed() as Float32Array, [...value.dims]);
  const report = await checkGradientGraph(encodeModel(graph.model), feeds, graph.trainable, { sample: 3, largest: 3, seed: 2, eps: 1e-3 });
  if (!report.ok) console.log(report);
  expect(report.ok).toBe(true);
  expect(report.checked).toBeGreaterThan(80);
});
