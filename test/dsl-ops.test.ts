/**
 * Every functional DSL op, run in onnxruntime-node, against an independent plain-TypeScript reference.
 * One row per case; the meta-test at the end fails when an op of the DSL has no row.
 */
import * as F from '../src/dsl/functional';
import type { BuildMode } from '../src/dsl/builder';
import type { Tensor } from '../src/dsl/builder';
import * as R from './support/reference';
import { Arr } from './support/reference';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onnxCheck } from './support/onnx-checker';
import { buildDsl, Feed, maxAbsDiff, runDsl } from './support/ort-run';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../src/dsl/builder';
import { encodeModel } from '../src/onnx/write';
import { Rng } from '../src/util/rng';
import { ints, randn } from './support/random';

interface OpCase {
  op: keyof typeof F;
  name: string;
  feeds: Feed[];
  run: (...t: Tensor[]) => Tensor | Tensor[];
  expect: (...a: Arr[]) => Arr | Arr[];
  tol?: number;
  mode?: BuildMode;
  /** Values the expected output must contain, so that the inputs exercise each outcome (true and false). */
  outcomes?: number[];
}

const x = (shape: number[], seed = 1, transform?: (v: number) => number): Feed => ({ name: `x${seed}`, value: randn(shape, seed, transform) });
const pos = (v: number) => Math.abs(v) + 0.1;
const erf = (v: number) => {
  // Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7).
  const t = 1 / (1 + 0.3275911 * Math.abs(v));
  const y = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-v * v);
  return Math.sign(v) * y;
};

const unaryCases: [keyof typeof F, (v: number) => number, ((v: number) => number)?][] = [
  ['relu', (v) => Math.max(0, v)],
  ['sigmoid', (v) => 1 / (1 + Math.exp(-v))],
  ['tanh', Math.tanh],
  ['neg', (v) => -v],
  ['exp', Math.exp],
  ['log', Math.log, pos],
  ['sqrt', Math.sqrt, pos],
  ['abs', Math.abs],
  ['reciprocal', (v) => 1 / v, pos],
  ['erf', erf],
  ['identity', (v) => v],
  ['sign', Math.sign],
];

const binaryCases: [keyof typeof F, (a: number, b: number) => number][] = [
  ['add', (a, b) => a + b],
  ['sub', (a, b) => a - b],
  ['mul', (a, b) => a * b],
  ['div', (a, b) => a / b],
  ['maximum', Math.max],
  ['minimum', Math.min],
];

// Comparisons run on whole numbers (-3..3), where equal elements are common: on random floats nothing is ever equal,
// and an `equal` that always answered false would pass. Each case must produce both outcomes (`outcomes`).
const comparisonCases: [keyof typeof F, (a: number, b: number) => number][] = [
  ['equal', (a, b) => (a === b ? 1 : 0)],
  ['less', (a, b) => (a < b ? 1 : 0)],
  ['greater', (a, b) => (a > b ? 1 : 0)],
];
const whole = (v: number) => Math.round(1.5 * v);

const convOpts = (stride: [number, number], pads: number[], dilation: [number, number], groups: number) => ({ stride, pads, dilation, groups });

const cases: OpCase[] = [
  ...unaryCases.map(([op, f, transform]): OpCase => ({
    op, name: `${op} elementwise`, feeds: [x([2, 3, 4], 1, transform)],
    run: (t) => (F[op] as (x: Tensor) => Tensor)(t), expect: (a) => R.map(a, f), tol: 1e-5,
  })),
  ...binaryCases.map(([op, f]): OpCase => ({
    op, name: `${op} with broadcasting [2,3,4] x [3,1]`, feeds: [x([2, 3, 4], 1), x([3, 1], 2, pos)],
    run: (a, b) => (F[op] as (a: Tensor, b: Tensor) => Tensor)(a, b), expect: (a, b) => R.zipWith([a, b], f), tol: 1e-5,
  })),
  ...comparisonCases.map(([op, f]): OpCase => ({
    op, name: `${op} on whole numbers with broadcasting [2,3,4] x [3,1]`, feeds: [x([2, 3, 4], 1, whole), x([3, 1], 2, whole)],
    run: (a, b) => (F[op] as (a: Tensor, b: Tensor) => Tensor)(a, b), expect: (a, b) => R.zipWith([a, b], f), outcomes: [0, 1],
  })),
  { op: 'add', name: 'add a number', feeds: [x([4], 1)], run: (a) => F.add(a, 2.5), expect: (a) => R.map(a, (v) => v + 2.5), tol: 1e-6 },
  { op: 'mul', name: 'mul a number on the left', feeds: [x([4], 1)], run: (a) => F.mul(3, a), expect: (a) => R.map(a, (v) => 3 * v), tol: 1e-6 },
  { op: 'pow', name: 'pow with a scalar exponent', feeds: [x([5], 1, pos)], run: (a) => F.pow(a, 1.5), expect: (a) => R.map(a, (v) => v ** 1.5), tol: 1e-5 },
  { op: 'leakyRelu', name: 'leakyRelu slope 0.2', feeds: [x([10], 1)], run: (a) => F.leakyRelu(a, 0.2), expect: (a) => R.map(a, (v) => (v > 0 ? v : 0.2 * v)), tol: 1e-6 },
  { op: 'softmax', name: 'softmax last axis', feeds: [x([2, 5], 1)], run: (a) => F.softmax(a), expect: (a) => R.softmax(a, -1), tol: 1e-6 },
  { op: 'softmax', name: 'softmax axis 1 of 3', feeds: [x([2, 3, 4], 1)], run: (a) => F.softmax(a, 1), expect: (a) => R.softmax(a, 1), tol: 1e-6 },
  { op: 'logSoftmax', name: 'logSoftmax', feeds: [x([3, 7], 1)], run: (a) => F.logSoftmax(a), expect: (a) => R.softmax(a, -1, true), tol: 1e-5 },
  { op: 'matmul', name: 'matmul 2-D', feeds: [x([3, 4], 1), x([4, 5], 2)], run: F.matmul, expect: R.matmul, tol: 1e-5 },
  { op: 'matmul', name: 'matmul with broadcast batch', feeds: [x([2, 1, 3, 4], 1), x([3, 4, 2], 2)], run: F.matmul, expect: R.matmul, tol: 1e-5 },
  { op: 'matmul', name: 'matmul vector @ matrix', feeds: [x([4], 1), x([4, 3], 2)], run: F.matmul, expect: R.matmul, tol: 1e-5 },
  { op: 'matmul', name: 'matmul matrix @ vector', feeds: [x([3, 4], 1), x([4], 2)], run: F.matmul, expect: R.matmul, tol: 1e-5 },
  {
    op: 'linear', name: 'linear on a matrix (Gemm)', feeds: [x([3, 4], 1), x([5, 4], 2), x([5], 3)], run: (a, w, b) => F.linear(a, w, b),
    expect: (a, w, b) => R.zipWith([R.matmul(a, R.transpose(w)), b], (u, v) => u + v), tol: 1e-5,
  },
  {
    op: 'linear', name: 'linear on rank 3, no bias (MatMul)', feeds: [x([2, 3, 4], 1), x([5, 4], 2)], run: (a, w) => F.linear(a, w),
    expect: (a, w) => R.matmul(a, R.transpose(w)), tol: 1e-5,
  },
  {
    op: 'conv2d', name: 'conv2d 3x3 pad 1 with bias', feeds: [x([2, 3, 5, 5], 1), x([4, 3, 3, 3], 2), x([4], 3)],
    run: (a, w, b) => F.conv2d(a, w, b, { padding: 1 }), expect: (a, w, b) => R.conv2d(a, w, b, convOpts([1, 1], [1, 1, 1, 1], [1, 1], 1)), tol: 1e-4,
  },
  {
    op: 'conv2d', name: 'conv2d stride 2, asymmetric pads', feeds: [x([1, 2, 7, 6], 1), x([3, 2, 3, 2], 2)],
    run: (a, w) => F.conv2d(a, w, undefined, { stride: [2, 2], padding: [1, 0, 0, 1] }), expect: (a, w) => R.conv2d(a, w, undefined, convOpts([2, 2], [1, 0, 0, 1], [1, 1], 1)), tol: 1e-4,
  },
  {
    op: 'conv2d', name: 'conv2d dilation 2', feeds: [x([1, 2, 7, 7], 1), x([2, 2, 3, 3], 2)],
    run: (a, w) => F.conv2d(a, w, undefined, { dilation: 2, padding: 2 }), expect: (a, w) => R.conv2d(a, w, undefined, convOpts([1, 1], [2, 2, 2, 2], [2, 2], 1)), tol: 1e-4,
  },
  {
    op: 'conv2d', name: 'conv2d groups 2', feeds: [x([2, 4, 5, 5], 1), x([6, 2, 3, 3], 2), x([6], 3)],
    run: (a, w, b) => F.conv2d(a, w, b, { groups: 2, stride: 2, padding: 1 }), expect: (a, w, b) => R.conv2d(a, w, b, convOpts([2, 2], [1, 1, 1, 1], [1, 1], 2)), tol: 1e-4,
  },
  { op: 'maxPool2d', name: 'maxPool2d 2x2', feeds: [x([2, 3, 6, 6], 1)], run: (a) => F.maxPool2d(a, 2), expect: (a) => R.pool2d(a, 'max', [2, 2], [2, 2], [0, 0, 0, 0]) },
  {
    op: 'maxPool2d', name: 'maxPool2d 3x3 stride 2 pad 1', feeds: [x([1, 2, 7, 7], 1)], run: (a) => F.maxPool2d(a, 3, { stride: 2, padding: 1 }),
    expect: (a) => R.pool2d(a, 'max', [3, 3], [2, 2], [1, 1, 1, 1]),
  },
  {
    op: 'maxPool2d', name: 'maxPool2d ceil mode', feeds: [x([1, 1, 5, 5], 1)], run: (a) => F.maxPool2d(a, 2, { ceilMode: true }),
    expect: (a) => R.pool2d(a, 'max', [2, 2], [2, 2], [0, 0, 0, 0], true),
  },
  { op: 'avgPool2d', name: 'avgPool2d 2x2', feeds: [x([2, 3, 4, 4], 1)], run: (a) => F.avgPool2d(a, 2), expect: (a) => R.pool2d(a, 'avg', [2, 2], [2, 2], [0, 0, 0, 0]), tol: 1e-6 },
  {
    op: 'avgPool2d', name: 'avgPool2d 3x3 pad 1 (padding not counted)', feeds: [x([1, 2, 5, 5], 1)], run: (a) => F.avgPool2d(a, 3, { stride: 1, padding: 1 }),
    expect: (a) => R.pool2d(a, 'avg', [3, 3], [1, 1], [1, 1, 1, 1]), tol: 1e-6,
  },
  { op: 'globalAvgPool', name: 'globalAvgPool', feeds: [x([2, 3, 4, 5], 1)], run: F.globalAvgPool, expect: (a) => R.reduce(a, [2, 3], true, 'mean'), tol: 1e-6 },
  {
    op: 'batchNorm', name: 'batchNorm eval (running statistics)', feeds: [x([2, 3, 4, 4], 1), x([3], 2), x([3], 3), x([3], 4), x([3], 5, pos)],
    run: (a, w, b, m, v) => F.batchNorm(a, { weight: w, bias: b, runningMean: m, runningVar: v }),
    expect: (a, w, b, m, v) => R.batchNorm(a, w, b, m, v, 1e-5), tol: 1e-5,
  },
  {
    op: 'batchNorm', name: 'batchNorm train (batch statistics)', mode: 'train', feeds: [x([4, 3, 3, 3], 1), x([3], 2), x([3], 3), x([3], 4), x([3], 5, pos)],
    run: (a, w, b, m, v) => F.batchNorm(a, { weight: w, bias: b, runningMean: m, runningVar: v, eps: 1e-3 }),
    expect: (a, w, b) => {
      const s = R.channelStats(a);
      return R.batchNorm(a, w, b, s.mean, s.variance, 1e-3);
    },
    tol: 1e-4,
  },
  { op: 'dropout', name: 'dropout is the identity in eval graphs', feeds: [x([3, 4], 1)], run: (a) => F.dropout(a, 0.5), expect: (a) => a },
  { op: 'flatten', name: 'flatten axis 1', feeds: [x([2, 3, 2, 2], 1)], run: (a) => F.flatten(a), expect: (a) => ({ shape: [2, 12], data: a.data }) },
  { op: 'flatten', name: 'flatten axis 2', feeds: [x([2, 3, 2, 2], 1)], run: (a) => F.flatten(a, 2), expect: (a) => ({ shape: [6, 4], data: a.data }) },
  { op: 'reshape', name: 'reshape with 0 and -1', feeds: [x([2, 3, 4], 1)], run: (a) => F.reshape(a, [0, -1, 2]), expect: (a) => ({ shape: [2, 6, 2], data: a.data }) },
  { op: 'transpose', name: 'transpose perm', feeds: [x([2, 3, 4], 1)], run: (a) => F.transpose(a, [1, 2, 0]), expect: (a) => R.transpose(a, [1, 2, 0]) },
  { op: 'transpose', name: 'transpose default (reverse)', feeds: [x([2, 3], 1)], run: (a) => F.transpose(a), expect: (a) => R.transpose(a) },
  { op: 'concat', name: 'concat axis 1', feeds: [x([2, 1, 3], 1), x([2, 2, 3], 2)], run: (a, b) => F.concat([a, b], 1), expect: (a, b) => R.concat([a, b], 1) },
  {
    op: 'split', name: 'split into sizes', feeds: [x([2, 5], 1)], run: (a) => F.split(a, [2, 3], 1),
    expect: (a) => [R.slice(a, [0], [2], [1], [1]), R.slice(a, [2], [5], [1], [1])],
  },
  {
    op: 'split', name: 'split into equal parts', feeds: [x([4, 3], 1)], run: (a) => F.split(a, 2, 0),
    expect: (a) => [R.slice(a, [0], [2], [0], [1]), R.slice(a, [2], [4], [0], [1])],
  },
  { op: 'slice', name: 'slice with clamped end', feeds: [x([4, 6], 1)], run: (a) => F.slice(a, [1, 2], [3, 100]), expect: (a) => R.slice(a, [1, 2], [3, 100], [0, 1], [1, 1]) },
  {
    op: 'slice', name: 'slice negative step on one axis', feeds: [x([4, 6], 1)], run: (a) => F.slice(a, [-1], [0], [1], [-2]),
    expect: (a) => R.slice(a, [-1], [0], [1], [-2]),
  },
  {
    op: 'gather', name: 'gather rows with repeated indices', feeds: [x([5, 3], 1), { name: 'idx', dtype: 'int64', value: ints([2, 3], [0, 4, 4, 1, 0, 2]) }],
    run: (a, i) => F.gather(a, i), expect: (a, i) => R.gather(a, i, 0),
  },
  {
    op: 'gather', name: 'gather axis 1', feeds: [x([2, 4, 3], 1), { name: 'idx', dtype: 'int64', value: ints([2], [3, -1]) }],
    run: (a, i) => F.gather(a, i, 1), expect: (a, i) => R.gather(a, i, 1),
  },
  { op: 'reduceMean', name: 'reduceMean axes [1, 2] keepdims', feeds: [x([2, 3, 4], 1)], run: (a) => F.reduceMean(a, [1, 2]), expect: (a) => R.reduce(a, [1, 2], true, 'mean'), tol: 1e-6 },
  { op: 'reduceMean', name: 'reduceMean all axes, no keepdims', feeds: [x([2, 3], 1)], run: (a) => F.reduceMean(a, undefined, false), expect: (a) => R.reduce(a, [], false, 'mean'), tol: 1e-6 },
  { op: 'reduceSum', name: 'reduceSum axis -1', feeds: [x([2, 3, 4], 1)], run: (a) => F.reduceSum(a, [-1], false), expect: (a) => R.reduce(a, [-1], false, 'sum'), tol: 1e-5 },
  { op: 'reduceSum', name: 'reduceSum all axes', feeds: [x([2, 3], 1)], run: (a) => F.reduceSum(a), expect: (a) => R.reduce(a, [], true, 'sum'), tol: 1e-5 },
  { op: 'reduceMax', name: 'reduceMax axis 0', feeds: [x([3, 4], 1)], run: (a) => F.reduceMax(a, [0]), expect: (a) => R.reduce(a, [0], true, 'max') },
  { op: 'clip', name: 'clip to [-0.5, 0.5]', feeds: [x([10], 1)], run: (a) => F.clip(a, -0.5, 0.5), expect: (a) => R.map(a, (v) => Math.min(0.5, Math.max(-0.5, v))) },
  { op: 'clip', name: 'clip with only a minimum', feeds: [x([10], 1)], run: (a) => F.clip(a, 0), expect: (a) => R.map(a, (v) => Math.max(0, v)) },
  { op: 'cast', name: 'cast float32 -> int64 truncates', feeds: [x([8], 1, (v) => v * 3)], run: (a) => F.cast(a, 'int64'), expect: (a) => R.map(a, Math.trunc) },
  {
    op: 'cast', name: 'cast int64 -> float32', feeds: [{ name: 'i', dtype: 'int64', value: ints([3], [-2, 0, 7]) }], run: (a) => F.cast(a, 'float32'),
    expect: (a) => a,
  },
  {
    op: 'where', name: 'where with broadcasting', feeds: [x([2, 3], 1), x([3], 2), x([2, 1], 3)],
    run: (c, a, b) => F.where(F.greater(c, 0), a, b), expect: (c, a, b) => R.zipWith([c, a, b], (cv, av, bv) => (cv > 0 ? av : bv)),
  },
  { op: 'unsqueeze', name: 'unsqueeze axes [0, -1]', feeds: [x([2, 3], 1)], run: (a) => F.unsqueeze(a, [0, -1]), expect: (a) => ({ shape: [1, 2, 3, 1], data: a.data }) },
  { op: 'squeeze', name: 'squeeze axis 1', feeds: [x([2, 1, 3], 1)], run: (a) => F.squeeze(a, [1]), expect: (a) => ({ shape: [2, 3], data: a.data }) },
  { op: 'squeeze', name: 'squeeze all size-1 axes', feeds: [x([1, 3, 1], 1)], run: (a) => F.squeeze(a), expect: (a) => ({ shape: [3], data: a.data }) },
  { op: 'expand', name: 'expand [3, 1] to [2, 3, 4]', feeds: [x([3, 1], 1)], run: (a) => F.expand(a, [2, 3, 4]), expect: (a) => R.zipWith([a, { shape: [2, 3, 4], data: new Array(24).fill(0) }], (v) => v) },
];

describe('DSL ops in onnxruntime-node equal the plain TypeScript reference', () => {
  test.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const got = await runDsl(c.feeds, c.run, c.mode);
    const want = c.expect(...c.feeds.map((f) => f.value));
    const wants = Array.isArray(want) ? want : [want];
    expect(got).toHaveLength(wants.length);
    for (const v of c.outcomes ?? []) expect(wants.some((w) => w.data.includes(v))).toBe(true);
    wants.forEach((w, i) => {
      expect(got[i]!.shape).toEqual(w.shape);
      expect(maxAbsDiff(got[i]!, w)).toBeLessThanOrEqual(c.tol ?? 0);
    });
  });

  test('dropout in a training graph keeps the elements whose noise exceeds p, scaled by 1/(1-p)', async () => {
    const b = new GraphBuilder('dropout', 'train');
    const xIn = b.input('x', 'float32', [100, 100]);
    b.output('y', b.run(() => F.dropout(xIn, 0.3)));
    expect(b.graph.inputs.map((v) => v.name)).toEqual(['x', 'dropout_noise.0']);
    const session = await ort.InferenceSession.create(encodeModel(b.toModel()));
    const x = randn([100, 100], 7, pos);
    const noise = new Rng(3);
    const u = Float32Array.from({ length: 10000 }, () => noise.next());
    const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from(x.data), [100, 100]), 'dropout_noise.0': new ort.Tensor('float32', u, [100, 100]) });
    const y = out.y!.data as Float32Array;
    let zeros = 0;
    y.forEach((v, i) => {
      if (u[i]! > 0.3) expect(Math.abs(v - x.data[i]! / 0.7)).toBeLessThan(1e-5);
      else {
        expect(v).toBe(0);
        zeros++;
      }
    });
    expect(zeros / 10000).toBeGreaterThan(0.27);
    expect(zeros / 10000).toBeLessThan(0.33);
  });

  test('every case\'s graph passes onnx.checker (full check)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-ops-'));
    try {
      const files = cases.map((c, i) => {
        const file = path.join(dir, `case${i}.onnx`);
        fs.writeFileSync(file, buildDsl(c.feeds, c.run, c.mode).bytes);
        return file;
      });
      const { ok, report } = onnxCheck(files);
      expect(report).not.toMatch(/FAIL/);
      expect(ok).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('every functional op of the DSL has at least one case', () => {
    const helpers = new Set(['asTensor']);
    const ops = Object.entries(F).filter(([name, v]) => typeof v === 'function' && !helpers.has(name)).map(([name]) => name);
    const covered = new Set(cases.map((c) => c.op as string).concat('dropout'));
    expect(ops.filter((op) => !covered.has(op))).toEqual([]);
  });
});
