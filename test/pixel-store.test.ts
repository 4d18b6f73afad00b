/**
 * Decoded image folders live on disk as records (issue 21): the batches, their order, the statistics and the splits
 * a record set gives must equal what the same images held in memory give, and records spread over several shard
 * files must read back in order.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { STANDARD_AUGMENTATION } from '../src/data/augment';
import { BatchPipeline } from '../src/data/batch-pipeline';
import { channelStatistics, fillBatch, hashImages, ImageDataset, InMemoryImageDataset, readAllPixels, subsetOf } from '../src/data/dataset';
import { loadImageSet } from '../src/data/load-image-set';
import { openPixelReader, shardLayout } from '../src/data/pixel-store';
import { GraphBuilder } from '../src/dsl/builder';
import * as F from '../src/dsl/functional';
import { computeFeatures, readFeatureRows } from '../src/train/frozen-features';
import mlp from '../graphs/mlp';
import { train as trainModel, TrainOptions } from '../src/train/trainer';
import { Rng } from '../src/util/rng';

let tmp: string;
let root: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-records-'));
  root = path.join(tmp, 'photos');
  const rng = new Rng('records');
  for (const cls of ['a', 'b', 'c']) {
    fs.mkdirSync(path.join(root, cls), { recursive: true });
    for (let i = 0; i < 7; i++) {
      const [w, h] = [10 + rng.int(20), 10 + rng.int(20)];
      const raw = Buffer.from(Array.from({ length: w * h * 3 }, () => rng.int(256)));
      await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).png().toFile(path.join(root, cls, `${i}.png`));
    }
  }
  // One file that is not an image: its record stays unused and the split skips it.
  fs.writeFileSync(path.join(root, 'a', 'broken.png'), 'not a png');
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The same images held in memory. */
function inMemory(data: ImageDataset): InMemoryImageDataset {
  return { ...data, records: undefined, pixels: readAllPixels(data) };
}

async function batchesOf(data: ImageDataset, workers: number): Promise<Float32Array[]> {
  // Worker threads need the compiled worker script: use the build (npm test builds before jest).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Pipeline = workers > 0 ? (require('../dist/data/batch-pipeline') as typeof import('../src/data/batch-pipeline')).BatchPipeline : BatchPipeline;
  const pipeline = new Pipeline({
    source: data.records ?? { kind: 'memory', pixels: data.pixels }, labels: data.labels, channels: 3, height: 12, width: 12,
    normalization: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }, augment: STANDARD_AUGMENTATION, seed: 4,
  }, workers);
  const out: Float32Array[] = [];
  const order = new Rng('order').shuffle([...Array(data.count).keys()]);
  for await (const b of pipeline.epoch(order, 5, 1)) out.push(Float32Array.from(b.input));
  await pipeline.close();
  return out;
}

test('a folder decoded to records gives the batches, order, statistics and splits of the same images in memory', async () => {
  const cacheDir = path.join(tmp, 'cache');
  const notices: string[] = [];
  const { train, val, fromCache } = await loadImageSet(root, { imageSize: 12, cacheDir, valFraction: 0.25, seed: 1, onSkipped: (m) => notices.push(m) });
  expect(fromCache).toBe(false);
  expect(train.records.kind).toBe('records');
  expect(train.count + val.count).toBe(21);
  expect(notices).toEqual([expect.stringMatching(/^skipped 1 unreadable image \(broken\.png/)]);
  // The cache is a folder of shard files and an index; nothing else is left behind.
  expect(fs.readdirSync(cacheDir)).toEqual([expect.stringMatching(/^photos-[0-9a-f]+\.records$/)]);

  const memory = inMemory(train);
  expect(channelStatistics(train)).toEqual(channelStatistics(memory));
  const indices = [4, 0, 9, 9, 2];
  const [a, b] = [new Float32Array(5 * 432), new Float32Array(5 * 432)];
  fillBatch(train, indices, { mean: [0.1, 0.2, 0.3], std: [0.3, 0.2, 0.1] }, a, new BigInt64Array(5));
  fillBatch(memory, indices, { mean: [0.1, 0.2, 0.3], std: [0.3, 0.2, 0.1] }, b, new BigInt64Array(5));
  expect(a).toEqual(b);
  const inline = await batchesOf(memory, 0);
  expect(await batchesOf(train, 0)).toEqual(inline);
  // Worker threads open the record files themselves.
  expect(await batchesOf(train, 2)).toEqual(inline);
  const sample = subsetOf(train, [3, 1, 7]);
  expect(readAllPixels(sample)).toEqual(readAllPixels(subsetOf(memory, [3, 1, 7])));
  expect(sample.labels).toEqual(Int32Array.from([3, 1, 7], (i) => train.labels[i]!));

  // Decode workers (the compiled loader has them; these sources decode inline) write the same records.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const compiled = require('../dist/data/load-image-set') as typeof import('../src/data/load-image-set');
  const byWorkers = await compiled.loadImageSet(root, { imageSize: 12, cacheDir: path.join(tmp, 'cache-workers'), valFraction: 0.25, seed: 1 });
  expect(byWorkers.fromCache).toBe(false);
  expect(readAllPixels(byWorkers.train)).toEqual(memory.pixels);
  expect(byWorkers.train.labels).toEqual(train.labels);

  // The second load reads the records again: the same images, split the same way.
  const again = await loadImageSet(root, { imageSize: 12, cacheDir, valFraction: 0.25, seed: 1 });
  expect(again.fromCache).toBe(true);
  expect(readAllPixels(again.train)).toEqual(memory.pixels);
  expect(readAllPixels(again.val)).toEqual(readAllPixels(val));
  expect(again.val.labels).toEqual(val.labels);
});

test('records spread over several shard files read back in order, and a damaged cache is decoded again', async () => {
  const dir = path.join(tmp, 'shards');
  fs.mkdirSync(dir);
  const imageBytes = 6;
  const shards = shardLayout(dir, 'train', 7, imageBytes, 18);
  expect(shards.map((s) => [path.basename(s.file), s.slots])).toEqual([['train-000.bin', 3], ['train-001.bin', 3], ['train-002.bin', 1]]);
  shards.forEach((s, k) => fs.writeFileSync(s.file, Uint8Array.from({ length: s.slots * imageBytes }, (_, i) => 10 * (3 * k + Math.floor(i / imageBytes)) + (i % imageBytes))));
  const reader = openPixelReader({ kind: 'records', shards, rows: Int32Array.of(6, 0, 3, 2) }, imageBytes);
  const out = new Uint8Array(3 * imageBytes);
  reader.gather([0, 2, 3], out);
  expect([...out]).toEqual([60, 61, 62, 63, 64, 65, 30, 31, 32, 33, 34, 35, 20, 21, 22, 23, 24, 25]);
  reader.close();

  const cacheDir = path.join(tmp, 'damaged');
  const first = await loadImageSet(root, { imageSize: 8, cacheDir });
  const before = readAllPixels(first.train);
  const shard = first.train.records.shards[0]!.file;
  fs.truncateSync(shard, 10);
  const second = await loadImageSet(root, { imageSize: 8, cacheDir });
  expect(second.fromCache).toBe(false);
  expect(readAllPixels(second.train)).toEqual(before);
  expect(fs.statSync(second.train.records.shards[0]!.file).size).toBe(second.train.records.shards[0]!.slots * 3 * 64);
});

test('frozen features computed from records equal those of the same images in memory, and come back from their cache', async () => {
  const { train } = await loadImageSet(root, { imageSize: 12, cacheDir: path.join(tmp, 'feature-images') });
  // A per-image "backbone": pooled channels and a scaled copy, 6 values per image.
  const b = new GraphBuilder('features', 'eval');
  const x = b.input('input', 'float32', ['batch', 3, 12, 12]);
  b.output('features', b.run(() => F.concat([F.flatten(F.globalAvgPool(x)), F.flatten(F.globalAvgPool(F.mul(x, 2)))], 1)));
  const model = b.toModel();
  const split = { value: 'features', perImage: [6] };
  const options = { normalization: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }, sessionOptions: {}, cacheDir: path.join(tmp, 'feature-cache') };
  const [fromRecords] = await computeFeatures(model, split, [train], options);
  const [fromMemory] = await computeFeatures(model, split, [inMemory(train)], { ...options, cacheDir: path.join(tmp, 'feature-cache-memory') });
  const rows = (f: typeof fromRecords) => {
    const out = new Float32Array(train.count * 6);
    readFeatureRows(f!, Array.from({ length: train.count }, (_, i) => i), out);
    return out;
  };
  expect(fromRecords!.rows.kind).toBe('records');
  expect(rows(fromRecords)).toEqual(rows(fromMemory));
  expect(rows(fromRecords).some((v) => v !== 0)).toBe(true);
  // The second pass reads the cache: the same rows, and no new folder.
  const before = fs.readdirSync(path.join(tmp, 'feature-cache', 'features'));
  const [again] = await computeFeatures(model, split, [train], options);
  expect(rows(again)).toEqual(rows(fromRecords));
  expect(fs.readdirSync(path.join(tmp, 'feature-cache', 'features'))).toEqual(before);
  // Ctrl-C between batches stops the pass with one clear line, and leaves no cache behind.
  const stopDir = path.join(tmp, 'feature-cache-stopped');
  await expect(computeFeatures(model, split, [train], { ...options, cacheDir: stopDir, shouldStop: () => true }))
    .rejects.toThrow(/^stopped during the backbone's feature pass \(0 of \d+ photos\/train images\): nothing was trained or cached$/);
  expect(fs.readdirSync(path.join(stopDir, 'features'))).toEqual([]);
});

test('training on records equals training on the same images in memory, and a resumed run on records is exact', async () => {
  const { train, val } = await loadImageSet(root, { imageSize: 8, cacheDir: path.join(tmp, 'train-records'), valFraction: 0.25, seed: 3 });
  const options = (data: [ImageDataset, ImageDataset], outDir: string): TrainOptions => ({
    definition: mlp, config: { hidden: 8 }, train: data[0], val: data[1], epochs: 2, batchSize: 4, augment: STANDARD_AUGMENTATION,
    optimizer: { kind: 'sgd', momentum: 0.9 }, learningRate: 0.05, outDir, threads: 1, seed: 5, trainAccuracySample: 6,
  });
  const bytes = (r: Awaited<ReturnType<typeof trainModel>>) => [...r.tensors].map(([name, t]) => [name, Buffer.from((t.data as Float32Array).buffer).toString('base64')]);
  const fromRecords = await trainModel(options([train, val], path.join(tmp, 'run-records')));
  const fromMemory = await trainModel(options([inMemory(train), inMemory(val)], path.join(tmp, 'run-memory')));
  expect(bytes(fromRecords)).toEqual(bytes(fromMemory));
  expect(fromRecords.history.map((h) => h.valLoss)).toEqual(fromMemory.history.map((h) => h.valLoss));
  // Stopped in the middle of the second epoch and resumed: the same parameters as the run that went through.
  const partial = await trainModel({ ...options([train, val], path.join(tmp, 'run-partial')), maxSteps: 6 });
  expect(partial.stopped).toBe('max-steps');
  const resumed = await trainModel({ ...options([train, val], path.join(tmp, 'run-partial')), resume: partial.lastCheckpoint });
  expect(bytes(resumed)).toEqual(bytes(fromRecords));
});

test('the feature-cache key of a record set names its cache folder: two data sets of the same layout never share features', () => {
  const set = (folder: string): ImageDataset => ({
    name: 'x', classNames: ['a'], count: 2, channels: 3, height: 2, width: 2, labels: Int32Array.of(0, 0),
    records: { kind: 'records', shards: [{ file: path.join(tmp, folder, 'train-000.bin'), slots: 2 }], rows: Int32Array.of(0, 1) },
  });
  const key = (data: ImageDataset) => hashImages(createHash('sha256'), data).digest('hex');
  expect(key(set('photos-aaaa.records'))).not.toBe(key(set('photos-bbbb.records')));
  expect(key(set('photos-aaaa.records'))).toBe(key(set('photos-aaaa.records')));
});
