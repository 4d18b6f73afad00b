/**
 * nn.AdditiveAttention against the same computation written by hand in PyTorch (float64): context, weights and the
 * gradients of the features, the query and every parameter, with and without a mask; against central finite
 * differences; the precomputed-features path; shapes and errors. Show, Attend and Tell's attention penalty and the
 * training-loss hook it goes through.
 */
import * as ort from 'onnxruntime-node';
import { checkGradientGraph } from '../src/runtime/gradcheck';
import { gradients } from '../src/autodiff/gradients';
import { GraphBuilder } from '../src/dsl/builder';
import * as F from '../src/dsl/functional';
import * as losses from '../src/dsl/losses';
import { AdditiveAttention } from '../src/nn/attention';
import { encodeModel } from '../src/onnx/write';
import { Rng } from '../src/util/rng';
import { runPyTorch } from './support/pytorch';

const N = 3, R = 7, D = 5, H = 4, A = 6;
// Row 2 attends to nothing: it gets uniform weights, not NaN.
const MASK = [1, 1, 1, 0, 1, 0, 1, /**/ 0, 1, 1, 1, 1, 1, 1, /**/ 0, 0, 0, 0, 0, 0, 0];

interface Plain { shape: number[]; data: number[] }

/**
 * The attention's outputs, the loss sum(context * proj.context) + sum(weights * proj.weights) and its gradients,
 * as one float64 graph: parameters are float64 inputs holding the module's own seeded initial values.
 */
function buildCase(masked: boolean, seed = 1) {
  const attention = new AdditiveAttention(D, H, A);
  attention.assignNames();
  const b = new GraphBuilder('attention', 'train');
  const rng = new Rng(seed);
  const feeds: Record<string, ort.Tensor> = {};
  const plain: Record<string, Plain> = {};
  const input = (name: string, shape: number[], values = Array.from({ length: shape.reduce((x, y) => x * y, 1) }, () => rng.normal())) => {
    feeds[name] = new ort.Tensor('float64', Float64Array.from(values), shape);
    plain[name] = { shape, data: values };
    return b.input(name, 'float64', shape);
  };
  const wrt = [input('features', [N, R, D]), input('query', [N, H])];
  const mask = masked ? input('mask', [N, R], MASK) : undefined;
  for (const [name, p] of attention.namedParameters()) {
    const t = input(name, [...p.shape], Array.from(p.init.fill(Rng.derive(seed, name), p.shape)));
    b.bind(p, t);
    wrt.push(t);
  }
  const { context, weights } = b.run(() => attention.forward(wrt[0]!, wrt[1]!, { mask }));
  const loss = b.run(() => F.add(
    F.reduceSum(F.mul(context, input('proj.context', [N, D])), undefined, false),
    F.reduceSum(F.mul(weights, input('proj.weights', [N, R])), undefined, false)));
  const grads = gradients(loss, wrt);
  b.output('loss', loss);
  b.output('context', context);
  b.output('weights', weights);
  grads.forEach((g, i) => b.output(`${wrt[i]!.name}_grad`, g));
  return { model: encodeModel(b.toModel()), feeds, plain, wrt: wrt.map((t) => t.name) };
}

const SCRIPT = `
import json, sys, torch
torch.set_default_dtype(torch.float64)
result = {}
for key, f in json.load(sys.stdin).items():
    T = lambda k: torch.tensor(f[k]['data']).reshape(f[k]['shape'])
    leaves = {k: T(k).requires_grad_(True) for k in f if not k.startswith('proj.') and k != 'mask'}
    feats, query = leaves['features'], leaves['query']
    keys = feats @ leaves['featureProjection.weight'].T + leaves['featureProjection.bias']
    q = query @ leaves['queryProjection.weight'].T + leaves['queryProjection.bias']
    scores = (torch.tanh(keys + q[:, None, :]) @ leaves['score.weight'].T).squeeze(2)
    if 'mask' in f:
        scores = scores.masked_fill(T('mask') == 0, -1e30)
    weights = torch.softmax(scores, 1)
    context = (weights[:, :, None] * feats).sum(1)
    loss = (context * T('proj.context')).sum() + (weights * T('proj.weights')).sum()
    loss.backward()
    result[key] = {'loss': loss.item(), 'context': context.flatten().tolist(), 'weights': weights.flatten().tolist(),
                   'grads': {k: v.grad.flatten().tolist() for k, v in leaves.items()}}
print(json.dumps(result))
`;

interface Reference { loss: number; context: number[]; weights: number[]; grads: Record<string, number[]> }

const cases = { plain: buildCase(false), masked: buildCase(true) };
let references: Record<keyof typeof cases, Reference>;

beforeAll(() => {
  references = runPyTorch(SCRIPT, { plain: cases.plain.plain, masked: cases.masked.plain }) as typeof references;
});

function relativeError(ours: ArrayLike<number>, theirs: number[]): number {
  expect(ours.length).toBe(theirs.length);
  const scale = Math.max(1e-12, ...theirs.map(Math.abs));
  return Math.max(0, ...theirs.map((v, i) => Math.abs(v - ours[i]!))) / scale;
}

test.each([['plain'], ['masked']] as [keyof typeof cases][])('%s: context, weights and every gradient match PyTorch (float64)', async (key) => {
  const c = cases[key];
  const reference = references[key];
  const session = await ort.InferenceSession.create(c.model);
  const out = await session.run(c.feeds);
  await session.release();
  expect(Math.abs(Number(out.loss!.data[0]) - reference.loss)).toBeLessThan(1e-9 * Math.max(1, Math.abs(reference.loss)));
  const errors: Record<string, number> = {
    context: relativeError(out.context!.data as Float64Array, reference.context),
    weights: relativeError(out.weights!.data as Float64Array, reference.weights),
  };
  for (const name of c.wrt) errors[name] = relativeError(out[`${name}_grad`]!.data as Float64Array, reference.grads[name]!);
  expect(Object.entries(errors).filter(([, e]) => !(e < 1e-9))).toEqual([]);
  expect(Object.keys(reference.grads).sort()).toEqual([...c.wrt].sort());
  const weights = out.weights!.data as Float64Array;
  for (let n = 0; n < N; n++) expect(weights.slice(n * R, (n + 1) * R).reduce((s, v) => s + v, 0)).toBeCloseTo(1, 12);
  if (key === 'masked') {
    expect(MASK.flatMap((m, i) => (m === 0 && i < 2 * R ? [weights[i]] : []))).toEqual(MASK.slice(0, 2 * R).filter((m) => m === 0));
    expect(Array.from(weights.slice(2 * R))).toEqual(new Array(R).fill(1 / R));
  }
});

test('gradients against central finite differences (float64, masked)', async () => {
  const c = cases.masked;
  const report = await checkGradientGraph(c.model, c.feeds, c.wrt, { sample: 12, largest: 4 });
  expect(report).toMatchObject({ ok: true, failures: 0 });
  expect(report.checked).toBeGreaterThan(60);
});

test('features projected once outside a decoding loop give the same result; parameters and shapes with a symbolic batch', async () => {
  const attention = new AdditiveAttention(D, H, A);
  attention.assignNames();
  expect(attention.namedParameters().map(([name, p]) => `${name} [${p.shape}]`)).toEqual([
    'featureProjection.weight [6,5]', 'featureProjection.bias [6]', 'queryProjection.weight [6,4]', 'queryProjection.bias [6]', 'score.weight [1,6]',
  ]);
  const b = new GraphBuilder('decoder');
  for (const [name, p] of attention.namedParameters()) b.bind(p, b.input(name, 'float32', p.shape));
  const features = b.input('features', 'float32', ['batch', R, D]);
  const query = b.input('query', 'float32', ['batch', H]);
  const mask = b.input('mask', 'float32', ['batch', R]);
  const direct = b.run(() => attention.forward(features, query, mask));
  const reused = b.run(() => attention.forward(features, query, { mask, projectedFeatures: attention.projectFeatures(features) }));
  expect([direct.context.shape, direct.weights.shape]).toEqual([['batch', D], ['batch', R]]);
  b.output('direct', direct.context);
  b.output('reused', reused.context);
  const rng = new Rng(2);
  const random = (shape: number[]) => new ort.Tensor('float32', Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, () => rng.normal()), shape);
  const feeds: Record<string, ort.Tensor> = { features: random([2, R, D]), query: random([2, H]), mask: new ort.Tensor('float32', Float32Array.from(MASK.slice(0, 2 * R)), [2, R]) };
  for (const [name, p] of attention.namedParameters()) feeds[name] = random([...p.shape]);
  const session = await ort.InferenceSession.create(encodeModel(b.toModel()));
  const out = await session.run(feeds);
  await session.release();
  expect(Array.from(out.reused!.data as Float32Array)).toEqual(Array.from(out.direct!.data as Float32Array));
});

test('shape errors name the module and the shapes', () => {
  const attention = new AdditiveAttention(D, H, A);
  attention.path = 'decoder.attention';
  const b = new GraphBuilder('errors');
  const features = b.input('features', 'float32', ['batch', R, D]);
  const query = b.input('query', 'float32', ['batch', H]);
  const run = (fn: () => unknown) => () => b.run(fn);
  expect(run(() => attention.forward(b.input('map', 'float32', ['batch', D, 7, 7]), query))).toThrow(
    "additiveAttention 'decoder.attention': features must be a float tensor [N, R, 5] (R regions of D = featureSize), got float32[batch, 5, 7, 7]");
  expect(run(() => attention.forward(features, b.input('q3', 'float32', ['batch', 3])))).toThrow(
    "additiveAttention 'decoder.attention': query must be float32[N, H] = [batch, 4], got float32[batch, 3]");
  expect(run(() => attention.forward(features, query, b.input('m', 'float32', ['batch', 6])))).toThrow(
    "additiveAttention 'decoder.attention': mask must be [N, R] = [batch, 7], got float32[batch, 6]");
  expect(() => new AdditiveAttention(D, 0, A)).toThrow('AdditiveAttention: hiddenSize must be a positive integer, got 0');
});

describe('losses.attentionPenalty and losses.addTrainingLoss', () => {
  const [n, t, r] = [2, 3, 4];
  const STEPS = [1, 1, 0, /**/ 1, 0, 0];

  /** Weights [n, t, r] whose rows are softmaxes of seeded scores, and the penalty graph over them (float64). */
  function penaltyCase() {
    const rng = new Rng(11);
    const weights: number[] = [];
    for (let row = 0; row < n * t; row++) {
      const e = Array.from({ length: r }, () => Math.exp(rng.normal()));
      const total = e.reduce((a, b) => a + b, 0);
      weights.push(...e.map((v) => v / total));
    }
    const b = new GraphBuilder('penalty', 'train');
    const w = b.input('weights', 'float64', [n, t, r]);
    const steps = b.input('steps', 'bool', [n, t]);
    const penalty = b.run(() => losses.attentionPenalty(w, steps));
    // The gradient check reads `loss` and `<input>_grad`.
    b.output('loss', penalty);
    b.output('weights_grad', gradients(penalty, [w])[0]!);
    const feeds = {
      weights: new ort.Tensor('float64', Float64Array.from(weights), [n, t, r]),
      steps: new ort.Tensor('bool', Uint8Array.from(STEPS), [n, t]),
    };
    return { model: encodeModel(b.toModel()), feeds, weights };
  }

  test('mean over images and regions of (1 - the weights summed over the real steps)^2, with a gradient that matches finite differences', async () => {
    const c = penaltyCase();
    let expected = 0;
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < r; k++) {
        let total = 0;
        for (let s = 0; s < t; s++) if (STEPS[i * t + s]) total += c.weights[(i * t + s) * r + k]!;
        expected += (1 - total) ** 2 / (n * r);
      }
    }
    const session = await ort.InferenceSession.create(c.model);
    const out = await session.run(c.feeds);
    await session.release();
    expect(Math.abs(Number(out.loss!.data[0]) - expected)).toBeLessThan(1e-12);
    // Padding steps get no gradient.
    const grad = out.weights_grad!.data as Float64Array;
    for (let row = 0; row < n * t; row++) if (!STEPS[row]) expect(Array.from(grad.slice(row * r, (row + 1) * r), Math.abs)).toEqual([0, 0, 0, 0]);
    const report = await checkGradientGraph(c.model, c.feeds, ['weights'], {});
    expect(report).toMatchObject({ ok: true, failures: 0, checked: n * t * r });
  });

  test('a training graph adds the weighted term; an evaluation graph never builds it; bad terms are refused by name', () => {
    const calls: string[] = [];
    const build = (mode: 'train' | 'eval') => {
      const b = new GraphBuilder('aux', mode);
      const x = b.input('x', 'float32', [2, 3]);
      b.run(() => losses.addTrainingLoss('l2', () => (calls.push(mode), F.reduceSum(F.mul(x, x), undefined, false)), 0.1));
      return b;
    };
    expect([...build('train').trainingLosses.keys()]).toEqual(['l2']);
    expect(build('eval').trainingLosses.size).toBe(0);
    expect(calls).toEqual(['train']);
    const b = new GraphBuilder('errors', 'train');
    const x = b.input('x', 'float32', [2, 3]);
    expect(() => b.run(() => losses.addTrainingLoss('row', () => F.reduceSum(x, [1], false)))).toThrow("'row' must be a float scalar, got float32[2]");
    expect(() => b.run(() => losses.addTrainingLoss('minus', () => F.reduceSum(x, undefined, false), -1))).toThrow("the weight of 'minus' must be a finite number >= 0, got -1");
    b.run(() => losses.addTrainingLoss('once', () => F.reduceSum(x, undefined, false)));
    expect(() => b.run(() => losses.addTrainingLoss('once', () => F.reduceSum(x, undefined, false)))).toThrow("a training loss named 'once' was already added");
    expect(() => b.run(() => losses.attentionPenalty(x))).toThrow('weights must be a float tensor [N, T, R], got float32[2, 3]');
  });
});
