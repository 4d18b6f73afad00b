/**
 * The ResNet of graphs/resnet.ts against PyTorch (float64): loss and every parameter gradient of one training step.
 * Finite differences are too coarse here: in float32, a perturbed stem weight moves the batch statistics of every
 * position and sends many ReLU inputs across zero at once.
 */
import * as ort from 'onnxruntime-node';
import resnet from '../graphs/resnet';
import { buildTrainingGraph } from '../src/model/training-graph';
import { encodeModel } from '../src/onnx/write';
import { runPyTorch } from './support/pytorch';
import { trainingFeeds } from './support/training-feeds';

const SCRIPT = `
import json, sys, torch
import torch.nn.functional as F
torch.set_default_dtype(torch.float64)
d = json.load(sys.stdin)
T = lambda k: torch.tensor(d['feeds'][k]['data'], dtype=torch.float64).reshape(d['feeds'][k]['shape'])
p = {k: T(k).requires_grad_(True) for k in d['trainable']}
def conv_bn(x, name, stride, pad):
    x = F.conv2d(x, p[name + '.0.weight'], None, stride, pad)
    return F.batch_norm(x, None, None, p[name + '.1.weight'], p[name + '.1.bias'], training=True, eps=1e-5)
h = F.relu(conv_bn(T('input'), 'stem.0', 1, 1))
for s in range(3):
    b = 'stages.%d' % s
    y = conv_bn(F.relu(conv_bn(h, b + '.conv1', 2, 1)), b + '.conv2', 1, 1)
    h = F.relu(y + conv_bn(h, b + '.shortcut', 2, 0))
logits = h.mean(dim=(2, 3)) @ p['head.2.weight'].T + p['head.2.bias']
loss = F.cross_entropy(logits, torch.tensor(d['feeds']['labels']['data']).long())
loss.backward()
print(json.dumps({'loss': loss.item(), 'grads': {k: v.grad.flatten().tolist() for k, v in p.items()}}))
`;

test('one training step of the ResNet (residual adds, strided and 1x1 projection convolutions, global average pooling) matches PyTorch', async () => {
  const graph = buildTrainingGraph(resnet, { config: { imageSize: 16, numClasses: 3, width: 4 }, seed: 1 });
  expect(graph.trainable).toHaveLength(32);
  const feeds = trainingFeeds(graph, 16, [0, 2, 1, 2]);
  const session = await ort.InferenceSession.create(encodeModel(graph.model));
  const out = await session.run(feeds);
  const plain = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, { shape: [...t.dims], data: Array.from(t.data as ArrayLike<number | bigint>, Number) }]));
  const reference = runPyTorch(SCRIPT, { feeds: plain, trainable: graph.trainable }) as { loss: number; grads: Record<string, number[]> };
  expect((out.loss!.data as Float32Array)[0]).toBeCloseTo(reference.loss, 5);
  for (const name of graph.trainable) {
    const ours = out[`${name}_grad`]!.data as Float32Array;
    const theirs = reference.grads[name]!;
    const scale = Math.max(...theirs.map(Math.abs));
    const worst = Math.max(...theirs.map((v, i) => Math.abs(v - ours[i]!)));
    expect([name, worst / scale < 1e-4]).toEqual([name, true]);
  }
});
