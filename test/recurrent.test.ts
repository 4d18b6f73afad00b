/**
 * nn.LSTM, nn.GRU, nn.LSTMCell and nn.GRUCell against torch.nn's (Debian python3-torch, float64) on the same
 * weights: outputs, final states and the gradients of every parameter and input, unmasked and masked (against
 * pack_padded_sequence); against central finite differences; and a float32 training graph with a symbolic batch.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { checkGradientGraph } from '../src/runtime/gradcheck';
import { gradients } from '../src/autodiff/gradients';
import { GraphBuilder } from '../src/dsl/builder';
import * as F from '../src/dsl/functional';
import * as L from '../src/dsl/losses';
import type { Tensor } from '../src/dsl/builder';
import type { DType } from '../src/ir/dtype';
import { defineModel } from '../src/model/definition';
import { buildTrainingGraph } from '../src/model/training-graph';
import { Linear } from '../src/nn/layers';
import { Module } from '../src/nn/module';
import { GRU, GRUCell, LSTM, LSTMCell } from '../src/nn/recurrent';
import { encodeModel } from '../src/onnx/write';
import { Rng } from '../src/util/rng';
import { onnxCheck } from './support/onnx-checker';
import { runPyTorch } from './support/pytorch';

interface Plain { shape: number[]; data: number[] }

/** A module's forward, its loss sum(output_k * proj.k) and its gradients as one float64 graph, with its feeds. */
interface Case {
  model: Uint8Array;
  feeds: Record<string, ort.Tensor>;
  plain: Record<string, Plain>;
  /** Inputs and parameters whose gradients the graph outputs as `<name>_grad`. */
  wrt: string[];
  outputs: string[];
}

interface DataInput { name: string; shape: number[]; values?: number[]; dtype?: DType }

/**
 * Builds the case in float64: every parameter becomes a float64 graph input holding its initial values (the
 * module's own init, seeded), so the comparison with PyTorch's float64 is limited by neither precision.
 */
function buildCase(module: Module | undefined, inputs: DataInput[], forward: (t: Record<string, Tensor>) => Record<string, Tensor>, seed = 1): Case {
  module?.assignNames();
  const b = new GraphBuilder('case', 'train');
  const rng = new Rng(seed);
  const feeds: Record<string, ort.Tensor> = {};
  const plain: Record<string, Plain> = {};
  const tensors: Record<string, Tensor> = {};
  const wrt: Tensor[] = [];
  const add = (name: string, dtype: DType, shape: number[], values: number[]) => {
    const t = b.input(name, dtype, shape);
    feeds[name] = dtype === 'int64'
      ? new ort.Tensor('int64', BigInt64Array.from(values.map(BigInt)), shape)
      : new ort.Tensor('float64', Float64Array.from(values), shape);
    plain[name] = { shape, data: values };
    return t;
  };
  for (const spec of inputs) {
    const dtype = spec.dtype ?? 'float64';
    const count = spec.shape.reduce((x, y) => x * y, 1);
    const t = add(spec.name, dtype, spec.shape, spec.values ?? Array.from({ length: count }, () => rng.normal()));
    tensors[spec.name] = t;
    if (dtype === 'float64' && spec.name !== 'mask') wrt.push(t);
  }
  for (const [name, p] of module?.namedParameters() ?? []) {
    const t = add(name, 'float64', [...p.shape], Array.from(p.init.fill(Rng.derive(seed, name), p.shape)));
    b.bind(p, t);
    wrt.push(t);
  }
  const outs = b.run(() => forward(tensors));
  const loss = b.run(() => {
    const terms = Object.entries(outs).map(([name, out]) => {
      const shape = out.shape as number[];
      const projection = add(`proj.${name}`, 'float64', shape, Array.from({ length: shape.reduce((x, y) => x * y, 1) }, () => rng.normal()));
      return F.reduceSum(F.mul(out, projection), undefined, false);
    });
    return terms.reduce((acc, t) => F.add(acc, t));
  });
  const grads = gradients(loss, wrt);
  b.output('loss', loss);
  // Outputs as out.<name>: an input may already be called h.
  for (const [name, out] of Object.entries(outs)) b.output(`out.${name}`, out);
  grads.forEach((g, i) => b.output(`${wrt[i]!.name}_grad`, g));
  return { model: encodeModel(b.toModel()), feeds, plain, wrt: wrt.map((t) => t.name), outputs: Object.keys(outs) };
}

const SCRIPT = `
import json, sys, torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
torch.set_default_dtype(torch.float64)
cases = json.load(sys.stdin)
result = {}
for key, c in cases.items():
    f, cfg, kind = c['feeds'], c['config'], c['kind']
    T = lambda k: torch.tensor(f[k]['data'], dtype=torch.float64).reshape(f[k]['shape'])
    if kind in ('maskedCrossEntropy', 'crossEntropy'):
        m = torch.nn.Module()
    elif kind in ('lstm', 'gru'):
        m = (torch.nn.LSTM if kind == 'lstm' else torch.nn.GRU)(cfg['inputSize'], cfg['hiddenSize'], num_layers=cfg['numLayers'], batch_first=cfg['batchFirst'])
    else:
        m = (torch.nn.LSTMCell if kind == 'lstmCell' else torch.nn.GRUCell)(cfg['inputSize'], cfg['hiddenSize'])
    params = dict(m.named_parameters())
    with torch.no_grad():
        for k, p in params.items():
            p.copy_(T(k))
    leaves = {k: T(k).requires_grad_(True) for k in ('x', 'h0', 'c0', 'h', 'c', 'logits') if k in f}
    x = leaves.get('x')
    if kind == 'maskedCrossEntropy':
        logits = leaves['logits']
        targets = torch.tensor(f['targets']['data']).long().reshape(f['targets']['shape'])
        targets = torch.where(T('mask') > 0, targets, torch.full_like(targets, -100))
        outs = {'ce': torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[2]), targets.reshape(-1), ignore_index=-100, label_smoothing=cfg['labelSmoothing'])}
    elif kind == 'crossEntropy':
        labels = torch.tensor(f['labels']['data']).long()
        outs = {'ce': torch.nn.functional.cross_entropy(leaves['logits'], labels, ignore_index=-100, label_smoothing=cfg['labelSmoothing'])}
    elif kind in ('lstm', 'gru'):
        hx = None if 'h0' not in leaves else ((leaves['h0'], leaves['c0']) if kind == 'lstm' else leaves['h0'])
        if 'lengths' in cfg:
            packed = pack_padded_sequence(x, torch.tensor(cfg['lengths']), batch_first=cfg['batchFirst'], enforce_sorted=False)
            out, state = m(packed, hx)
            out, _ = pad_packed_sequence(out, batch_first=cfg['batchFirst'], total_length=x.shape[1 if cfg['batchFirst'] else 0])
        else:
            out, state = m(x, hx)
        outs = {'output': out, 'h': state[0], 'c': state[1]} if kind == 'lstm' else {'output': out, 'h': state}
    elif kind == 'lstmCell':
        h, c = m(x, (leaves['h'], leaves['c']) if 'h' in leaves else None)
        outs = {'h': h, 'c': c}
    else:
        outs = {'h': m(x, leaves.get('h'))}
    loss = sum((v * T('proj.' + k)).sum() for k, v in outs.items())
    loss.backward()
    grads = {k: v.grad.flatten().tolist() for k, v in {**leaves, **params}.items()}
    result[key] = {'loss': loss.item(), 'outputs': {k: v.detach().flatten().tolist() for k, v in outs.items()}, 'grads': grads}
print(json.dumps(result))
`;

interface Reference { loss: number; outputs: Record<string, number[]>; grads: Record<string, number[]> }

/** The largest difference relative to the largest reference magnitude. */
function relativeError(ours: ArrayLike<number>, theirs: number[]): number {
  expect(ours.length).toBe(theirs.length);
  const scale = Math.max(1e-12, ...theirs.map(Math.abs));
  return Math.max(0, ...theirs.map((v, i) => Math.abs(v - ours[i]!))) / scale;
}

async function expectMatches(c: Case, reference: Reference, tolerance = 1e-9): Promise<void> {
  const session = await ort.InferenceSession.create(c.model);
  const out = await session.run(c.feeds);
  await session.release();
  expect(Math.abs(Number(out.loss!.data[0]) - reference.loss)).toBeLessThan(tolerance * Math.max(1, Math.abs(reference.loss)));
  const errors: Record<string, number> = {};
  for (const name of c.outputs) errors[name] = relativeError(out[`out.${name}`]!.data as Float64Array, reference.outputs[name]!);
  for (const name of c.wrt) errors[`${name}_grad`] = relativeError(out[`${name}_grad`]!.data as Float64Array, reference.grads[name]!);
  expect(Object.entries(errors).filter(([, e]) => !(e < tolerance))).toEqual([]);
  // Every parameter PyTorch has was compared, under the same name.
  expect(Object.keys(reference.grads).filter((k) => !c.wrt.includes(k))).toEqual([]);
}

const N = 3, T = 5, FEATURES = 4, H = 6;
const LENGTHS = [5, 2, 4];
const maskOf = (lengths: number[], steps: number) => lengths.flatMap((len) => Array.from({ length: steps }, (_, t) => (t < len ? 1 : 0)));

function sequenceCase(kind: 'lstm' | 'gru', options: { numLayers: number; initialState: boolean; lengths?: number[]; batchFirst?: boolean }) {
  const batchFirst = options.batchFirst ?? true;
  const module = kind === 'lstm'
    ? new LSTM(FEATURES, H, { numLayers: options.numLayers, batchFirst })
    : new GRU(FEATURES, H, { numLayers: options.numLayers, batchFirst });
  const inputs: DataInput[] = [{ name: 'x', shape: batchFirst ? [N, T, FEATURES] : [T, N, FEATURES] }];
  if (options.initialState) {
    inputs.push({ name: 'h0', shape: [options.numLayers, N, H] });
    if (kind === 'lstm') inputs.push({ name: 'c0', shape: [options.numLayers, N, H] });
  }
  if (options.lengths) inputs.push({ name: 'mask', shape: [N, T], values: maskOf(options.lengths, T) });
  const c = buildCase(module, inputs, (t): Record<string, Tensor> => {
    const forwardOptions = { h0: t.h0, c0: t.c0, mask: t.mask };
    if (module instanceof LSTM) {
      const { output, h, c: cell } = module.forward(t.x!, forwardOptions);
      return { output, h, c: cell };
    }
    const { output, h } = (module as GRU).forward(t.x!, forwardOptions);
    return { output, h };
  });
  const config = { inputSize: FEATURES, hiddenSize: H, numLayers: options.numLayers, batchFirst, ...(options.lengths ? { lengths: options.lengths } : {}) };
  return { case: c, kind, config };
}

function cellCase(kind: 'lstmCell' | 'gruCell', withState: boolean) {
  const module = kind === 'lstmCell' ? new LSTMCell(FEATURES, H) : new GRUCell(FEATURES, H);
  const inputs: DataInput[] = [{ name: 'x', shape: [N, FEATURES] }];
  if (withState) inputs.push(...(kind === 'lstmCell' ? ['h', 'c'] : ['h']).map((name) => ({ name, shape: [N, H] })));
  const c = buildCase(module, inputs, (t) => (module instanceof LSTMCell ? module.forward(t.x!, t.h, t.c) : { h: (module as GRUCell).forward(t.x!, t.h) }));
  return { case: c, kind, config: { inputSize: FEATURES, hiddenSize: H } };
}

/** Logits [N, T, V] with targets that padding (mask 0) and, once, ignoreIndex (-100) leave out. */
function maskedCrossEntropyCase(labelSmoothing: number) {
  const vocabulary = 7;
  const targets = [3, 0, 6, 2, 5, /**/ 1, 1, 4, 4, 4, /**/ 6, -100, 2, 0, 3];
  const c = buildCase(undefined, [
    { name: 'logits', shape: [N, T, vocabulary] },
    { name: 'targets', shape: [N, T], values: targets, dtype: 'int64' },
    { name: 'mask', shape: [N, T], values: maskOf(LENGTHS, T) },
  ], (t) => ({ ce: L.maskedCrossEntropy(t.logits!, t.targets!, t.mask, { labelSmoothing }) }));
  return { case: c, kind: 'maskedCrossEntropy', config: { labelSmoothing } };
}

/** The classifier loss, whose per-item part maskedCrossEntropy now shares: [N, C] logits, -100 ignored. */
function crossEntropyCase(labelSmoothing: number) {
  const c = buildCase(undefined, [
    { name: 'logits', shape: [5, 4] },
    { name: 'labels', shape: [5], values: [3, -100, 0, 2, 0], dtype: 'int64' },
  ], (t) => ({ ce: L.crossEntropy(t.logits!, t.labels!, { labelSmoothing }) }));
  return { case: c, kind: 'crossEntropy', config: { labelSmoothing } };
}

const cases = {
  lstm: sequenceCase('lstm', { numLayers: 2, initialState: true }),
  lstmMasked: sequenceCase('lstm', { numLayers: 2, initialState: false, lengths: LENGTHS }),
  lstmTimeFirst: sequenceCase('lstm', { numLayers: 1, initialState: true, batchFirst: false }),
  gru: sequenceCase('gru', { numLayers: 2, initialState: true }),
  gruMasked: sequenceCase('gru', { numLayers: 2, initialState: true, lengths: LENGTHS }),
  lstmCell: cellCase('lstmCell', true),
  lstmCellZeroState: cellCase('lstmCell', false),
  gruCell: cellCase('gruCell', true),
  gruCellZeroState: cellCase('gruCell', false),
  maskedCrossEntropy: maskedCrossEntropyCase(0),
  maskedCrossEntropySmoothed: maskedCrossEntropyCase(0.1),
  crossEntropySmoothed: crossEntropyCase(0.1),
};
type CaseName = keyof typeof cases;
let references: Record<CaseName, Reference>;

beforeAll(() => {
  const input = Object.fromEntries(Object.entries(cases).map(([key, c]) => [key, { kind: c.kind, config: c.config, feeds: c.case.plain }]));
  references = runPyTorch(SCRIPT, input) as Record<CaseName, Reference>;
});

describe('against torch.nn on the same weights (float64): outputs, final states, every gradient', () => {
  test.each([
    ['lstm', 'LSTM, 2 layers, given h0 and c0'],
    ['lstmMasked', 'LSTM, 2 layers, masked, against pack_padded_sequence (lengths 5, 2, 4)'],
    ['lstmTimeFirst', 'LSTM with batchFirst false ([T, N, F])'],
    ['gru', 'GRU, 2 layers, given h0'],
    ['gruMasked', 'GRU, 2 layers, given h0, masked, against pack_padded_sequence'],
    ['lstmCell', 'LSTMCell with h and c'],
    ['lstmCellZeroState', 'LSTMCell from zero state'],
    ['gruCell', 'GRUCell with h'],
    ['gruCellZeroState', 'GRUCell from zero state'],
    ['maskedCrossEntropy', 'losses.maskedCrossEntropy against F.cross_entropy with ignore_index on the real tokens'],
    ['maskedCrossEntropySmoothed', 'losses.maskedCrossEntropy with label smoothing 0.1'],
    ['crossEntropySmoothed', 'losses.crossEntropy (sharing its per-item part) still matches, ignore_index and smoothing'],
  ] as [CaseName, string][])('%s: %s', async (key) => {
    await expectMatches(cases[key].case, references[key]);
  });
});

describe('against central finite differences (float64)', () => {
  // 12 random elements plus the 4 largest of each input and parameter; every logit of the loss.
  test.each([['lstmMasked', 12], ['gruMasked', 12], ['lstmCell', 12], ['gruCell', 12], ['maskedCrossEntropy', undefined]] as [CaseName, number | undefined][])('%s', async (key, sample) => {
    const c = cases[key].case;
    const report = await checkGradientGraph(c.model, c.feeds, c.wrt, { sample, largest: 4 });
    expect(report).toMatchObject({ ok: true, failures: 0 });
    expect(report.checked).toBeGreaterThan(50);
  });
});

test('parameters are named, shaped and initialized as torch.nn.LSTM / GRU (uniform within 1/sqrt(hidden))', () => {
  const lstm = new LSTM(4, 6, { numLayers: 2 });
  lstm.assignNames();
  expect(lstm.namedParameters().map(([name, p]) => `${name} [${p.shape}]`)).toEqual([
    'weight_ih_l0 [24,4]', 'weight_hh_l0 [24,6]', 'bias_ih_l0 [24]', 'bias_hh_l0 [24]',
    'weight_ih_l1 [24,6]', 'weight_hh_l1 [24,6]', 'bias_ih_l1 [24]', 'bias_hh_l1 [24]',
  ]);
  const gru = new GRU(4, 6, { bias: false });
  expect(gru.namedParameters().map(([name, p]) => `${name} [${p.shape}]`)).toEqual(['weight_ih_l0 [18,4]', 'weight_hh_l0 [18,6]']);
  const cell = new LSTMCell(4, 6);
  expect(cell.namedParameters().map(([name]) => name)).toEqual(['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh']);
  for (const [name, p] of lstm.namedParameters()) {
    const values = p.init.fill(Rng.derive(0, name), p.shape);
    expect(Math.max(...values.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(6));
    expect(Math.max(...values.map(Math.abs))).toBeGreaterThan(0.8 / Math.sqrt(6));
  }
});

/** A sequence classifier: LSTM (2 layers, masked) -> the last layer's final state -> Linear. */
class SequenceClassifier extends Module {
  readonly rnn = new LSTM(FEATURES, H, { numLayers: 2 });
  readonly head = new Linear(H, 3);

  forward(x: Tensor, mask: Tensor): Tensor {
    const { h } = this.rnn.forward(x, { mask });
    return this.head.forward(F.squeeze(F.slice(h, [1], [2], [0]), [0]));
  }
}

const classifier = defineModel({
  name: 'sequence-classifier',
  defaults: {},
  inputs: () => [{ name: 'input', shape: ['batch', T, FEATURES] }, { name: 'mask', shape: ['batch', T] }],
  create: () => new SequenceClassifier(),
});

const CLASSIFIER_SCRIPT = `
import json, sys, torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence
torch.set_default_dtype(torch.float64)
d = json.load(sys.stdin)
T = lambda k: torch.tensor(d[k]['data'], dtype=torch.float64).reshape(d[k]['shape'])
lstm, head = torch.nn.LSTM(${FEATURES}, ${H}, num_layers=2, batch_first=True), torch.nn.Linear(${H}, 3)
params = {**{'rnn.' + k: v for k, v in lstm.named_parameters()}, **{'head.' + k: v for k, v in head.named_parameters()}}
with torch.no_grad():
    for k, p in params.items():
        p.copy_(T(k))
lengths = T('mask').sum(1).long()
_, (h, _) = lstm(pack_padded_sequence(T('input'), lengths, batch_first=True, enforce_sorted=False))
loss = F.cross_entropy(head(h[1]), torch.tensor(d['labels']['data']).long())
loss.backward()
print(json.dumps({'loss': loss.item(), 'grads': {k: v.grad.flatten().tolist() for k, v in params.items()}}))
`;

test('a float32 training graph with a symbolic batch (LSTM classifier, masked) matches PyTorch to 1e-5', async () => {
  const graph = buildTrainingGraph(classifier, { seed: 3 });
  expect(graph.model.graph.inputs.find((v) => v.name === 'input')!.shape).toEqual(['batch', T, FEATURES]);
  // Standard opset-17 ops only (no ONNX LSTM), accepted by the reference checker with full shape inference.
  const opTypes = new Set(graph.model.graph.nodes.map((n) => `${n.domain}:${n.opType}`));
  expect([...opTypes].filter((op) => !op.startsWith(':') || /LSTM|GRU|RNN/.test(op))).toEqual([]);
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'recurrent-')), 'training.onnx');
  fs.writeFileSync(file, encodeModel(graph.model));
  const checked = onnxCheck([file]);
  fs.rmSync(path.dirname(file), { recursive: true, force: true });
  expect(checked.report).toContain('ok');
  expect(checked.ok).toBe(true);
  const rng = new Rng(5);
  const batch = 4;
  const lengths = [5, 1, 3, 4];
  const feeds: Record<string, ort.Tensor> = {
    input: new ort.Tensor('float32', Float32Array.from({ length: batch * T * FEATURES }, () => rng.normal()), [batch, T, FEATURES]),
    mask: new ort.Tensor('float32', Float32Array.from(maskOf(lengths, T)), [batch, T]),
    labels: new ort.Tensor('int64', BigInt64Array.from([0n, 2n, 1n, 2n]), [batch]),
  };
  for (const [name, data] of graph.values) feeds[name] = new ort.Tensor('float32', data.typed() as Float32Array, [...data.dims]);
  const session = await ort.InferenceSession.create(encodeModel(graph.model));
  const out = await session.run(feeds);
  await session.release();
  const plain = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, { shape: [...t.dims], data: Array.from(t.data as ArrayLike<number | bigint>, Number) }]));
  const reference = runPyTorch(CLASSIFIER_SCRIPT, plain) as { loss: number; grads: Record<string, number[]> };
  expect(Math.abs((out.loss!.data as Float32Array)[0]! - reference.loss)).toBeLessThan(1e-5);
  expect(graph.trainable.sort()).toEqual(Object.keys(reference.grads).sort());
  const errors = graph.trainable.map((name) => [name, relativeError(out[`${name}_grad`]!.data as Float32Array, reference.grads[name]!)] as const);
  expect(errors.filter(([, e]) => !(e < 1e-5))).toEqual([]);
});

describe('shape errors name the layer and the shapes', () => {
  const lstm = new LSTM(4, 6, { numLayers: 2 });
  lstm.path = 'decoder';

  test('wrong rank, feature size, symbolic length, mask and state shapes', () => {
    const b = new GraphBuilder('errors');
    const x = b.input('x', 'float32', ['batch', 5, 4]);
    const run = (fn: () => unknown) => () => b.run(fn);
    expect(run(() => lstm.forward(b.input('flat', 'float32', ['batch', 20])))).toThrow(
      "lstm 'decoder': input must be a float tensor [N, T, F], got float32[batch, 20]");
    expect(run(() => lstm.forward(b.input('wide', 'float32', ['batch', 5, 3])))).toThrow(
      "lstm 'decoder': input has 3 features, the layer expects inputSize 4 (input float32[batch, 5, 3], [N, T, F])");
    expect(run(() => lstm.forward(b.input('open', 'float32', ['batch', 'time', 4])))).toThrow(
      "lstm 'decoder': the sequence length (axis 1 of [N, T, F]) must be a static positive number, got float32[batch, time, 4]");
    expect(run(() => lstm.forward(x, b.input('m', 'float32', ['batch', 4])))).toThrow(
      "lstm 'decoder': mask must be [N, T] = [batch, 5] like the input, got float32[batch, 4]");
    expect(run(() => lstm.forward(x, { h0: b.input('h0', 'float32', [1, 'batch', 6]), c0: b.input('c0', 'float32', [2, 'batch', 6]) }))).toThrow(
      "lstm 'decoder': h0 must be float32[layers, N, H] = [2, batch, 6], got float32[1, batch, 6]");
    expect(run(() => lstm.forward(x, { h0: b.input('h0only', 'float32', [2, 'batch', 6]) }))).toThrow(
      "lstm 'decoder': give h0 and c0 together, or neither for zero initial states");
    expect(run(() => new LSTMCell(4, 6).forward(x))).toThrow('input must be a float tensor [N, 4], got float32[batch, 5, 4]');
    expect(run(() => new GRUCell(4, 6).forward(b.input('xc', 'float32', ['batch', 4]), b.input('hc', 'float32', ['batch', 5])))).toThrow(
      'h must be float32[N, H] = [batch, 6], got float32[batch, 5]');
  });

  test('bad constructor arguments', () => {
    expect(() => new LSTM(4, 0)).toThrow('LSTM: hiddenSize must be a positive integer, got 0');
    expect(() => new GRU(4, 6, { numLayers: 0 })).toThrow('GRU: numLayers must be a positive integer, got 0');
    expect(() => new LSTM(4, 6, { dropout: 1 })).toThrow('LSTM: dropout must be in [0, 1), got 1');
  });
});

test('output shapes with a symbolic batch, and inter-layer dropout only in training graphs', () => {
  for (const mode of ['eval', 'train'] as const) {
    const b = new GraphBuilder('shapes', mode);
    const gru = new GRU(4, 6, { numLayers: 3, dropout: 0.2 });
    gru.assignNames();
    for (const [name, p] of gru.namedParameters()) b.bind(p, b.input(name, 'float32', p.shape));
    const { output, h } = b.run(() => gru.forward(b.input('x', 'float32', ['batch', 7, 4])));
    expect([output.shape, h.shape]).toEqual([['batch', 7, 6], [3, 'batch', 6]]);
    const noise = b.graph.inputs.filter((v) => v.name.startsWith(F.DROPOUT_NOISE)).map((v) => v.shape);
    expect(noise).toEqual(mode === 'train' ? [['batch', 42], ['batch', 42]] : []);
  }
});

describe('losses.maskedCrossEntropy', () => {
  const run = async (mask: number[]) => {
    const b = new GraphBuilder('ce');
    const logits = b.input('logits', 'float32', ['batch', 2, 3]);
    const targets = b.input('targets', 'int64', ['batch', 2]);
    const m = b.input('mask', 'float32', ['batch', 2]);
    b.output('loss', b.run(() => L.maskedCrossEntropy(logits, targets, m)));
    const session = await ort.InferenceSession.create(encodeModel(b.toModel()));
    const out = await session.run({
      logits: new ort.Tensor('float32', Float32Array.from([1, 2, 3, 0, 0, 0, 5, 1, 1, 2, 2, 2]), [2, 2, 3]),
      targets: new ort.Tensor('int64', BigInt64Array.from([2n, 0n, 0n, 1n]), [2, 2]),
      mask: new ort.Tensor('float32', Float32Array.from(mask), [2, 2]),
    });
    await session.release();
    return (out.loss!.data as Float32Array)[0]!;
  };

  test('averages over the real tokens only, with a symbolic batch; an all-padding batch gives 0, not NaN', async () => {
    const nll = (row: number[], k: number) => Math.log(row.reduce((s, v) => s + Math.exp(v), 0)) - row[k]!;
    expect(await run([1, 0, 1, 0])).toBeCloseTo((nll([1, 2, 3], 2) + nll([5, 1, 1], 0)) / 2, 5);
    expect(await run([0, 0, 0, 0])).toBe(0);
  });

  test('shape errors', () => {
    const b = new GraphBuilder('ce');
    const logits = b.input('logits', 'float32', ['batch', 4, 3]);
    expect(() => b.run(() => L.maskedCrossEntropy(logits, b.input('t', 'int64', ['batch', 5])))).toThrow(
      "maskedCrossEntropy 'ce': targets must be int64 [N, T] = [batch, 4] like the logits, got int64[batch, 5]");
    expect(() => b.run(() => L.maskedCrossEntropy(logits, b.input('t2', 'int64', ['batch', 4]), b.input('m', 'float32', [4])))).toThrow(
      "maskedCrossEntropy 'ce': mask must be [N, T] = [batch, 4] like the logits, got float32[4]");
    expect(() => b.run(() => L.maskedCrossEntropy(b.input('flat', 'float32', ['batch', 3]), b.input('t3', 'int64', ['batch'])))).toThrow(
      "maskedCrossEntropy 'ce': logits must be a float tensor [N, T, classes], got float32[batch, 3]");
  });
});
