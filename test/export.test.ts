/** Export for the browser: graph passes, float16 weights, preprocessing, and the CLI from training to predict. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import * as F from '../src/dsl/functional';
import { GraphBuilder } from '../src/dsl/builder';
import { decodeImage } from '../src/data/decode-image';
import { exportModel } from '../src/export/export-model';
import { storeWeightsAsFloat16 } from '../src/export/float16-weights';
import { preprocessImage, scoresProblem, topK } from '../src/portable/image-preprocessing';
import type { ModelCard } from '../src/portable/model-card';
import { TensorData } from '../src/ir/tensor';
import type { Model } from '../src/ir/model';
import { readModelFile } from '../src/onnx/read';
import { encodeModel } from '../src/onnx/write';
import { eliminateDeadNodes } from '../src/passes/eliminate-dead-nodes';
import { foldBatchNorm } from '../src/passes/fold-batchnorm';
import { removeIdentities } from '../src/passes/remove-identities';
import { Predictor } from '../src/runtime/predictor';
import { fromFloat16Bits, toFloat16Bits } from '../src/util/float16';
import { cli, trainAndExport } from './support/exported-model';
import { onnxCheck } from './support/onnx-checker';
import { randn } from './support/random';
import { fixture } from './support/shared';

const init = (dims: number[], seed: number, transform?: (v: number) => number) => TensorData.float32(dims, randn(dims, seed, transform).data);
const positive = (v: number) => Math.abs(v) + 0.5;

async function run(model: Model, x: Float32Array, dims: number[]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(encodeModel(model));
  const out = await session.run({ x: new ort.Tensor('float32', x, dims) });
  return out.y!.data as Float32Array;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
}

describe('graph passes for export', () => {
  /** Conv -> BN -> ReLU -> Dropout -> Identity -> Flatten -> Gemm -> BN (1-D), all in eval mode. */
  function network(convBias: boolean): Model {
    const b = new GraphBuilder('net', 'eval');
    const x = b.input('x', 'float32', ['batch', 3, 6, 6]);
    const y = b.run(() => {
      const bn = (name: string, c: number, seed: number) => ({
        weight: b.initializer(`${name}.weight`, init([c], seed, positive)), bias: b.initializer(`${name}.bias`, init([c], seed + 1)),
        runningMean: b.initializer(`${name}.mean`, init([c], seed + 2)), runningVar: b.initializer(`${name}.var`, init([c], seed + 3, positive)),
      });
      const conv = F.conv2d(x, b.initializer('conv.weight', init([4, 3, 3, 3], 1)), convBias ? b.initializer('conv.bias', init([4], 2)) : undefined, { padding: 1 });
      let h = F.relu(F.batchNorm(conv, bn('bn1', 4, 10)));
      h = F.identity(F.dropout(h, 0.4));
      const fc = F.linear(F.flatten(h), b.initializer('fc.weight', init([5, 144], 3)), b.initializer('fc.bias', init([5], 4)));
      return F.batchNorm(fc, bn('bn2', 5, 20));
    });
    b.output('y', y);
    return b.toModel();
  }

  test.each([true, false])('batch norm folds into Conv (bias %s) and Gemm; dropout and identities go; outputs unchanged', async (convBias) => {
    const x = Float32Array.from(randn([2, 3, 6, 6], 5).data);
    const before = await run(network(convBias), x, [2, 3, 6, 6]);
    const model = network(convBias);
    expect(model.graph.nodes.map((n) => n.opType)).toEqual(expect.arrayContaining(['BatchNormalization', 'Identity']));
    removeIdentities(model.graph);
    expect(foldBatchNorm(model.graph)).toBe(2);
    eliminateDeadNodes(model.graph);
    expect(model.graph.nodes.map((n) => n.opType)).toEqual(['Conv', 'Relu', 'Flatten', 'Gemm']);
    expect([...model.graph.initializers.keys()].some((n) => n.startsWith('bn'))).toBe(false);
    const after = await run(model, x, [2, 3, 6, 6]);
    const scale = before.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect(maxDiff(before, after) / scale).toBeLessThan(1e-6);
  });

  test('a batch norm whose input is also read elsewhere is left alone', () => {
    const b = new GraphBuilder('net', 'eval');
    const x = b.input('x', 'float32', [1, 2, 3, 3]);
    const [y, z] = b.run(() => {
      const conv = F.conv2d(x, b.initializer('w', init([2, 2, 1, 1], 1)));
      const stats = { weight: b.initializer('g', init([2], 2)), bias: b.initializer('b', init([2], 3)), runningMean: b.initializer('m', init([2], 4)), runningVar: b.initializer('v', init([2], 5, positive)) };
      return [F.batchNorm(conv, stats), F.relu(conv)];
    });
    b.output('y', y!);
    b.output('z', z!);
    const model = b.toModel();
    expect(foldBatchNorm(model.graph)).toBe(0);
  });

  test('float16 weights: half the bytes, Casts restore float32, outputs within float16 rounding', async () => {
    const x = Float32Array.from(randn([2, 3, 6, 6], 5).data);
    const model = network(true);
    const before = await run(model, x, [2, 3, 6, 6]);
    const initializerBytes = () => [...model.graph.initializers.values()].reduce((n, t) => n + t.bytes.byteLength, 0);
    const bytes = initializerBytes();
    expect(storeWeightsAsFloat16(model.graph, 16)).toBe(2);
    expect(initializerBytes()).toBeLessThan(bytes * 0.6);
    const after = await run(model, x, [2, 3, 6, 6]);
    // float16 keeps 11 significant bits: relative error per weight <= 2^-11, a few times that after sums.
    const scale = before.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect(maxDiff(before, after) / scale).toBeLessThan(4e-3);
    expect(maxDiff(before, after)).toBeGreaterThan(0);
  });

  test('float16 conversion rounds to nearest even and handles the edges', () => {
    const cases: [number, number][] = [
      [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800], [65504, 0x7bff], [65520, 0x7c00], [1e6, 0x7c00],
      [-Infinity, 0xfc00], [2 ** -24, 0x0001], [2 ** -25, 0x0000], [1.5 * 2 ** -25, 0x0001], [2 ** -14, 0x0400],
      [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [0.1, 0x2e66], [1 / 3, 0x3555],
    ];
    for (const [value, bits] of cases) expect([value, toFloat16Bits(value).toString(16)]).toEqual([value, bits.toString(16)]);
    expect(toFloat16Bits(NaN) & 0x7c00).toBe(0x7c00);
    expect(Number.isNaN(fromFloat16Bits(toFloat16Bits(NaN)))).toBe(true);
    for (let bits = 0; bits < 0x7c00; bits += 37) expect(toFloat16Bits(fromFloat16Bits(bits))).toBe(bits);
  });
});

describe('image preprocessing shared by predict and the web page', () => {
  const card = { resizeShorterSide: 2, mean: [0, 0, 0], std: [1, 1, 1] };
  const rgba = (w: number, h: number, f: (x: number, y: number, c: number) => number) => ({
    width: w, height: h, channels: 4, data: Uint8Array.from({ length: w * h * 4 }, (_, i) => f(Math.floor(i / 4) % w, Math.floor(i / 4 / w), i % 4)),
  });

  test('same size: pixels pass through exactly (alpha ignored)', () => {
    const img = rgba(2, 2, (x, y, c) => (c === 3 ? 7 : 10 * x + 100 * y + c));
    const out = preprocessImage(img, card, 3, 2, 2);
    expect(Array.from(out, (v) => Math.round(v * 255))).toEqual([0, 10, 100, 110, 1, 11, 101, 111, 2, 12, 102, 112]);
  });

  test('shrinking averages areas; the longer side is center-cropped; gray becomes RGB; normalization applies', () => {
    // 6x4 gray image -> shorter side 2 (scale 1/2) -> 3x2 -> center crop 2x2 from x = 0.
    const gray = { width: 6, height: 4, channels: 1, data: Uint8Array.from({ length: 24 }, (_, i) => (i % 6) * 10 + Math.floor(i / 6) * 60) };
    const out = preprocessImage(gray, { resizeShorterSide: 2, mean: [0.1, 0.2, 0.3], std: [0.5, 0.5, 0.5] }, 3, 2, 2);
    const block = (x: number, y: number) => ((x * 2 + 0.5) * 10 + (y * 2 + 0.5) * 60) / 255;
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 2; y++) for (let x = 0; x < 2; x++) expect(out[c * 4 + y * 2 + x]).toBeCloseTo((block(x, y) - [0.1, 0.2, 0.3][c]!) / 0.5, 5);
    }
  });

  test('enlarging interpolates between pixel centres', () => {
    const img = { width: 2, height: 1, channels: 3, data: Uint8Array.from([0, 0, 0, 255, 255, 255]) };
    const out = preprocessImage(img, { resizeShorterSide: 4, mean: [0, 0, 0], std: [1, 1, 1] }, 1, 4, 8);
    expect(Array.from(out.slice(0, 8), (v) => +v.toFixed(4))).toEqual([0, 0, 0.125, 0.375, 0.625, 0.875, 1, 1]);
  });

  test('scoresProblem: one finite score per label, else why not', () => {
    expect(scoresProblem([1, 3, 2], ['a', 'b', 'c'])).toBeUndefined();
    expect(scoresProblem([1, 3], ['a', 'b', 'c'])).toBe('the model gave 2 scores for 3 labels');
    expect(scoresProblem([], ['a'])).toBe('the model gave 0 scores for 1 labels');
    expect(scoresProblem([1, NaN, 2], ['a', 'b', 'c'])).toBe("the model's score for 'b' is NaN");
    expect(scoresProblem([1, 2, -Infinity], ['a', 'b', 'c'])).toBe("the model's score for 'c' is -Infinity");
  });

  test('topK is a softmax sorted by probability', () => {
    const p = topK([1, 3, 2], ['a', 'b', 'c'], 2);
    expect(p.map((x) => x.label)).toEqual(['b', 'c']);
    const z = Math.exp(1) + Math.exp(3) + Math.exp(2);
    expect(p[0]!.probability).toBeCloseTo(Math.exp(3) / z, 12);
  });
});

describe('deepvision export and predict on a trained model', () => {
  let tmp: string;
  let trained: ReturnType<typeof trainAndExport>;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-export-'));
    trained = trainAndExport(tmp);
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const realImages = () => fs.readdirSync(fixture('photos')).filter((f) => f.startsWith('val_')).sort()
    .map((f) => fixture(`photos/${f}`));

  test('the exported model: folded, pruned, dynamic batch, a valid card, and valid ONNX', () => {
    const model = readModelFile(path.join(trained.modelDir, 'model.onnx'));
    const ops = model.graph.nodes.map((n) => n.opType);
    expect(ops).not.toContain('BatchNormalization');
    expect(ops).not.toContain('Dropout');
    expect(ops.filter((o) => o === 'Conv')).toHaveLength(2);
    expect(model.graph.inputs[0]!.shape).toEqual(['batch', 3, 16, 16]);
    expect(model.graph.outputs[0]!.shape).toEqual(['batch', 10]);
    const card = JSON.parse(fs.readFileSync(path.join(trained.modelDir, 'model.json'), 'utf8')) as ModelCard;
    expect(card.labels).toEqual(['circle', 'square', 'triangle', 'star', 'cross', 'diamond', 'hexagon', 'ring', 'heart', 'crescent']);
    expect(card.input.shape).toEqual([3, 16, 16]);
    expect(card.input.preprocessing.mean).toHaveLength(3);
    expect(card.training.dataset).toBe('shapes');
    expect(card.training.validation!.top1).toBeGreaterThan(0.25);
    const index = JSON.parse(fs.readFileSync(path.join(trained.modelsDir, 'index.json'), 'utf8')) as { models: { id: string }[] };
    expect(index.models.map((m) => m.id)).toEqual(['small']);
    const { ok, report } = onnxCheck([path.join(trained.modelDir, 'model.onnx')]);
    expect(report).not.toMatch(/FAIL/);
    expect(ok).toBe(true);
  });

  test('on real images the exported model equals the trained eval model within 1e-4, the float16 export the float32 one within float16 rounding', async () => {
    const files = realImages();
    const inputs = new Float32Array(files.length * 3 * 16 * 16);
    const card = JSON.parse(fs.readFileSync(path.join(trained.modelDir, 'model.json'), 'utf8')) as ModelCard;
    for (const [i, f] of files.entries()) inputs.set(preprocessImage(await decodeImage(f), card.input.preprocessing, 3, 16, 16), i * 768);
    const report = await exportModel(trained.runDir, path.join(tmp, 'again', 'small'), { verifyInputs: inputs });
    expect(report.maxDifference).toBeLessThanOrEqual(1e-4);
    expect(report.top1Agreement).toEqual({ agree: files.length, total: files.length });
    const half = await exportModel(trained.runDir, path.join(tmp, 'again', 'small-fp16'), { verifyInputs: inputs, fp16: true });
    expect(half.card.precision).toBe('float16-weights');
    expect(half.card.bytes).toBeLessThan(report.card.bytes * 0.75);
    // The fp16 file really stores most of its weights as float16 (Casts restore float32 for the kernels).
    const stored = [...readModelFile(half.modelFile).graph.initializers.values()];
    const halfElements = stored.filter((t) => t.dtype === 'float16').reduce((n, t) => n + t.size, 0);
    expect(halfElements / stored.reduce((n, t) => n + t.size, 0)).toBeGreaterThan(0.8);

    // Both exported files, run here on the same real images: the float16 one against the float32 one.
    const logitsOf = async (file: string) => {
      const session = await ort.InferenceSession.create(file);
      const out = await session.run({ [card.input.name]: new ort.Tensor('float32', inputs, [files.length, 3, 16, 16]) });
      await session.release();
      return out[card.output.name]!.data as Float32Array;
    };
    const full = await logitsOf(report.modelFile);
    const halfLogits = await logitsOf(half.modelFile);
    const classes = card.labels.length;
    expect(halfLogits).toHaveLength(files.length * classes);
    expect(halfLogits.every(Number.isFinite)).toBe(true);
    // Rounding a weight to float16 (11 significant bits) changes it by at most 2^-11 of itself. If the errors of
    // the three weight layers (batch norm is folded in before rounding) all added up, the logits would move by about
    // 3 * 2^-11 = 1.5e-3 of their size; independent errors partly cancel (measured: 2.5e-4 of the largest |logit|,
    // 1.8e-3 absolute). Softmax moves no probability by more than half the largest logit change (its Jacobian's
    // rows sum to 2 p (1 - p) <= 1/2 in absolute value).
    const bound = 3 * 2 ** -11 * full.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect(maxDiff(full, halfLogits)).toBeLessThanOrEqual(bound);
    expect(maxDiff(softmaxRows(full, classes), softmaxRows(halfLogits, classes))).toBeLessThanOrEqual(bound / 2);
    // Every image keeps its class: the smallest top-1 margin of the float32 model here (0.077) is over twice the bound.
    const top1 = (z: Float32Array) => Array.from({ length: files.length }, (_, n) => argmax(z.subarray(n * classes, (n + 1) * classes)));
    expect(top1(halfLogits)).toEqual(top1(full));
    // What export itself reports for the float16 file (against the trained eval model) says the same.
    expect(half.maxDifference).toBeLessThanOrEqual(bound);
    expect(half.top1Agreement).toEqual({ agree: files.length, total: files.length });
  });

  test('predict prints the top 5 from the CLI, equal to the Predictor API; bad inputs give clear errors', async () => {
    const image = fixture('photos/dog-320.jpg');
    const r = cli(tmp, 'predict', trained.modelDir, image, '--json');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const printed = JSON.parse(r.stdout) as { predictions: { label: string; probability: number }[] };
    expect(printed.predictions).toHaveLength(5);
    const predictor = await Predictor.load(trained.modelDir);
    const direct = await predictor.classify(await decodeImage(image));
    await predictor.release();
    expect(printed.predictions).toEqual(direct);
    expect(printed.predictions.reduce((s, p) => s + p.probability, 0)).toBeLessThanOrEqual(1 + 1e-9);

    const table = cli(tmp, 'predict', trained.modelDir, image);
    expect(table.stdout).toContain(direct[0]!.label);
    expect(table.stdout).toMatch(/\d+\.\d\d %/);

    fs.writeFileSync(path.join(tmp, 'notes.png'), 'not an image');
    const bad = cli(tmp, 'predict', trained.modelDir, path.join(tmp, 'notes.png'), image);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/notes\.png is not a readable image/);
    expect(bad.stdout).toContain(direct[0]!.label);

    expect(cli(tmp, 'predict', tmp, image).stderr).toMatch(/has no model.json: export a model/);
    // A card with a label fewer than the model has scores: one error line, not a top 5 with a class nobody named.
    const short = path.join(tmp, 'short-labels');
    fs.cpSync(trained.modelDir, short, { recursive: true });
    const card = JSON.parse(fs.readFileSync(path.join(short, 'model.json'), 'utf8')) as { labels: string[] };
    fs.writeFileSync(path.join(short, 'model.json'), JSON.stringify({ ...card, labels: card.labels.slice(1) }));
    const mismatch = cli(tmp, 'predict', short, image);
    expect(mismatch.status).toBe(1);
    expect(mismatch.stderr).toMatch(new RegExp(`^error: .*the model gave ${card.labels.length} scores for ${card.labels.length - 1} labels\\n$`));
    expect(cli(tmp, 'export', tmp, '--out', path.join(tmp, 'x')).stderr).toMatch(/is not a deepvision training folder: inference_model.onnx is missing/);
  });
});

/** Softmax of each row of `classes` logits. */
function softmaxRows(z: Float32Array, classes: number): Float32Array {
  const p = new Float32Array(z.length);
  for (let r = 0; r < z.length; r += classes) {
    const row = z.subarray(r, r + classes);
    const m = Math.max(...row);
    let sum = 0;
    row.forEach((v, j) => (sum += p[r + j] = Math.exp(v - m)));
    for (let j = 0; j < classes; j++) p[r + j]! /= sum;
  }
  return p;
}

function argmax(z: Float32Array): number {
  return z.reduce((best, v, i) => (v > z[best]! ? i : best), 0);
}
