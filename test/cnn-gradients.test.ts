/**
 * End to end: the seed CNN's training graph (small input) against PyTorch in float64: loss, every element of every
 * parameter gradient, and the updated running statistics.
 */
import * as ort from 'onnxruntime-node';
import cnn from '../graphs/cnn';
import { buildTrainingGraph } from '../src/model/training-graph';
import { encodeModel } from '../src/onnx/write';
import { runPyTorch } from './support/pytorch';
import { largestDifference } from './support/largest-difference';
import { trainingFeeds } from './support/training-feeds';

// The same network, written with torch.nn.functional from graphs/cnn.ts (conv3x3 pad 1, batch norm with batch
// statistics, ReLU, 2x2 max pool, three times; then Linear-ReLU-Linear-ReLU-Linear and mean cross-entropy).
const SCRIPT = `
import json, sys, torch
import torch.nn.functional as F
torch.set_default_dtype(torch.float64)
d = json.load(sys.stdin)
T = lambda k: torch.tensor(d['feeds'][k]['data'], dtype=torch.float64).reshape(d['feeds'][k]['shape'])
p = {k: T(k).requires_grad_(True) for k in d['trainable']}
h = T('input')
state = {}
for i in range(3):
    f = 'features.%d' % i
    h = F.conv2d(h, p[f + '.0.weight'], p[f + '.0.bias'], 1, 1)
    rm, rv = T(f + '.1.running_mean').clone(), T(f + '.1.running_var').clone()
    h = F.batch_norm(h, rm, rv, p[f + '.1.weight'], p[f + '.1.bias'], training=True, momentum=0.1, eps=1e-5)
    state[f + '.1.running_mean'], state[f + '.1.running_var'] = rm.tolist(), rv.tolist()
    h = F.max_pool2d(F.relu(h), 2)
h = h.flatten(1)
h = F.relu(F.linear(h, p['classifier.1.weight'], p['classifier.1.bias']))
h = F.relu(F.linear(h, p['classifier.3.weight'], p['classifier.3.bias']))
logits = F.linear(h, p['classifier.6.weight'], p['classifier.6.bias'])
loss = F.cross_entropy(logits, torch.tensor(d['feeds']['labels']['data']).long())
loss.backward()
print(json.dumps({'loss': loss.item(), 'grads': {k: v.grad.flatten().tolist() for k, v in p.items()}, 'state': state}))
`;

test('loss, gradients and running statistics of the seed CNN (8x8 input, 3 classes, batch 4) match PyTorch in float64', async () => {
  const graph = buildTrainingGraph(cnn, { config: { imageSize: 8, numClasses: 3 }, seed: 1 });
  expect(graph.trainable).toHaveLength(18);
  expect(graph.model.graph.outputs.map((v) => v.name).slice(0, 3)).toEqual(['loss', 'features.0.0.weight_grad', 'features.0.0.bias_grad']);
  const feeds = trainingFeeds(graph, 8, [0, 2, 1, 2]);
  const session = await ort.InferenceSession.create(encodeModel(graph.model));
  const out = await session.run(feeds);
  await session.release();
  const plain = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, { shape: [...t.dims], data: Array.from(t.data as ArrayLike<number | bigint>, Number) }]));
  const reference = runPyTorch(SCRIPT, { feeds: plain, trainable: graph.trainable }) as { loss: number; grads: Record<string, number[]>; state: Record<string, number[]> };

  expect((out.loss!.data as Float32Array)[0]).toBeCloseTo(reference.loss, 5);
  // Cross-entropy gradients here are ~1e-2 and smaller, so an absolute tolerance (finite differences in float32 need
  // ~5e-4) would let a wrong rule through. Each gradient is compared in full with the float64 reference, relative to
  // its largest element: float32 rounding accounts for ~1e-6 of it (measured worst 1.7e-6, where conv and linear
  // gradients sum hundreds of products), so 2e-5 leaves a margin and still fails a rule that is off by a small term.
  // The conv biases feed batch norm, which subtracts their batch mean: their exact gradient is zero (PyTorch: 1e-17),
  // and the graph emits an exact zero (checked below), not the rounding noise of a sum, which Adam would scale to
  // full steps.
  const TOLERANCE = 2e-5;
  const largest = Math.max(...graph.trainable.map((name) => reference.grads[name]!.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
  let worst = { name: '', relative: 0 };
  const failures: string[] = [];
  for (const name of graph.trainable) {
    const ours = out[`${name}_grad`]!.data as Float32Array;
    const theirs = reference.grads[name]!;
    expect(ours).toHaveLength(theirs.length);
    const { difference: error, scale } = largestDifference(theirs, ours);
    const zero = scale < 1e-12 * largest;
    const relative = zero ? error / largest : error / scale;
    if (!zero && relative > worst.relative) worst = { name, relative };
    if (!(relative <= (zero ? 1e-6 : TOLERANCE))) failures.push(`${name}: max error ${error.toExponential(2)}, largest element ${scale.toExponential(2)}`);
  }
  for (const block of [0, 1, 2]) expect(Array.from(out[`features.${block}.0.bias_grad`]!.data as Float32Array).every((g) => g === 0)).toBe(true);
  console.log(`seed CNN against PyTorch (float64): worst gradient error ${worst.relative.toExponential(1)} of the largest element (${worst.name}); allowed ${TOLERANCE}`);
  expect(failures).toEqual([]);
  // The running statistics follow PyTorch: 0.9 * old + 0.1 * the batch mean, and the unbiased batch variance.
  expect(Object.keys(reference.state).sort()).toEqual([...graph.stateOutputs.keys()].sort());
  for (const [name, values] of Object.entries(reference.state)) {
    const ours = out[graph.stateOutputs.get(name)!]!.data as Float32Array;
    // Statistics of order 1 in float32 (measured error 7e-8).
    expect([name, values.every((v, i) => Math.abs(ours[i]! - v) < 1e-6)]).toEqual([name, true]);
  }
});
