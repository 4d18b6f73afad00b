/**
 * The CPU lowering of convolutions to onnxruntime's channel-blocked kernels (src/passes/lower-conv-nchwc.ts): the
 * block size probe, which layers are lowered, and that a lowered training graph computes the same loss, gradients
 * and state as the standard one.
 */
import * as ort from 'onnxruntime-node';
import resnet from '../graphs/resnet';
import referenceCnn from '../graphs/reference-cnn';
import { GraphBuilder, Tensor } from '../src/dsl/builder';
import * as F from '../src/dsl/functional';
import { defineModel, nn } from '../src';
import { buildTrainingGraph, TrainingGraph } from '../src/model/training-graph';
import { decodeModel } from '../src/onnx/read';
import { encodeModel } from '../src/onnx/write';
import { lowerConvToNchwc, NCHWC_DOMAIN } from '../src/passes/lower-conv-nchwc';
import { modelForCpu, nchwcBlockSize } from '../src/runtime/nchwc';
import { cpuFlags, NCHWC_KERNELS, testWith } from './support/skips';
import { trainingFeeds } from './support/training-feeds';

// Skipped, with the reason in the name, where this machine lacks the kernels; required in CI (x86-64 with AVX2).
const testBlocked = testWith(NCHWC_KERNELS);

test('the block size probe finds the kernels on x86-64 with AVX2 (8 with AVX2, 16 with AVX-512)', async () => {
  const size = await nchwcBlockSize();
  if (process.arch === 'x64' && cpuFlags().has('avx2')) expect([8, 16]).toContain(size);
  else expect([undefined, 4, 8, 16]).toContain(size);
});

async function compareLowered(graph: TrainingGraph, imageSize: number, labels: number[]): Promise<number> {
  const { bytes, lowered } = await modelForCpu(graph.model);
  const feeds = trainingFeeds(graph, imageSize, labels);
  const options: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'extended' };
  const standard = await (await ort.InferenceSession.create(encodeModel(graph.model), options)).run(feeds);
  const blocked = await (await ort.InferenceSession.create(bytes, options)).run(feeds);
  expect(Object.keys(blocked).sort()).toEqual(Object.keys(standard).sort());
  for (const name of Object.keys(standard)) {
    const s = standard[name]!.data as Float32Array;
    const b = blocked[name]!.data as Float32Array;
    let scale = 1e-6;
    let worst = 0;
    s.forEach((v, i) => {
      scale = Math.max(scale, Math.abs(v));
      worst = Math.max(worst, Math.abs(v - b[i]!));
    });
    expect([name, worst / scale < 1e-4]).toEqual([name, true]);
  }
  return lowered;
}

testBlocked('the reference CNN: every Conv and both input-gradient ConvTransposes lowered; loss and gradients unchanged', async () => {
  const graph = buildTrainingGraph(referenceCnn, { config: { imageSize: 32, numClasses: 10 }, seed: 3 });
  expect(await compareLowered(graph, 32, [0, 3, 9, 1, 4, 4, 7, 2])).toBe(5);
});

testBlocked('the ResNet (batch norm, residual adds, strided and 1x1 convolutions): loss, gradients and running statistics unchanged', async () => {
  const graph = buildTrainingGraph(resnet, { config: { imageSize: 16, numClasses: 3, width: 16 }, seed: 1 });
  // Only the stride-2 ConvTransposes (input gradients of strided convolutions) stay standard.
  expect(await compareLowered(graph, 16, [0, 2, 1, 2])).toBeGreaterThanOrEqual(7);
});

/** MobileNetV2's block in small: 1x1 expand, depthwise 3x3 (stride 1, then 2, with ReLU6), 1x1 project. */
class DepthwiseSeparable extends nn.Module {
  readonly expand = new nn.Conv2d(3, 16, 1);
  readonly depthwise = new nn.Conv2d(16, 16, 3, { padding: 1, groups: 16 });
  readonly strided = new nn.Conv2d(16, 16, 3, { padding: 1, stride: 2, groups: 16 });
  readonly project = new nn.Conv2d(16, 16, 1);
  readonly head = new nn.Sequential(new nn.GlobalAvgPool(), new nn.Flatten(), new nn.Linear(16, 4));
  forward(x: Tensor): Tensor {
    const relu6 = (t: Tensor) => F.clip(t, 0, 6);
    return this.head.forward(this.project.forward(relu6(this.strided.forward(relu6(this.depthwise.forward(relu6(this.expand.forward(x))))))));
  }
}
const depthwiseSeparable = defineModel<{ imageSize: number }>({
  name: 'depthwise-separable', defaults: { imageSize: 12 },
  inputs: (c) => [{ name: 'input', shape: ['batch', 3, c.imageSize, c.imageSize] }],
  create: () => new DepthwiseSeparable(),
});

testBlocked('depthwise convolutions (stride 1 and 2, forward and input gradients) lowered too; loss and gradients unchanged', async () => {
  const graph = buildTrainingGraph(depthwiseSeparable, { config: { imageSize: 12 }, seed: 2 });
  // The two 1x1 convolutions and the projection's input gradient, as before; now also both depthwise ones and the
  // stride-1 one's input gradient (the stride-2 one's stays a ConvTranspose).
  expect(await compareLowered(graph, 12, [0, 3, 1, 2])).toBe(6);
  // The three ReLU6s run inside the blocked Convs (their rule reads only their outputs), so the expand ->
  // depthwise -> strided chain reads the blocked tensors directly: no ReorderInput of a ReorderOutput is left.
  const { bytes } = await modelForCpu(graph.model);
  const nodes = decodeModel(bytes).graph.nodes;
  const forwardClips = nodes.filter((n) => n.opType === 'Clip' && n.domain === '' && !n.name.includes('backward'));
  expect(forwardClips).toEqual([]);
  expect(nodes.filter((n) => n.domain === NCHWC_DOMAIN && n.attributes.get('activation')?.value === 'Clip')).toHaveLength(3);
  const roundTrips = nodes.filter((n) => n.opType === 'ReorderInput' && n.inputs[0]!.producer?.opType === 'ReorderOutput');
  expect(roundTrips).toEqual([]);
  // Five before: the depthwise, strided and project inputs, and two input gradients' dY; now only the last two.
  expect(nodes.filter((n) => n.opType === 'ReorderInput')).toHaveLength(2);
});

testBlocked('depthwise geometries beyond MobileNetV2\'s (5x5, dilation, no or uneven padding, 1x1, bias) compute the same', async () => {
  const b = new GraphBuilder('depthwise-geometries');
  const x = b.input('x', 'float32', [2, 16, 11, 11]);
  const weights = new Map([1, 3, 5].map((k) => [k, b.input(`w${k}`, 'float32', [16, 1, k, k])]));
  const weight = (k: number) => weights.get(k)!;
  const bias = b.input('bias', 'float32', [16]);
  const cases: [string, () => Tensor][] = [
    ['k5s2p2', () => F.conv2d(x, weight(5), bias, { padding: 2, stride: 2, groups: 16 })],
    ['k3d2p2', () => F.conv2d(x, weight(3), undefined, { padding: 2, dilation: 2, groups: 16 })],
    ['k3p0', () => F.conv2d(x, weight(3), undefined, { groups: 16 })],
    ['k1', () => F.conv2d(x, weight(1), bias, { groups: 16 })],
    ['uneven', () => b.op('Conv', [x, weight(3)], { group: 16, kernel_shape: [3, 3], pads: [0, 1, 1, 0], strides: [2, 1] }, 'uneven')],
  ];
  for (const [name, make] of cases) b.output(name, b.run(make));
  const model = b.toModel();
  const { bytes, lowered } = await modelForCpu(model);
  expect(lowered).toBe(cases.length);
  const random = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.5);
  const feeds: Record<string, ort.Tensor> = { x: new ort.Tensor('float32', random(2 * 16 * 11 * 11), [2, 16, 11, 11]), bias: new ort.Tensor('float32', random(16), [16]) };
  for (const k of [1, 3, 5]) feeds[`w${k}`] = new ort.Tensor('float32', random(16 * k * k).map((v) => v + k), [16, 1, k, k]);
  const standard = await (await ort.InferenceSession.create(encodeModel(model), { graphOptimizationLevel: 'extended' })).run(feeds);
  const blocked = await (await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'extended' })).run(feeds);
  for (const [name] of cases) {
    expect(blocked[name]!.dims).toEqual(standard[name]!.dims);
    const s = standard[name]!.data as Float32Array;
    const worst = (blocked[name]!.data as Float32Array).reduce((m, v, i) => Math.max(m, Math.abs(v - s[i]!)), 0);
    expect([name, worst < 1e-5]).toEqual([name, true]);
  }
});

test('layers the blocked kernels cannot run stay standard ONNX, and outputs keep their names', async () => {
  const b = new GraphBuilder('mixed');
  const x = b.input('x', 'float32', [1, 32, 8, 8]);
  const grouped = b.input('grouped', 'float32', [32, 16, 3, 3]);
  const odd = b.input('odd', 'float32', [24, 32, 3, 3]);
  const plain = b.input('plain', 'float32', [32, 32, 3, 3]);
  b.output('g', b.run(() => F.conv2d(x, grouped, undefined, { padding: 1, groups: 2 })));
  b.output('o', b.run(() => F.conv2d(x, odd, undefined, { padding: 1 })));
  b.output('p', b.run(() => F.relu(F.conv2d(x, plain, undefined, { padding: 1 }))));
  b.output('t', b.op('ConvTranspose', [x, plain], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] }, 'convT'));
  // Depthwise with a channel multiplier of 2 is not the blocked kernel's depthwise case.
  b.output('m', b.run(() => F.conv2d(x, b.input('multiplier', 'float32', [64, 1, 3, 3]), undefined, { padding: 1, groups: 32 })));
  const model = decodeModel(encodeModel(b.toModel()));
  expect(lowerConvToNchwc(model, 16)).toBe(1);
  const ops = model.graph.nodes.map((n) => `${n.domain === NCHWC_DOMAIN ? 'nchwc.' : ''}${n.opType}`);
  expect(ops.filter((o) => o === 'Conv')).toHaveLength(3);
  expect(ops).toContain('ConvTranspose');
  expect(ops).toContain('nchwc.Conv');
  // The ReLU was fused into the blocked Conv: its output value is now produced by the ReorderOutput.
  expect(ops).not.toContain('Relu');
  expect(model.graph.outputs.map((v) => [v.name, v.producer?.opType])).toEqual([['g', 'Conv'], ['o', 'Conv'], ['p', 'ReorderOutput'], ['t', 'ConvTranspose'], ['m', 'Conv']]);
  expect(model.opsetImports.map((o) => o.domain)).toContain(NCHWC_DOMAIN);
});
