/** Optimizer graphs against the formulas of PyTorch's documentation, and against ONNX's own Momentum test cases. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { OptimizerConfig } from '../src/optim/config';
import { buildOptimizerGraph } from '../src/optim/optimizer-graph';
import { learningRateAt } from '../src/optim/schedule';
import { readTensor } from '../src/onnx/read';
import { encodeModel } from '../src/onnx/write';
import { Rng } from '../src/util/rng';

type Vec = number[];

/** One step of the PyTorch formulas in float64, for one parameter. */
function referenceStep(config: OptimizerConfig, p: Vec, g: Vec, state: Vec[], lr: number, t: number): { p: Vec; state: Vec[] } {
  if (config.kind === 'sgd') {
    const wd = config.weightDecay ?? 0;
    const mu = config.momentum ?? 0;
    const damp = config.dampening ?? 0;
    let d = g.map((gi, i) => gi + wd * p[i]!);
    const next: Vec[] = [];
    if (mu > 0) {
      const b = t === 1 ? d : state[0]!.map((bi, i) => mu * bi + (1 - damp) * d[i]!);
      next.push(b);
      d = config.nesterov ? d.map((di, i) => di + mu * b[i]!) : b;
    }
    return { p: p.map((pi, i) => pi - lr * d[i]!), state: next };
  }
  const [b1, b2, eps] = [config.beta1 ?? 0.9, config.beta2 ?? 0.999, config.eps ?? 1e-8];
  const wd = config.weightDecay ?? (config.kind === 'adamw' ? 0.01 : 0);
  let params = p;
  let grad = g;
  if (config.kind === 'adam') grad = g.map((gi, i) => gi + wd * p[i]!);
  else params = p.map((pi) => pi * (1 - lr * wd));
  const m = state[0]!.map((mi, i) => b1 * mi + (1 - b1) * grad[i]!);
  const v = state[1]!.map((vi, i) => b2 * vi + (1 - b2) * grad[i]! ** 2);
  const out = params.map((pi, i) => pi - (lr * (m[i]! / (1 - b1 ** t))) / (Math.sqrt(v[i]! / (1 - b2 ** t)) + eps));
  return { p: out, state: [m, v] };
}

async function runSteps(config: OptimizerConfig, steps: number, clip?: number) {
  const shapes = [[3, 4], [5]];
  const graph = buildOptimizerGraph(shapes.map((shape, i) => ({ name: `p${i}`, shape })), config, { clipGradNorm: clip });
  const session = await ort.InferenceSession.create(encodeModel(graph.model));
  const rng = new Rng(11);
  const vec = (n: number) => Array.from({ length: n }, () => Math.fround(rng.normal()));
  let params = shapes.map((s) => vec(s[0]! * (s[1] ?? 1)));
  const slots = graph.stateNames.length / shapes.length;
  let state = shapes.map((s) => Array.from({ length: slots }, () => new Array<number>(s[0]! * (s[1] ?? 1)).fill(0)));
  let refParams = params.map((p) => [...p]);
  let refState = state.map((s) => s.map((v) => [...v]));
  for (let t = 1; t <= steps; t++) {
    const grads = shapes.map((s) => vec(s[0]! * (s[1] ?? 1)));
    const lr = 0.1 / t;
    const feeds: Record<string, ort.Tensor> = {
      learning_rate: new ort.Tensor('float32', Float32Array.from([lr]), [1]),
      step: new ort.Tensor('int64', BigInt64Array.from([BigInt(t)]), [1]),
    };
    shapes.forEach((s, i) => {
      feeds[`p${i}`] = new ort.Tensor('float32', Float32Array.from(params[i]!), s);
      feeds[`p${i}_grad`] = new ort.Tensor('float32', Float32Array.from(grads[i]!), s);
    });
    graph.stateNames.forEach((name) => {
      const [pi, si] = [Number(name[1]), graph.stateNames.filter((n) => n.startsWith(name.slice(0, 3))).indexOf(name)];
      feeds[name] = new ort.Tensor('float32', Float32Array.from(state[pi]![si]!), shapes[pi]!);
    });
    const out = await session.run(feeds);
    params = shapes.map((_, i) => Array.from(out[`p${i}_updated`]!.data as Float32Array));
    state = shapes.map((_, i) => graph.stateNames.filter((n) => n.startsWith(`p${i}.`)).map((n) => Array.from(out[`${n}_updated`]!.data as Float32Array)));
    let scale = 1;
    if (clip !== undefined) {
      const norm = Math.sqrt(grads.flat().reduce((a, g) => a + g * g, 0));
      scale = Math.min(1, clip / (norm + 1e-6));
    }
    const next = shapes.map((_, i) => referenceStep(config, refParams[i]!, grads[i]!.map((g) => g * scale), refState[i]!, lr, t));
    refParams = next.map((n) => n.p);
    refState = next.map((n) => n.state);
  }
  await session.release();
  return { params, refParams, state, refState };
}

const worst = (a: Vec[], b: Vec[]) => Math.max(...a.flatMap((v, i) => v.map((x, k) => Math.abs(x - b[i]![k]!) / Math.max(1, Math.abs(b[i]![k]!)))));

describe('optimizer graphs follow PyTorch\'s formulas', () => {
  const configs: [string, OptimizerConfig][] = [
    ['SGD', { kind: 'sgd' }],
    ['SGD with momentum and weight decay', { kind: 'sgd', momentum: 0.9, weightDecay: 1e-2 }],
    ['SGD with Nesterov momentum', { kind: 'sgd', momentum: 0.9, nesterov: true }],
    ['SGD with dampening', { kind: 'sgd', momentum: 0.8, dampening: 0.3 }],
    ['Adam with L2 weight decay', { kind: 'adam', weightDecay: 1e-2 }],
    ['AdamW', { kind: 'adamw', beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.05 }],
  ];
  test.each(configs)('%s over 4 steps', async (_name, config) => {
    const r = await runSteps(config, 4);
    expect(worst(r.params, r.refParams)).toBeLessThan(2e-6);
    r.state.forEach((s, i) => expect(worst(s, r.refState[i]!)).toBeLessThan(2e-6));
  });

  test('gradient clipping by global norm scales every gradient by min(1, max / norm)', async () => {
    const r = await runSteps({ kind: 'sgd', momentum: 0.5 }, 3, 0.5);
    expect(worst(r.params, r.refParams)).toBeLessThan(2e-6);
  });

  test('bad hyperparameters are refused', () => {
    expect(() => buildOptimizerGraph([], { kind: 'sgd', nesterov: true })).toThrow('Nesterov momentum needs momentum > 0');
    expect(() => buildOptimizerGraph([], { kind: 'adam', beta1: 1 })).toThrow('beta1 must be in [0, 1)');
  });
});

describe('ONNX Momentum reference cases (Debian libonnx-testdata) match the SGD graph', () => {
  const root = '/usr/share/libonnx-testdata/data/node';
  const load = (file: string) => readTensor(onnx.TensorProto.decode(fs.readFileSync(file)), { source: file, baseDir: undefined });
  test.each([
    ['test_momentum', { kind: 'sgd', momentum: 0.95, dampening: 0.9, weightDecay: 0.001 }],
    ['test_nesterov_momentum', { kind: 'sgd', momentum: 0.95, nesterov: true, weightDecay: 0.01 }],
  ] as [string, OptimizerConfig][])('%s', async (name, config) => {
    const dir = path.join(root, name, 'test_data_set_0');
    if (!fs.existsSync(dir)) throw new Error(`${dir} is missing: run bash scripts/install-system-deps.sh (Debian package libonnx-testdata)`);
    // Inputs R (learning rate), T (0-based iteration), X, G, V; outputs X_new, V_new.
    const [r, t, x, g, v] = [0, 1, 2, 3, 4].map((i) => load(path.join(dir, `input_${i}.pb`)));
    const [xNew, vNew] = [0, 1].map((i) => load(path.join(dir, `output_${i}.pb`)));
    const graph = buildOptimizerGraph([{ name: 'x', shape: x!.dims }], config);
    const session = await ort.InferenceSession.create(encodeModel(graph.model));
    const f32 = (d: typeof x) => new ort.Tensor('float32', Float32Array.from(d!.toNumbers()), [...d!.dims]);
    const out = await session.run({
      learning_rate: new ort.Tensor('float32', Float32Array.from(r!.toNumbers()), [1]),
      step: new ort.Tensor('int64', BigInt64Array.from([BigInt(t!.toNumbers()[0]! + 1)]), [1]),
      x: f32(x), x_grad: f32(g), 'x.momentum_buffer': f32(v),
    });
    const close = (a: ArrayLike<number>, b: number[]) => Array.from(a).forEach((va, i) => expect(va).toBeCloseTo(b[i]!, 5));
    close(out.x_updated!.data as Float32Array, xNew!.toNumbers());
    close(out['x.momentum_buffer_updated']!.data as Float32Array, vNew!.toNumbers());
  });
});

describe('learning-rate schedules', () => {
  test('constant, step, cosine and linear warm-up', () => {
    expect(learningRateAt(0.1, 7, { kind: 'constant' })).toBe(0.1);
    expect(learningRateAt(0.1, 1, { kind: 'step', stepSize: 3, gamma: 0.5 })).toBeCloseTo(0.1);
    expect(learningRateAt(0.1, 4, { kind: 'step', stepSize: 3, gamma: 0.5 })).toBeCloseTo(0.05);
    expect(learningRateAt(0.1, 7, { kind: 'step', stepSize: 3, gamma: 0.5 })).toBeCloseTo(0.025);
    expect(learningRateAt(0.1, 1, { kind: 'cosine', totalSteps: 11 })).toBeCloseTo(0.1);
    expect(learningRateAt(0.1, 6, { kind: 'cosine', totalSteps: 11 })).toBeCloseTo(0.05);
    expect(learningRateAt(0.1, 11, { kind: 'cosine', totalSteps: 11 })).toBeCloseTo(0);
    expect(learningRateAt(0.1, 2, { kind: 'constant' }, { warmupSteps: 4 })).toBeCloseTo(0.05);
    expect(learningRateAt(0.1, 5, { kind: 'constant' }, { warmupSteps: 4 })).toBeCloseTo(0.1);
  });
});
