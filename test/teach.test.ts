/**
 * Teach bundles (deepvision export-teach) and the Teach session in Node: the bundle's head graphs train exactly as
 * the Node trainer trains the same transfer model on cached features, the taught model assembled from the bundle is
 * one ordinary ONNX model, and the folder is written all or nothing.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadGraphFile } from '../src/cli/load-graph';
import { fillBatch, ImageDataset } from '../src/data/dataset';
import type { TeachBundleCard } from '../src/export/teach-card';
import { teachCardProblems } from '../src/export/teach-card';
import { writeTeachBundle } from '../src/export/teach-bundle';
import { heldOutSplit, HeadTrainer } from '../src/train/teach-session';
import { spliceHead } from '../src/export/teach-splice';
import { decodeModel } from '../src/onnx/read';
import { train } from '../src/train/trainer';
import type { TensorClass } from '../src/train/training-step';
import { Rng } from '../src/util/rng';
import { cli } from './support/exported-model';
import { writeSmallBackbone } from './support/small-backbone';

const transfer = loadGraphFile(path.resolve(__dirname, '..', 'graphs', 'transfer.ts'));
const MEAN = [0.5, 0.4, 0.3];
const STD = [0.2, 0.25, 0.3];
let tmp: string;
let backbone: string;
let bundle: string;
let card: TeachBundleCard;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-teach-'));
  backbone = writeSmallBackbone(tmp);
  bundle = path.join(tmp, 'bundle');
  card = (await writeTeachBundle(transfer, bundle, { backbone, mean: MEAN, std: STD, classCounts: [2, 3] })).card;
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** 24 seeded random 9x9 images of 3 classes. */
function randomImages(): ImageDataset {
  const rng = new Rng('teach-images');
  const count = 24;
  return {
    name: 'random', classNames: ['a', 'b', 'c'], count, channels: 3, height: 9, width: 9,
    pixels: Uint8Array.from({ length: count * 3 * 81 }, () => rng.int(256)), labels: Int32Array.from({ length: count }, (_, i) => i % 3),
  };
}

async function headTrainer(classes: number): Promise<{ trainer: HeadTrainer; release: () => Promise<void> }> {
  const head = card.heads.find((h) => h.classes === classes)!;
  const dir = path.join(bundle, head.folder);
  const sessions = {
    training: await ort.InferenceSession.create(path.join(dir, head.training)),
    optimizer: await ort.InferenceSession.create(path.join(dir, head.optimizer)),
    eval: await ort.InferenceSession.create(path.join(dir, head.eval)),
  };
  const init = fs.readFileSync(path.join(dir, head.init));
  const trainer = new HeadTrainer(head, sessions, init.buffer.slice(init.byteOffset, init.byteOffset + init.byteLength), ort.Tensor as unknown as TensorClass);
  return { trainer, release: async () => void (await Promise.all(Object.values(sessions).map((s) => s.release()))) };
}

test('the bundle: a feature model, heads with training, optimizer, eval and inference graphs, and a card the page accepts', () => {
  expect(teachCardProblems(card)).toEqual([]);
  expect(card.backbone).toEqual({ file: 'small-backbone.onnx', cut: 'features', parameters: expect.any(Number) });
  expect(card.features).toBe(8);
  expect(card.input).toEqual({ name: 'input', shape: [3, 9, 9], preprocessing: { resizeShorterSide: 9, mean: MEAN, std: STD } });
  expect(card.heads.map((h) => h.classes)).toEqual([2, 3]);
  expect(card.heads[1]!.parameters).toEqual([{ name: 'head.weight', shape: [3, 8] }, { name: 'head.bias', shape: [3] }]);
  for (const h of card.heads) for (const f of [h.training, h.optimizer, h.eval, h.inference, h.init]) expect(fs.existsSync(path.join(bundle, h.folder, f))).toBe(true);
  expect(fs.statSync(path.join(bundle, 'head-3', 'init.f32')).size).toBe(4 * (3 * 8 + 3));
  expect(fs.readdirSync(tmp).filter((f) => f.startsWith('.'))).toEqual([]);
});

test('an update of the bundle\'s head equals the Node trainer\'s first update of the same transfer model on the same images', async () => {
  const images = randomImages();
  const run = await train({
    definition: transfer, config: { backbone, imageSize: 9, mean: MEAN.join(','), std: STD.join(',') }, train: images, val: images,
    epochs: 1, batchSize: 24, maxSteps: 1, optimizer: { kind: 'adam' }, learningRate: 0.01, outDir: path.join(tmp, 'run'), threads: 1, seed: 0,
    cacheDir: path.join(tmp, 'cache'), trainAccuracySample: 0,
  });
  // The same images through the bundle's feature model, then one update of the bundle's head from its initial values.
  const input = new Float32Array(24 * 3 * 81);
  fillBatch(images, [...Array(24).keys()], { mean: MEAN, std: STD }, input, new BigInt64Array(24));
  const features = await ort.InferenceSession.create(path.join(bundle, card.featureModel));
  const f = (await features.run({ input: new ort.Tensor('float32', input, [24, 3, 9, 9]) })).features!.data as Float32Array;
  await features.release();
  const { trainer, release } = await headTrainer(3);
  await trainer.step.run(trainer.state, trainer.batch({ features: f, labels: images.labels, width: 8 }, [...Array(24).keys()]), 0.01, 1);
  for (const name of ['head.weight', 'head.bias']) {
    const expected = run.tensors.get(name)!.data as Float32Array;
    const got = trainer.state.get(name)!.data as Float32Array;
    expect(got.length).toBe(expected.length);
    got.forEach((v, i) => expect(Math.abs(v - expected[i]!)).toBeLessThanOrEqual(1e-6));
  }
  await release();
});

test('a taught head spliced onto the feature model is one ONNX model (image in, logits out) that computes what the head computes', async () => {
  const { trainer, release } = await headTrainer(3);
  const rng = new Rng('teach-features');
  const f = Float32Array.from({ length: 24 * 8 }, () => rng.normal());
  await trainer.train({ features: f, labels: Int32Array.from({ length: 24 }, (_, i) => i % 3), width: 8 }, { features: f.subarray(0, 8), labels: Int32Array.from([0, 1, 2]), width: 8 }, { epochs: 3, batchSize: 8, learningRate: 0.01 });
  const head = card.heads[1]!;
  const parameters = head.parameters.map((p) => ({ name: p.name, dims: p.shape, data: trainer.state.get(p.name)!.data as Float32Array }));
  const taught = spliceHead(fs.readFileSync(path.join(bundle, card.featureModel)), fs.readFileSync(path.join(bundle, head.folder, head.inference)), parameters);
  const model = decodeModel(taught);
  expect(model.graph.inputs.map((v) => v.name)).toEqual(['input']);
  expect(model.graph.outputs.map((v) => v.name)).toEqual(['logits']);
  const image = new ort.Tensor('float32', Float32Array.from({ length: 2 * 3 * 81 }, () => rng.normal()), [2, 3, 9, 9]);
  const whole = await ort.InferenceSession.create(taught);
  const features = await ort.InferenceSession.create(path.join(bundle, card.featureModel));
  const logits = (await whole.run({ input: image })).logits!.data as Float32Array;
  const viaHead = await trainer.logits((await features.run({ input: image })).features!.data as Float32Array, 8);
  logits.forEach((v, i) => expect(Math.abs(v - viaHead[i]!)).toBeLessThanOrEqual(1e-5));
  await Promise.all([whole.release(), features.release(), release()]);
});

test('the held-out split takes a seeded fifth of each class, at least one of a class with two images and none of a class with one', () => {
  const labels = [...Array(10).fill(0), ...Array(10).fill(1), 2, 3, 3];
  const split = heldOutSplit(labels, 0.2, 0);
  const held = (k: number) => split.heldOut.filter((i) => labels[i] === k).length;
  expect([held(0), held(1), held(2), held(3)]).toEqual([2, 2, 0, 1]);
  expect([...split.train, ...split.heldOut].sort((a, b) => a - b)).toEqual([...labels.keys()]);
  expect(heldOutSplit(labels, 0.2, 0)).toEqual(split);
});

test('the bundle is written all or nothing: a full disk leaves no folder, or the previous bundle as it was', async () => {
  let writes = 0;
  const failing = (file: string, data: Uint8Array | string) => {
    if (++writes === 4) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    fs.writeFileSync(file, data);
  };
  const fresh = path.join(tmp, 'fresh-bundle');
  await expect(writeTeachBundle(transfer, fresh, { backbone, classCounts: [2], writeFile: failing })).rejects.toThrow(/^no space left on device writing .*fresh-bundle\/head-2\//);
  expect(fs.existsSync(fresh)).toBe(false);
  writes = 0;
  const before = fs.readFileSync(path.join(bundle, 'teach.json'), 'utf8');
  await expect(writeTeachBundle(transfer, bundle, { backbone, classCounts: [2], writeFile: failing })).rejects.toThrow(/no space left on device/);
  expect(fs.readFileSync(path.join(bundle, 'teach.json'), 'utf8')).toBe(before);
  expect(fs.existsSync(path.join(bundle, 'head-3'))).toBe(true);
  expect(fs.readdirSync(tmp).filter((f) => f.startsWith('.'))).toEqual([]);
});

test('export-teach refuses a cut that does not exist, a missing backbone and a folder of other files, each in one line', async () => {
  await expect(writeTeachBundle(transfer, path.join(tmp, 'x'), { backbone, cut: 'no_such_value' })).rejects.toThrow(/no_such_value/);
  await expect(writeTeachBundle(transfer, path.join(tmp, 'x'), { backbone: path.join(tmp, 'missing.onnx') })).rejects.toThrow(/^backbone not found: /);
  const other = path.join(tmp, 'other');
  fs.mkdirSync(other);
  fs.writeFileSync(path.join(other, 'notes.txt'), 'mine');
  await expect(writeTeachBundle(transfer, other, { backbone, classCounts: [2] })).rejects.toThrow(/is a folder with other files in it/);
  expect(fs.readdirSync(other)).toEqual(['notes.txt']);
  const r = cli(tmp, 'export-teach', backbone, '--cut', 'no_such_value', '--out', path.join(tmp, 'y'));
  expect(r.status).toBe(1);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(/^error: .*no_such_value/);
});
