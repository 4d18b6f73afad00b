/**
 * Every gradient rule against central finite differences (float64 where onnxruntime's CPU kernels have it), and the
 * rules onnxruntime can only run in float32 (convolution, pooling, erf...) also against float64 reference gradients
 * at a float32 tolerance. One row per case; the meta-test reads which ops each case differentiates from the graph
 * it builds, and fails when a differentiable op of the table has no case.
 */
import * as ort from 'onnxruntime-node';
import { gradCheck, GradCheckInput } from '../src/runtime/gradcheck';
import { gradients } from '../src/autodiff/gradients';
import { GraphBuilder } from '../src/dsl/builder';
import { encodeModel } from '../src/onnx/write';
import { isFloatingDType } from '../src/ir/dtype';
import type { Node } from '../src/ir/graph';
import { TensorData } from '../src/ir/tensor';
import * as F from '../src/dsl/functional';
import * as L from '../src/dsl/losses';
import type { Tensor } from '../src/dsl/builder';
import { NO_GRADIENT } from '../src/autodiff/gradient-rule';
import { GRADIENT_RULES } from '../src/autodiff/gradient-rules';
import type { OpType } from '../src/ops/registry';
import * as R from './support/reference';
import type { Arr } from './support/reference';
import { randn } from './support/random';

interface GradCase {
  name: string;
  inputs: GradCheckInput[];
  forward: (...t: Tensor[]) => Tensor;
  dtype?: 'float32' | 'float64';
  /** The same function in float64 (test/support/reference.ts): required where onnxruntime has no float64 kernel. */
  reference?: (...a: Arr[]) => Arr;
}

const conv = (stride: [number, number], pads: number[], dilation: [number, number], groups: number) => ({ stride, pads, dilation, groups });
const x = (name: string, shape: number[], transform?: (v: number) => number): GradCheckInput => ({ name, shape, transform });
const pos = (v: number) => Math.abs(v) + 0.5;
const labels = (name: string, values: number[]): GradCheckInput => ({ name, shape: [values.length], values, dtype: 'int64' });

const cases: GradCase[] = [
  { name: 'add with broadcasting both ways', inputs: [x('a', [2, 3, 1]), x('b', [4])], forward: F.add },
  { name: 'sub with a broadcast row', inputs: [x('a', [3, 4]), x('b', [1, 4])], forward: F.sub },
  { name: 'mul with broadcasting', inputs: [x('a', [2, 3]), x('b', [2, 1])], forward: F.mul },
  { name: 'div with broadcasting', inputs: [x('a', [2, 3]), x('b', [3], pos)], forward: F.div },
  { name: 'neg', inputs: [x('a', [5])], forward: F.neg },
  { name: 'pow of both operands', inputs: [x('a', [4], pos), x('p', [4])], forward: F.pow },
  { name: 'exp', inputs: [x('a', [6])], forward: F.exp },
  { name: 'log', inputs: [x('a', [6], pos)], forward: F.log },
  { name: 'sqrt', inputs: [x('a', [6], pos)], forward: F.sqrt },
  { name: 'abs', inputs: [x('a', [6])], forward: F.abs },
  { name: 'reciprocal', inputs: [x('a', [6], pos)], forward: F.reciprocal },
  { name: 'erf', inputs: [x('a', [6])], forward: F.erf, reference: (a) => R.map(a, R.erf) },
  { name: 'relu', inputs: [x('a', [3, 5])], forward: F.relu },
  { name: 'leakyRelu', inputs: [x('a', [3, 5])], forward: (a) => F.leakyRelu(a, 0.1) },
  { name: 'sigmoid', inputs: [x('a', [3, 5])], forward: F.sigmoid },
  { name: 'tanh', inputs: [x('a', [3, 5])], forward: F.tanh },
  { name: 'softmax over axis 1 of 3', inputs: [x('a', [2, 4, 3])], forward: (a) => F.softmax(a, 1) },
  { name: 'logSoftmax', inputs: [x('a', [3, 5])], forward: (a) => F.logSoftmax(a) },
  { name: 'maximum and minimum', inputs: [x('a', [2, 4]), x('b', [4])], forward: (a, b) => F.add(F.maximum(a, b), F.mul(F.minimum(a, b), 3)) },
  { name: 'matmul 2-D', inputs: [x('a', [3, 4]), x('b', [4, 2])], forward: F.matmul },
  { name: 'matmul batched with a broadcast batch', inputs: [x('a', [2, 1, 3, 4]), x('b', [3, 4, 2])], forward: F.matmul },
  { name: 'matmul rank 3 by a matrix (one GEMM for the weight)', inputs: [x('a', [2, 3, 4]), x('b', [4, 5])], forward: F.matmul },
  { name: 'matmul vector by matrix and matrix by vector', inputs: [x('v', [4]), x('m', [4, 3]), x('u', [3])], forward: (v, m, u) => F.matmul(F.matmul(v, m), u) },
  { name: 'linear (Gemm with transB and bias)', inputs: [x('a', [3, 4]), x('w', [5, 4]), x('b', [5])], forward: F.linear },
  {
    name: 'gemm with transA, alpha and beta', inputs: [x('a', [4, 3]), x('b', [4, 2]), x('c', [1, 2])],
    forward: (a, b, c) => a.builder.op('Gemm', [a, b, c], { transA: 1, alpha: { type: 'float', value: 0.5 }, beta: { type: 'float', value: 2 } }, 'gemm'),
  },
  {
    name: 'gemm with transA and transB', inputs: [x('a', [4, 3]), x('b', [2, 4])],
    forward: (a, b) => a.builder.op('Gemm', [a, b], { transA: 1, transB: 1 }, 'gemm'),
  },
  {
    name: 'conv2d 3x3 pad 1 with bias', inputs: [x('x', [2, 2, 5, 5]), x('w', [3, 2, 3, 3]), x('b', [3])], forward: (a, w, b) => F.conv2d(a, w, b, { padding: 1 }),
    reference: (a, w, b) => R.conv2d(a, w, b, conv([1, 1], [1, 1, 1, 1], [1, 1], 1)),
  },
  {
    name: 'conv2d stride 2, asymmetric pads, uncovered last rows', inputs: [x('x', [1, 2, 6, 7]), x('w', [2, 2, 3, 2])],
    forward: (a, w) => F.conv2d(a, w, undefined, { stride: 2, padding: [1, 0, 0, 1] }), reference: (a, w) => R.conv2d(a, w, undefined, conv([2, 2], [1, 0, 0, 1], [1, 1], 1)),
  },
  {
    name: 'conv2d dilation 2', inputs: [x('x', [1, 1, 6, 6]), x('w', [2, 1, 2, 2])], forward: (a, w) => F.conv2d(a, w, undefined, { dilation: 2, padding: 1 }),
    reference: (a, w) => R.conv2d(a, w, undefined, conv([1, 1], [1, 1, 1, 1], [2, 2], 1)),
  },
  {
    name: 'depthwise conv2d 3x3 pad 1 (dX as a forward Conv of the flipped kernel)', inputs: [x('x', [2, 3, 5, 5]), x('w', [3, 1, 3, 3])],
    forward: (a, w) => F.conv2d(a, w, undefined, { groups: 3, padding: 1 }), reference: (a, w) => R.conv2d(a, w, undefined, conv([1, 1], [1, 1, 1, 1], [1, 1], 3)),
  },
  {
    name: 'conv2d 1x1 on a 28x28 grid (dW as one GEMM per image)', inputs: [x('x', [1, 1, 28, 28]), x('w', [2, 1, 1, 1])],
    forward: (a, w) => F.conv2d(a, w), reference: (a, w) => R.conv2d(a, w, undefined, conv([1, 1], [0, 0, 0, 0], [1, 1], 1)),
  },
  {
    name: 'conv2d groups 2 with stride', inputs: [x('x', [2, 4, 5, 5]), x('w', [4, 2, 3, 3]), x('b', [4])],
    forward: (a, w, b) => F.conv2d(a, w, b, { groups: 2, stride: 2, padding: 1 }), reference: (a, w, b) => R.conv2d(a, w, b, conv([2, 2], [1, 1, 1, 1], [1, 1], 2)),
  },
  {
    name: 'maxPool2d 2x2 (tiling, upsampled mask)', inputs: [x('x', [2, 2, 4, 6])],
    forward: (a) => F.maxPool2d(a, 2), reference: (a) => R.pool2d(a, 'max', [2, 2], [2, 2], [0, 0, 0, 0]),
  },
  {
    name: 'maxPool2d after relu (both masks; passes/fuse-relu-mask.ts moves the relu one onto the pooled grid)', inputs: [x('x', [2, 2, 4, 4])],
    forward: (a) => F.maxPool2d(F.relu(a), 2), reference: (a) => R.pool2d(R.map(a, (v) => Math.max(v, 0)), 'max', [2, 2], [2, 2], [0, 0, 0, 0]),
  },
  {
    name: 'maxPool2d 3x3 stride 2 pad 1 (overlapping)', inputs: [x('x', [1, 2, 5, 5])],
    forward: (a) => F.maxPool2d(a, 3, { stride: 2, padding: 1 }), reference: (a) => R.pool2d(a, 'max', [3, 3], [2, 2], [1, 1, 1, 1]),
  },
  {
    name: 'maxPool2d 2x2 on an odd size (last row dropped)', inputs: [x('x', [1, 1, 5, 4])],
    forward: (a) => F.maxPool2d(a, 2), reference: (a) => R.pool2d(a, 'max', [2, 2], [2, 2], [0, 0, 0, 0]),
  },
  {
    name: 'maxPool2d ceil mode', inputs: [x('x', [1, 1, 5, 5])],
    forward: (a) => F.maxPool2d(a, 2, { ceilMode: true }), reference: (a) => R.pool2d(a, 'max', [2, 2], [2, 2], [0, 0, 0, 0], true),
  },
  { name: 'avgPool2d 2x2', inputs: [x('x', [2, 2, 4, 4])], forward: (a) => F.avgPool2d(a, 2), reference: (a) => R.pool2d(a, 'avg', [2, 2], [2, 2], [0, 0, 0, 0]) },
  {
    name: 'avgPool2d 3x3 stride 2 pad 1', inputs: [x('x', [1, 2, 5, 5])],
    forward: (a) => F.avgPool2d(a, 3, { stride: 2, padding: 1 }), reference: (a) => R.pool2d(a, 'avg', [3, 3], [2, 2], [1, 1, 1, 1]),
  },
  {
    name: 'avgPool2d 3x3 stride 1 pad 1 counting the padding', inputs: [x('x', [1, 1, 4, 4])],
    forward: (a) => F.avgPool2d(a, 3, { stride: 1, padding: 1, countIncludePad: true }), reference: (a) => R.pool2d(a, 'avg', [3, 3], [1, 1], [1, 1, 1, 1], false, true),
  },
  { name: 'globalAvgPool', inputs: [x('x', [2, 3, 3, 4])], forward: F.globalAvgPool, reference: (a) => R.reduce(a, [2, 3], true, 'mean') },
  { name: 'global max pool', inputs: [x('x', [2, 3, 3, 3])], forward: (a) => a.builder.op('GlobalMaxPool', [a], {}, 'gmp'), reference: (a) => R.reduce(a, [2, 3], true, 'max') },
  {
    name: 'batchNorm training mode (batch statistics)',
    inputs: [x('x', [3, 2, 2, 3]), x('scale', [2]), x('bias', [2]), { name: 'mean', shape: [2], values: [0, 0], dtype: 'float32' }],
    forward: (a, s, b) => {
      const bld = a.builder;
      const [y] = bld.emit('BatchNormalization', [a, s, b, bld.constant(zeros(a.dtype, 2)), bld.constant(ones(a.dtype, 2))],
        { epsilon: { type: 'float', value: 1e-3 }, momentum: { type: 'float', value: 0.9 }, training_mode: 1 }, { op: 'batchNorm', outputs: 3 });
      return y!;
    },
    reference: (a, s, b) => {
      const stats = R.channelStats(a);
      return R.batchNorm(a, s, b, stats.mean, stats.variance, 1e-3);
    },
  },
  {
    name: 'batchNorm eval mode (running statistics)',
    inputs: [x('x', [2, 2, 3, 3]), x('scale', [2]), x('bias', [2]), x('rmean', [2]), x('rvar', [2], pos)],
    forward: (a, s, b, m, v) => a.builder.op('BatchNormalization', [a, s, b, m, v], { epsilon: { type: 'float', value: 1e-3 } }, 'batchNorm'),
    reference: (a, s, b, m, v) => R.batchNorm(a, s, b, m, v, 1e-3),
  },
  { name: 'flatten', inputs: [x('x', [2, 3, 2])], forward: (a) => F.flatten(a) },
  { name: 'reshape', inputs: [x('x', [2, 6])], forward: (a) => F.reshape(a, [3, -1]) },
  { name: 'transpose', inputs: [x('x', [2, 3, 4])], forward: (a) => F.transpose(a, [2, 0, 1]) },
  { name: 'concat of two inputs', inputs: [x('a', [2, 3]), x('b', [2, 2])], forward: (a, b) => F.concat([a, b], 1) },
  { name: 'split, one output unused', inputs: [x('a', [5, 2])], forward: (a) => F.split(a, [2, 3], 0)[1]! },
  { name: 'split, both outputs used', inputs: [x('a', [4, 2])], forward: (a) => { const [p, q] = F.split(a, 2, 0); return F.mul(p!, q!); } },
  { name: 'slice with unit steps', inputs: [x('a', [4, 5])], forward: (a) => F.slice(a, [1, 1], [3, 100]) },
  { name: 'slice with a negative step', inputs: [x('a', [3, 6])], forward: (a) => F.slice(a, [-1], [0], [1], [-2]) },
  {
    name: 'gather rows with repeated indices (embedding)', inputs: [x('table', [5, 3]), { name: 'idx', shape: [2, 3], values: [0, 4, 4, 1, 4, -1], dtype: 'int64' }],
    forward: (t, i) => F.gather(t, i),
  },
  {
    name: 'gather along axis 1', inputs: [x('t', [2, 4, 3]), { name: 'idx', shape: [3], values: [3, 1, 3], dtype: 'int64' }],
    forward: (t, i) => F.gather(t, i, 1),
  },
  { name: 'unsqueeze and squeeze', inputs: [x('a', [3, 2])], forward: (a) => F.squeeze(F.mul(F.unsqueeze(a, [0]), 2), [0]) },
  { name: 'expand', inputs: [x('a', [3, 1])], forward: (a) => F.expand(a, [2, 3, 4]) },
  { name: 'reduceSum over an axis, keepdims', inputs: [x('a', [2, 3, 4])], forward: (a) => F.reduceSum(a, [1]) },
  { name: 'reduceSum over all, no keepdims', inputs: [x('a', [2, 3])], forward: (a) => F.mul(F.reduceSum(a, undefined, false), F.reduceSum(a, undefined, false)) },
  { name: 'reduceMean over axes, no keepdims', inputs: [x('a', [2, 3, 4])], forward: (a) => F.reduceMean(a, [0, 2], false) },
  { name: 'reduceSumSquare', inputs: [x('a', [2, 3, 2])], forward: (a) => a.builder.op('ReduceSumSquare', [a], { axes: [0, 2], keepdims: 0 }, 'rss') },
  { name: 'reduceMax', inputs: [x('a', [3, 4])], forward: (a) => F.reduceMax(a, [1]) },
  { name: 'clip', inputs: [x('a', [12])], forward: (a) => F.clip(a, -0.5, 0.7) },
  { name: 'clip with only a lower bound', inputs: [x('a', [12])], forward: (a) => F.clip(a, -0.2) },
  { name: 'clip with only an upper bound', inputs: [x('a', [12])], forward: (a) => F.clip(a, undefined, 0.3) },
  // ONNX's Clip with min above max gives max everywhere: no gradient (the rule's one-mask form assumes min <= max).
  { name: 'clip with min above max', inputs: [x('a', [12])], forward: (a) => F.mul(F.clip(a, 0.7, -0.5), a) },
  { name: 'identity', inputs: [x('a', [4])], forward: F.identity },
  { name: 'cast between float types', inputs: [x('a', [4])], forward: (a) => F.cast(F.cast(a, 'float64'), 'float32'), dtype: 'float32', reference: (a) => a },
  { name: 'where', inputs: [x('c', [2, 3]), x('a', [3]), x('b', [2, 1])], forward: (c, a, b) => F.where(F.greater(c, 0), F.mul(a, c), b) },
  {
    name: 'cross-entropy with ignore index and label smoothing', inputs: [x('logits', [4, 3]), labels('y', [2, -100, 0, 1])],
    forward: (z, y) => L.crossEntropy(z, y, { labelSmoothing: 0.1 }),
  },
  { name: 'cross-entropy, plain', inputs: [x('logits', [5, 4]), labels('y', [3, 0, 0, 2, 1])], forward: (z, y) => L.crossEntropy(z, y) },
  { name: 'mse loss', inputs: [x('p', [3, 2]), x('t', [3, 2])], forward: L.mseLoss },
  { name: 'bce with logits', inputs: [x('z', [6]), { name: 't', shape: [6], values: [0, 1, 1, 0, 0.3, 1], dtype: 'float32' }], forward: L.bceWithLogits, dtype: 'float32',
    reference: (z, t) => ({ shape: [], data: [R.zipWith([z, t], (v, y) => Math.max(v, 0) - v * y + Math.log1p(Math.exp(-Math.abs(v)))).data.reduce((p, q) => p + q, 0) / z.data.length] }),
  },
];

function zeros(dtype: string, n: number): TensorData {
  return TensorData.fromArray(dtype as 'float32', [n], new Array<number>(n).fill(0));
}
function ones(dtype: string, n: number): TensorData {
  return TensorData.fromArray(dtype as 'float32', [n], new Array<number>(n).fill(1));
}

const float32Cases: string[] = [];

describe('gradient rules agree with finite differences', () => {
  afterAll(() => {
    // onnxruntime's CPU provider lacks float64 kernels for these; they were checked in float32 with its tolerances.
    if (float32Cases.length > 0) console.log(`checked in float32: ${float32Cases.join('; ')}`);
  });

  test.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const report = await gradCheck(c.inputs, c.forward, { dtype: c.dtype });
    if (report.dtype === 'float32') float32Cases.push(c.name);
    if (!report.ok) console.log(c.name, report);
    expect(report.ok).toBe(true);
    expect(report.checked).toBeGreaterThan(0);
  });

  test('ONNX Dropout (training mode) reuses its forward mask in the backward pass', async () => {
    // Dropout draws a new mask on every run, so finite differences cannot check it; instead the gradient of
    // sum(dropout(x) * r) must be exactly r * mask / (1 - p), with the mask read off the same run's output.
    const { b, xIn, y, mask, loss } = onnxDropoutGraph();
    const [gx] = gradients(loss, [xIn]);
    b.output('y', y);
    b.output('mask', mask);
    b.output('gx', gx!);
    const session = await ort.InferenceSession.create(encodeModel(b.toModel()));
    const rv = Float32Array.from({ length: 2000 }, (_, i) => (i % 5) - 2);
    const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from({ length: 2000 }, (_, i) => 1 + (i % 7)), [50, 40]), r: new ort.Tensor('float32', rv, [50, 40]) });
    const kept = out.mask!.data as Uint8Array;
    const gv = out.gx!.data as Float32Array;
    let dropped = 0;
    for (let i = 0; i < 2000; i++) {
      if (!kept[i]) dropped++;
      expect(gv[i]).toBeCloseTo(kept[i] ? rv[i]! / 0.75 : 0, 5);
    }
    expect(dropped).toBeGreaterThan(400);
    expect(dropped).toBeLessThan(600);
  });

  test('the DSL\'s dropout (noise input) passes the gradient through the kept elements only', async () => {
    const { b, xIn, loss } = dslDropoutGraph();
    const [gx] = gradients(loss, [xIn]);
    b.output('gx', gx!);
    const session = await ort.InferenceSession.create(encodeModel(b.toModel()));
    const u = Float32Array.from({ length: 40 }, (_, i) => (i * 0.37) % 1);
    const out = await session.run({ x: new ort.Tensor('float32', new Float32Array(40).fill(1), [8, 5]), 'dropout_noise.0': new ort.Tensor('float32', u, [8, 5]) });
    (out.gx!.data as Float32Array).forEach((g, i) => expect(g).toBeCloseTo(u[i]! > 0.5 ? 6 : 0, 6));
  });

  test.each(['float32', 'float64'] as const)('ReLU6 (Clip with constant bounds) in %s passes the gradient strictly inside its bounds, read from its output', async (dtype) => {
    // As PyTorch's ReLU6 and hardtanh (and this project's Relu): zero at the bounds themselves and for NaN. The
    // rule reads y only, so that the Conv before it can compute the Clip in its own kernel (lower-conv-nchwc.ts).
    const b = new GraphBuilder('relu6-bounds', 'train');
    const xIn = b.input('x', dtype, [9]);
    const r = b.input('r', dtype, [9]);
    const y = b.run(() => F.clip(xIn, 0, 6));
    const loss = b.run(() => F.reduceSum(F.mul(y, r)));
    const [gx] = gradients(loss, [xIn]);
    b.output('gx', gx!);
    const clipReaders = b.toModel().graph.nodes.filter((n) => n.inputs.some((v) => v?.name === xIn.name));
    expect(clipReaders.map((n) => n.opType)).toEqual(['Clip']);
    const session = await ort.InferenceSession.create(encodeModel(b.toModel()));
    const Typed = dtype === 'float32' ? Float32Array : Float64Array;
    const xs = [-1, 0, 1e-30, 0.5, 3, 5.999999, 6, 7, NaN];
    const out = await session.run({ x: new ort.Tensor(dtype, Typed.from(xs), [9]), r: new ort.Tensor(dtype, new Typed(9).fill(2), [9]) });
    expect([...(out.gx!.data as Float32Array | Float64Array)]).toEqual([0, 0, 2, 2, 2, 2, 0, 0, 0]);
  });

  test('every case that could only be checked in float32 also has a float64 reference', () => {
    expect(float32Cases.filter((name) => cases.find((c) => c.name === name)!.reference === undefined)).toEqual([]);
  });

  test('every op with a gradient rule is differentiated by at least one case (read from the graphs the cases build)', () => {
    const differentiable = (Object.keys(GRADIENT_RULES) as OpType[]).filter((op) => GRADIENT_RULES[op] !== NO_GRADIENT);
    const covered = new Set<string>();
    for (const c of cases) {
      const b = new GraphBuilder('coverage', 'train');
      const tensors = c.inputs.map((spec) => b.input(spec.name, isData(spec) ? spec.dtype! : 'float32', spec.shape));
      const result = b.run(() => c.forward(...tensors));
      for (const op of differentiatedOps(tensors.filter((_, k) => !isData(c.inputs[k]!)), result)) covered.add(op);
    }
    for (const { xIn, loss } of [onnxDropoutGraph(), dslDropoutGraph()]) for (const op of differentiatedOps([xIn], loss)) covered.add(op);
    expect(differentiable.filter((op) => !covered.has(op))).toEqual([]);
  });
});

describe('float32 gradients equal float64 reference gradients', () => {
  // Finite differences in float32 can only be trusted to ~5e-3 relative (gradCheck's float32 tolerance), too loose to
  // catch a rule that is off by a small term. Here the rule's float32 result for a random upstream gradient is compared
  // with d/dx sum(reference(x) * upstream) in float64: what remains is float32 rounding, ~1e-6 of the gradient's
  // largest element for these sizes (measured worst 2e-7), so 1e-5 leaves a 50x margin and still fails a wrong rule.
  const TOLERANCE = 1e-5;
  let worstRelative = 0;
  afterAll(() => console.log(`float32 against float64 references: worst relative error ${worstRelative.toExponential(1)} (allowed ${TOLERANCE})`));
  test.each(cases.filter((c) => c.reference !== undefined).map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const values = c.inputs.map((spec, k): Arr => (spec.values !== undefined
      ? { shape: spec.shape, data: spec.values.map((v) => (isData(spec) ? v : Math.fround(v))) }
      : randn(spec.shape, 10 + k, spec.transform)));
    const b = new GraphBuilder('reference', 'train');
    const tensors = c.inputs.map((spec) => b.input(spec.name, isData(spec) ? spec.dtype! : 'float32', spec.shape));
    const out = b.run(() => c.forward(...tensors));
    const upstream = randn(out.shape as number[], 99);
    const r = b.input('upstream', 'float32', out.shape);
    const loss = b.run(() => F.reduceSum(F.mul(out, r), undefined, false));
    const wrt = c.inputs.map((_, k) => k).filter((k) => !isData(c.inputs[k]!));
    gradients(loss, wrt.map((k) => tensors[k]!)).forEach((g, i) => b.output(`grad${i}`, g));
    const session = await ort.InferenceSession.create(encodeModel(b.toModel()));
    const feeds: Record<string, ort.Tensor> = { upstream: new ort.Tensor('float32', Float32Array.from(upstream.data), upstream.shape) };
    c.inputs.forEach((spec, k) => {
      feeds[spec.name] = isData(spec)
        ? new ort.Tensor('int64', BigInt64Array.from(values[k]!.data.map(BigInt)), spec.shape)
        : new ort.Tensor('float32', Float32Array.from(values[k]!.data), spec.shape);
    });
    const got = await session.run(feeds);
    await session.release();
    const want = R.numericGradients(c.reference!, values, upstream, wrt);
    const failures: string[] = [];
    wrt.forEach((k, i) => {
      const g = got[`grad${i}`]!.data as Float32Array;
      const w = want[i]!.data;
      const scale = Math.max(...w.map(Math.abs));
      const error = Math.max(...w.map((v, e) => Math.abs(v - g[e]!)));
      // Relative to the largest element; an input the result does not depend on (zero gradient) is compared absolutely.
      const relative = error / Math.max(scale, 1e-3);
      worstRelative = Math.max(worstRelative, relative);
      if (!(relative <= TOLERANCE)) failures.push(`${c.inputs[k]!.name}: max |float32 - float64 reference| = ${error} with largest element ${scale}`);
    });
    expect(failures).toEqual([]);
  });
});

function isData(spec: GradCheckInput): boolean {
  return spec.dtype !== undefined && spec.dtype !== 'float32' && spec.dtype !== 'float64';
}

/**
 * The op types whose gradient rules a case exercises: nodes with a floating-point output that depends on one of the
 * differentiated inputs and reaches the result (the nodes gradients() visits), read from the built graph.
 */
function differentiatedOps(inputs: Tensor[], result: Tensor): Set<string> {
  const dependent = new Set(inputs.map((t) => t.value));
  const nodes = [...result.builder.graph.nodes];
  for (const node of nodes) {
    if (node.inputs.some((v) => v !== undefined && dependent.has(v))) for (const o of node.outputs) if (o) dependent.add(o);
  }
  const reaching = new Set([result.value]);
  const ops = new Set<string>();
  for (const node of [...nodes].reverse() as Node[]) {
    const outs = node.outputs.filter((o) => o !== undefined && reaching.has(o));
    if (outs.length === 0) continue;
    for (const v of node.inputs) if (v) reaching.add(v);
    if (outs.some((o) => dependent.has(o!) && isFloatingDType(o!.dtype!))) ops.add(node.opType);
  }
  return ops;
}

/** sum(Dropout(x) * r) with ONNX's training-mode Dropout (mask output). */
function onnxDropoutGraph() {
  const b = new GraphBuilder('dropout', 'train');
  const xIn = b.input('x', 'float32', [50, 40]);
  const r = b.input('r', 'float32', [50, 40]);
  const [y, mask] = b.run(() => b.emit('Dropout', [xIn, b.scalar(0.25), b.constant(TensorData.fromArray('bool', [], [1]))], {}, { op: 'dropout', outputs: 2 }));
  const loss = b.run(() => F.reduceSum(F.mul(y!, r), undefined, false));
  return { b, xIn, y: y!, mask: mask!, loss };
}

/** sum(3 * dropout(x)) with the DSL's dropout (a noise input). */
function dslDropoutGraph() {
  const b = new GraphBuilder('dropout', 'train');
  const xIn = b.input('x', 'float32', [8, 5]);
  const loss = b.run(() => F.reduceSum(F.mul(F.dropout(xIn, 0.5), 3), undefined, false));
  return { b, xIn, loss };
}

describe('what a gradient rule cannot do is one clear error naming the node', () => {
  test('a Slice whose starts are computed when the graph runs', () => {
    const b = new GraphBuilder('computed_slice');
    const x = b.input('x', 'float32', [4, 3]);
    const k = b.input('k', 'int64', [1]);
    const loss = b.run(() => F.reduceSum(b.op('Slice', [x, k, b.constant(TensorData.int64([1], [4])), b.constant(TensorData.int64([1], [0]))], {}, 'slice'), undefined, false));
    expect(() => gradients(loss, [x])).toThrow(/^Slice '.*': its gradient needs starts \(input 1\) known when the graph is built, and it is computed$/);
  });
});
