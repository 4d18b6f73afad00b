/** Augmentation: deterministic per seed, what each transform does, never applied to validation; the worker pipeline. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import mlp from '../graphs/mlp';
import { augmentFromFlags } from '../src/cli/augment-flags';
import { assembleBatch, BatchSpec } from '../src/data/assemble-batch';
import { AugmentConfig, NO_AUGMENTATION, STANDARD_AUGMENTATION } from '../src/data/augment';
import { fillBatch } from '../src/data/dataset';
import { openPixelReader } from '../src/data/pixel-store';
import { generateShapes } from '../src/data/shapes';
import { buildEvalGraph } from '../src/model/training-graph';
import { encodeModel } from '../src/onnx/write';
import { evaluate, train } from '../src/train/trainer';

const set = generateShapes({ count: 16, imageSize: 12, seed: 3 });
const norm = { mean: [0, 0, 0], std: [1 / 255, 1 / 255, 1 / 255] }; // normalized value = pixel value
const spec = (augment: AugmentConfig, seed = 0): BatchSpec => ({
  source: { kind: 'memory', pixels: set.pixels }, labels: set.labels, channels: 3, height: 12, width: 12, normalization: norm, augment, seed,
});
const image = 3 * 12 * 12;

function batch(s: BatchSpec, indices: number[], epoch = 0, b = 0): Float32Array {
  const input = new Float32Array(indices.length * image);
  assembleBatch(s, openPixelReader(s.source, image), indices, epoch, b, input, new BigInt64Array(indices.length));
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

test('flips mirror exactly', () => {
  const flipped = batch(spec({ ...NO_AUGMENTATION, hflip: 1, vflip: 1 }), [5]);
  for (let y = 0; y < 12; y++) for (let x = 0; x < 12; x++) expect(at(flipped, 0, 1, y, x)).toBe(source(5, 1, 11 - y, 11 - x));
  const mirrored = batch(spec({ ...NO_AUGMENTATION, hflip: 1 }), [5]);
  for (let y = 0; y < 12; y++) for (let x = 0; x < 12; x++) expect(at(mirrored, 0, 2, y, x)).toBe(source(5, 2, y, 11 - x));
});

/*
 * Coordinate images for the geometric transforms: channel 0 is 20 x + 10, channel 1 is 20 y + 10, channel 2 is 200.
 * Bilinear interpolation of a linear ramp is exact, so each output pixel reads back the source coordinates it was
 * sampled from, and channel 2 is still 200 exactly where no sample fell outside the image (outside is black, 0).
 */
const COORDS = 500;
const coordPixels = new Uint8Array(COORDS * image);
for (let n = 0; n < COORDS; n++) {
  for (let y = 0; y < 12; y++) {
    for (let x = 0; x < 12; x++) {
      coordPixels[n * image + y * 12 + x] = 20 * x + 10;
      coordPixels[n * image + 144 + y * 12 + x] = 20 * y + 10;
      coordPixels[n * image + 288 + y * 12 + x] = 200;
    }
  }
}
const coordBatch = (augment: AugmentConfig, seed: number) => batch({ ...spec(augment, seed), source: { kind: 'memory', pixels: coordPixels }, labels: new Int32Array(COORDS) }, [...Array(COORDS).keys()]);
const ramp = (c: number, x: number, y: number) => (c === 0 ? 20 * x + 10 : c === 1 ? 20 * y + 10 : 200);

test('padded crops shift by every offset within the padding, exactly, with black outside', () => {
  const out = coordBatch({ ...NO_AUGMENTATION, cropPadding: 2 }, 4);
  const seen = new Map<string, number>();
  for (let n = 0; n < COORDS; n++) {
    // The centre pixel is inside the image for any shift within the padding: it reads the shift back.
    const dx = (at(out, n, 0, 6, 6) - 10) / 20 - 6;
    const dy = (at(out, n, 1, 6, 6) - 10) / 20 - 6;
    expect(Number.isInteger(dx) && Number.isInteger(dy) && Math.abs(dx) <= 2 && Math.abs(dy) <= 2).toBe(true);
    seen.set(`${dx},${dy}`, (seen.get(`${dx},${dy}`) ?? 0) + 1);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 12; y++) {
        for (let x = 0; x < 12; x++) {
          const inside = x + dx >= 0 && x + dx < 12 && y + dy >= 0 && y + dy < 12;
          if (at(out, n, c, y, x) !== (inside ? ramp(c, x + dx, y + dy) : 0)) throw new Error(`image ${n} shifted by (${dx}, ${dy}) differs at c${c} y${y} x${x}`);
        }
      }
    }
  }
  // All 25 offsets occur (a crop that never moves, or never uses the full padding, fails), none of them dominant.
  expect(seen.size).toBe(25);
  expect(Math.max(...seen.values())).toBeLessThan(0.1 * COORDS);
});

test('rotations turn the image about its centre by angles spread over [-rotate, rotate], black outside', () => {
  const rotate = 90;
  const out = coordBatch({ ...NO_AUGMENTATION, rotate }, 2);
  const c0 = 5.5; // the centre of a 12-pixel side, in pixel coordinates
  const angles: number[] = [];
  for (let n = 0; n < COORDS; n++) {
    // Where channel 2 is intact, the pixel is the exact source position (sx, sy) it was sampled from: fit the
    // rotation about the centre that maps output positions there (least squares: the angle of sum(u x s, u . s)).
    let cross = 0;
    let dot = 0;
    let intact = 0;
    for (let y = 0; y < 12; y++) {
      for (let x = 0; x < 12; x++) {
        if (Math.abs(at(out, n, 2, y, x) - 200) > 1e-3) continue;
        const [ux, uy, sx, sy] = [x - c0, y - c0, (at(out, n, 0, y, x) - 10) / 20 - c0, (at(out, n, 1, y, x) - 10) / 20 - c0];
        cross += ux * sy - uy * sx;
        dot += ux * sx + uy * sy;
        intact++;
      }
    }
    // A disc of radius 5 about the centre stays inside at any angle (~80 pixels): an image without them is broken.
    expect(intact).toBeGreaterThanOrEqual(60);
    const theta = Math.atan2(cross, dot);
    angles.push((theta * 180) / Math.PI);
    // The exact rotated image: bilinear samples of the coordinate image at the rotated positions, 0 outside. Every
    // pixel must match it, so the transform is this rotation (not a shift, scale or shear) and the border is black.
    const [cos, sin] = [Math.cos(theta), Math.sin(theta)];
    for (let y = 0; y < 12; y++) {
      for (let x = 0; x < 12; x++) {
        const sx = cos * (x - c0) - sin * (y - c0) + c0;
        const sy = sin * (x - c0) + cos * (y - c0) + c0;
        const [x0, y0] = [Math.floor(sx), Math.floor(sy)];
        const [fx, fy] = [sx - x0, sy - y0];
        for (let c = 0; c < 3; c++) {
          const v = (xx: number, yy: number) => (xx >= 0 && xx < 12 && yy >= 0 && yy < 12 ? ramp(c, xx, yy) : 0);
          const want = (1 - fy) * ((1 - fx) * v(x0, y0) + fx * v(x0 + 1, y0)) + fy * ((1 - fx) * v(x0, y0 + 1) + fx * v(x0 + 1, y0 + 1));
          if (!(Math.abs(at(out, n, c, y, x) - want) < 1e-2)) throw new Error(`image ${n} (rotated ${angles[n]} degrees) differs at c${c} y${y} x${x}: ${at(out, n, c, y, x)} vs ${want}`);
        }
      }
    }
  }
  // Angles are drawn uniformly from [-90, 90]: all within it, both directions, most far from the identity.
  expect(Math.max(...angles.map(Math.abs))).toBeLessThanOrEqual(rotate + 1e-3);
  expect(Math.min(...angles)).toBeLessThan(-0.8 * rotate);
  expect(Math.max(...angles)).toBeGreaterThan(0.8 * rotate);
  expect(angles.filter((a) => Math.abs(a) > 10).length).toBeGreaterThan(0.8 * COORDS);
});

test('brightness scales every pixel by one factor per image, drawn from [1 - b, 1 + b], and clamps at 255', () => {
  // Image 4 has white (255) pixels, to clamp; a mid-grey one of its pixels (no clamping at any factor up to 1.5) reads the factor back.
  const ref = [...Array(image).keys()].find((i) => set.pixels[4 * image + i]! > 20 && set.pixels[4 * image + i]! < 150)!;
  expect(ref).toBeDefined();
  const ratios: number[] = [];
  let clamped = 0;
  for (let b = 0; b < 10; b++) {
    const bright = batch(spec({ ...NO_AUGMENTATION, brightness: 0.5 }), [4], 0, b);
    const ratio = bright[ref]! / set.pixels[4 * image + ref]!;
    ratios.push(ratio);
    for (let i = 0; i < image; i++) {
      const src = set.pixels[4 * image + i]!;
      if (src * ratio > 255) clamped++;
      expect(Math.abs(bright[i]! - Math.min(255, src * ratio))).toBeLessThan(1e-3);
    }
  }
  expect(Math.min(...ratios)).toBeGreaterThanOrEqual(0.5);
  expect(Math.max(...ratios)).toBeLessThanOrEqual(1.5);
  // The factor changes from batch to batch (an identity brightness has them all at 1) and clamping happened.
  expect(Math.max(...ratios) - Math.min(...ratios)).toBeGreaterThan(0.3);
  expect(clamped).toBeGreaterThan(0);
});

test('random erasing blanks one rectangle of 2-33 % of the image in every channel, and leaves every other draw as it was', () => {
  const heavy: AugmentConfig = { ...STANDARD_AUGMENTATION, rotate: 10, brightness: 0.2 };
  const plain = coordBatch(heavy, 9);
  const erased = coordBatch({ ...heavy, erase: 1 }, 9);
  const areas: number[] = [];
  for (let n = 0; n < COORDS; n++) {
    let top = 12, bottom = -1, left = 12, right = -1;
    for (let y = 0; y < 12; y++) {
      for (let x = 0; x < 12; x++) {
        const changed = [0, 1, 2].map((c) => at(erased, n, c, y, x) !== at(plain, n, c, y, x));
        if (changed.some((v) => v)) {
          top = Math.min(top, y); bottom = Math.max(bottom, y); left = Math.min(left, x); right = Math.max(right, x);
        }
      }
    }
    // Everything that changed lies in one box, and the whole box (every channel) is the mean colour, 0.
    if (bottom < 0) continue; // a box over pixels that were already black
    for (let y = top; y <= bottom; y++) for (let x = left; x <= right; x++) for (let c = 0; c < 3; c++) expect(at(erased, n, c, y, x)).toBe(0);
    areas.push((bottom - top + 1) * (right - left + 1));
  }
  expect(areas.length).toBeGreaterThan(COORDS * 0.9);
  expect(Math.max(...areas)).toBeLessThanOrEqual(Math.round(0.33 * 144) + 12);
  expect(Math.min(...areas)).toBeLessThan(10);
  // With probability 0.5, about half the images are erased.
  const half = coordBatch({ ...heavy, erase: 0.5 }, 9);
  let count = 0;
  for (let n = 0; n < COORDS; n++) if (half.subarray(n * image, (n + 1) * image).some((v, i) => v !== plain[n * image + i])) count++;
  expect(count).toBeGreaterThan(COORDS * 0.4);
  expect(count).toBeLessThan(COORDS * 0.6);
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

test('test-time augmentation with flips: the softmax of each image and its mirror image, averaged', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-tta-'));
  try {
    const trainSet = generateShapes({ count: 128, imageSize: 8, seed: 0 });
    const valSet = generateShapes({ count: 40, imageSize: 8, seed: 1 });
    const r = await train({ definition: mlp, config: { hidden: 16 }, train: trainSet, val: valSet, epochs: 1, batchSize: 32, optimizer: { kind: 'sgd' }, learningRate: 0.05, threads: 1, seed: 1, trainAccuracySample: 0, outDir: tmp });
    const { model } = buildEvalGraph(mlp, { config: { hidden: 16, numClasses: 10, imageSize: 8 }, seed: 1 });
    const session = await ort.InferenceSession.create(encodeModel(model));
    const names = session.inputNames.filter((n) => n !== 'input' && n !== 'labels');
    const tta = await evaluate(session, names, r.tensors, valSet, r.normalization, 10, undefined, { flip: true });

    // The same by hand: every image, then every image mirrored, through the session.
    const mirrored = new Uint8Array(valSet.pixels);
    for (let row = 0; row < mirrored.length; row += 8) mirrored.subarray(row, row + 8).reverse();
    const indices = [...Array(40).keys()];
    const softmax = async (pixels: Uint8Array) => {
      const input = new Float32Array(40 * 3 * 64);
      const labels = new BigInt64Array(40);
      fillBatch({ ...valSet, pixels }, indices, r.normalization, input, labels);
      const feeds: Record<string, ort.Tensor> = { input: new ort.Tensor('float32', input, [40, 3, 8, 8]), labels: new ort.Tensor('int64', labels, [40]) };
      for (const name of names) feeds[name] = r.tensors.get(name)!;
      const logits = (await session.run(feeds)).logits!.data as Float32Array;
      return indices.map((i) => {
        const row = [...logits.subarray(i * 10, i * 10 + 10)];
        const sum = row.reduce((a, v) => a + Math.exp(v), 0);
        return row.map((v) => Math.exp(v) / sum);
      });
    };
    const [a, b] = [await softmax(valSet.pixels), await softmax(mirrored)];
    const averaged = indices.map((i) => a[i]!.map((p, k) => (p + b[i]![k]!) / 2));
    const label = (i: number) => valSet.labels[i]!;
    const loss = indices.reduce((s, i) => s - Math.log(averaged[i]![label(i)]!), 0) / 40;
    const top1 = indices.filter((i) => averaged[i]!.every((p) => p <= averaged[i]![label(i)]!)).length / 40;
    expect(tta.loss).toBeCloseTo(loss, 5);
    expect(tta.top1).toBe(top1);
    // Mirroring changes what this model sees, so the averaged result differs from a plain evaluation.
    expect(tta.loss).not.toBeCloseTo((await evaluate(session, names, r.tensors, valSet, r.normalization, 10)).loss, 3);
    await expect(evaluate(session, names, r.tensors, valSet, r.normalization, 10, { name: 'features', count: 40 } as never, { flip: true })).rejects.toThrow('needs the images');
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

test('the augmentation options: parts on top of a preset, and one clear error for values out of range', () => {
  expect(augmentFromFlags({ augment: 'standard', erase: '0.5', scale: '0.9,1.1' })).toEqual({ ...STANDARD_AUGMENTATION, erase: 0.5, scaleMin: 0.9, scaleMax: 1.1 });
  expect(() => augmentFromFlags({ augment: 'none', erase: '1.5' })).toThrow('augmentation: erase must be a probability in [0, 1], got 1.5');
  expect(() => augmentFromFlags({ augment: 'none', erase: 'half' })).toThrow("--erase got 'half', which is not a number");
  expect(() => augmentFromFlags({ augment: 'none', scale: '0.9' })).toThrow('--scale takes min,max');
});
