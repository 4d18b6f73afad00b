/** Augmentation: deterministic per seed, what each transform does, never applied to validation; the worker pipeline. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import mlp from '../graphs/mlp';
import { assembleBatch, BatchSpec } from '../src/data/assemble-batch';
import { AugmentConfig, NO_AUGMENTATION, STANDARD_AUGMENTATION } from '../src/data/augment';
import { fillBatch } from '../src/data/dataset';
import { generateShapes } from '../src/data/shapes';
import { buildEvalGraph } from '../src/model/training-graph';
import { encodeModel } from '../src/onnx/write';
import { evaluate, train } from '../src/train/trainer';

const set = generateShapes({ count: 16, imageSize: 12, seed: 3 });
const norm = { mean: [0, 0, 0], std: [1 / 255, 1 / 255, 1 / 255] }; // normalized value = pixel value
const spec = (augment: AugmentConfig, seed = 0): BatchSpec => ({
  pixels: set.pixels, labels: set.labels, channels: 3, height: 12, width: 12, normalization: norm, augment, seed,
});
const image = 3 * 12 * 12;

function batch(s: BatchSpec, indices: number[], epoch = 0, b = 0): Float32Array {
  const input = new Float32Array(indices.length * image);
  assembleBatch(s, indices, epoch, b, input, new BigInt64Array(indices.length));
  return input;
}

const at = (img: Float32Array, n: number, c: number, y: number, x: number) => img[n * image + c * 144 + y * 12 + x]!;
const source = (n: number, c: number, y: number, x: number) => set.pixels[n * image + c * 144 + y * 12 + x]!;

test('no augmentation is exactly the plain normalized batch', () => {
  const input = new Float32Array(4 * image);
  fillBatch(set, [3, 1, 4, 1], norm, input, new BigInt64Array(4));
  expect(batch(spec(NO_AUGMENTATION), [3, 1, 4, 1])).toEqual(input);
});

test('deterministic for a seed, epoch and batch; different when any of them changes', () => {
  const heavy: AugmentConfig = { ...STANDARD_AUGMENTATION, rotate: 20, translate: 0.1, scaleMin: 0.9, scaleMax: 1.1, brightness: 0.3, contrast: 0.3, saturation: 0.3, vflip: 0.5 };
  const a = batch(spec(heavy, 5), [0, 1, 2, 3], 2, 7);
  expect(batch(spec(heavy, 5), [0, 1, 2, 3], 2, 7)).toEqual(a);
  expect(batch(spec(heavy, 6), [0, 1, 2, 3], 2, 7)).not.toEqual(a);
  expect(batch(spec(heavy, 5), [0, 1, 2, 3], 3, 7)).not.toEqual(a);
  expect(batch(spec(heavy, 5), [0, 1, 2, 3], 2, 8)).not.toEqual(a);
  for (const v of a) expect(v >= 0 && v <= 255).toBe(true);
});

test('flips mirror exactly; padded crops shift by at most the padding with black outside', () => {
  const flipped = batch(spec({ ...NO_AUGMENTATION, hflip: 1, vflip: 1 }), [5]);
  for (let y = 0; y < 12; y++) for (let x = 0; x < 12; x++) expect(at(flipped, 0, 1, y, x)).toBe(source(5, 1, 11 - y, 11 - x));
  const cropped = batch(spec({ ...NO_AUGMENTATION, cropPadding: 2 }), [5]);
  const shifts: [number, number][] = [];
  for (let dy = -2; dy <= 2; dy++) {
    for (let dx = -2; dx <= 2; dx++) {
      let same = true;
      for (let y = 0; y < 12 && same; y++) {
        for (let x = 0; x < 12 && same; x++) {
          const inside = y + dy >= 0 && y + dy < 12 && x + dx >= 0 && x + dx < 12;
          same = at(cropped, 0, 0, y, x) === (inside ? source(5, 0, y + dy, x + dx) : 0);
        }
      }
      if (same) shifts.push([dx, dy]);
    }
  }
  expect(shifts.length).toBeGreaterThanOrEqual(1);
});

test('a 90 degree rotation moves pixels around the centre; brightness scales and clamps', () => {
  const rotated = batch(spec({ ...NO_AUGMENTATION, rotate: 90 }), [2], 0, 0);
  // The angle is drawn from [-90, 90]; whatever it is, the centre 2x2 block stays within the image and non-black.
  expect(at(rotated, 0, 0, 6, 6) + at(rotated, 0, 1, 6, 6) + at(rotated, 0, 2, 6, 6)).toBeGreaterThan(0);
  const bright = batch(spec({ ...NO_AUGMENTATION, brightness: 0.5 }), [2]);
  const ratio = at(bright, 0, 0, 0, 0) / source(2, 0, 0, 0);
  expect(ratio).toBeGreaterThanOrEqual(0.5);
  expect(ratio).toBeLessThanOrEqual(1.5);
  for (let i = 0; i < image; i++) {
    const src = set.pixels[2 * image + i]!;
    expect(bright[i]).toBeCloseTo(Math.min(255, src * ratio), 3);
  }
});

test('the trainer augments training batches only: its validation numbers equal a plain evaluation', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-augment-'));
  try {
    const trainSet = generateShapes({ count: 128, imageSize: 8, seed: 0 });
    const valSet = generateShapes({ count: 64, imageSize: 8, seed: 1 });
    const strong: AugmentConfig = { ...STANDARD_AUGMENTATION, vflip: 1, rotate: 45, brightness: 0.5 };
    const options = { definition: mlp, config: { hidden: 16 }, train: trainSet, val: valSet, epochs: 1, batchSize: 32, optimizer: { kind: 'sgd' as const }, learningRate: 0.05, threads: 1, seed: 1, trainAccuracySample: 0 };
    const r = await train({ ...options, outDir: path.join(tmp, 'a'), augment: strong });
    const plain = await train({ ...options, outDir: path.join(tmp, 'b') });
    // Augmentation changed training...
    expect(r.history[0]!.trainLoss).not.toBe(plain.history[0]!.trainLoss);
    // ...but validation saw the plain images: re-evaluating the final parameters without augmentation gives the same.
    const { model } = buildEvalGraph(mlp, { config: { hidden: 16, numClasses: 10, imageSize: 8 }, seed: 1 });
    const session = await ort.InferenceSession.create(encodeModel(model));
    const names = session.inputNames.filter((n) => n !== 'input' && n !== 'labels');
    const again = await evaluate(session, names, r.tensors, valSet, r.normalization, 10);
    expect(again.loss).toBe(r.history[0]!.valLoss);
    expect(again.top1).toBe(r.history[0]!.valTop1);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('worker threads assemble exactly the batches the trainer thread would (compiled pipeline)', async () => {
  // Worker threads need the compiled worker script: use the build (npm test builds before jest).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { BatchPipeline } = require('../dist/data/batch-pipeline') as typeof import('../src/data/batch-pipeline');
  const heavy: AugmentConfig = { ...STANDARD_AUGMENTATION, rotate: 15, brightness: 0.2 };
  const order = [...Array(16).keys()].reverse();
  const collect = async (workers: number) => {
    const p = new BatchPipeline(spec(heavy, 9), workers);
    const out: Float32Array[] = [];
    // Copied: inline mode reuses two buffers, so a batch is only valid until the one after next is requested.
    for await (const b of p.epoch(order, 5, 3, 1)) out.push(Float32Array.from(b.input));
    const threads = p.threads;
    await p.close();
    return { out, threads };
  };
  const inline = await collect(0);
  const threaded = await collect(2);
  expect(threaded.threads).toBe(2);
  expect(inline.out).toHaveLength(3);
  expect(threaded.out).toEqual(inline.out);
  expect(inline.out[0]).toEqual(batch(spec(heavy, 9), order.slice(5, 10), 3, 1));
});
