/**
 * Teach bundles (deepvision export-teach) and the Teach session in Node: the bundle's head graphs train exactly as
 * the Node trainer trains the same transfer model on cached features, a run's whole model fine-tunes exactly as the
 * Node trainer updates it, the taught and fine-tuned models assembled from the bundle are ordinary ONNX models, and
 * the folder is written all or nothing.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { defineModel, nn } from '../src';
import { writeTrainingArtifacts } from '../src/artifacts/write-artifacts';
import { loadGraphFile } from '../src/cli/load-graph';
import { channelStatistics, fillBatch, ImageDataset } from '../src/data/dataset';
import { DEFAULT_MAX_PIXELS } from '../src/data/decode-image';
import type { TeachBundleCard, TeachHead, TeachWholeModel } from '../src/portable/teach-card';
import { teachCardProblems } from '../src/portable/teach-card';
import { writeTeachBundle } from '../src/export/teach-bundle';
import { heldOutSplit, TeachTrainer } from '../src/portable/teach-session';
import { bindInputs, spliceHead } from '../src/portable/teach-splice';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors';
import { decodeModel } from '../src/onnx/read';
import { encodeModel } from '../src/onnx/write';
import { buildOptimizerGraph } from '../src/optim/optimizer-graph';
import { train } from '../src/train/trainer';
import type { TensorClass } from '../src/portable/training-step';
import { Rng } from '../src/util/rng';
import { cli } from './support/exported-model';
import { writeSmallBackbone } from './support/small-backbone';
import { nodeTeachTrainer } from './support/teach-trainer';
import { PAGE_MAX_PIXELS, pixelLimitProblem } from '../web-demo/src/teach/limits';

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

const trainerOf = nodeTeachTrainer;

const headTrainer = (classes: number) => trainerOf(bundle, card.heads.find((h) => h.classes === classes)!, { classes });

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

test('an epoch that Stop ends early reports the mean loss of the rows it trained on', async () => {
  const rng = new Rng('teach-stop');
  const set = { features: Float32Array.from({ length: 24 * 8 }, () => rng.normal()), labels: Int32Array.from({ length: 24 }, (_, i) => i % 3), width: 8 };
  const stopped = await headTrainer(3);
  const [report] = await stopped.trainer.train(set, { ...set, labels: new Int32Array(0), features: new Float32Array(0) }, { epochs: 3, batchSize: 8, learningRate: 0.01, shouldStop: () => true });
  expect(stopped.trainer.updates).toBe(1);
  // The same first update (the trainer's seeded shuffle, its first 8 rows) on a fresh head: its loss is the epoch's.
  const fresh = await headTrainer(3);
  const rows = new Rng('teach/0').shuffle([...Array(24).keys()]).slice(0, 8);
  const loss = (await fresh.trainer.step.run(fresh.trainer.state, fresh.trainer.batch(set, rows, { step: 1, seed: 0 }), 0.01, 1)).data as Float32Array;
  expect(Math.abs(report!.trainLoss - loss[0]!)).toBeLessThanOrEqual(1e-6);
  await Promise.all([stopped.release(), fresh.release()]);
});

test('release() frees the trainer\'s sessions: its state stays readable, its graphs no longer run', async () => {
  const { trainer, sessions } = await nodeTeachTrainer(bundle, card.heads[0]!, { classes: 2 });
  const released: string[] = [];
  for (const [name, s] of Object.entries(sessions)) {
    const release = s.release.bind(s);
    s.release = async () => {
      released.push(name);
      await release();
    };
  }
  await trainer.release();
  expect(released.sort()).toEqual(['eval', 'optimizer', 'training']);
  expect((trainer.state.get('head.bias')!.data as Float32Array).length).toBe(2);
  await expect(trainer.logits(new Float32Array(8), 8)).rejects.toThrow();
});

test('the page refuses a teach.json it cannot use, naming each field: input, training defaults, the whole model\'s defaults', () => {
  const edited = (edit: (c: Record<string, any>) => void) => {
    const c = JSON.parse(JSON.stringify(card)) as Record<string, any>;
    edit(c);
    return teachCardProblems(c);
  };
  expect(edited((c) => delete c.training)).toEqual(["'training' is missing (the learning rate, epochs and batch size the page starts from)"]);
  expect(edited((c) => (c.training = { learningRate: -1, epochs: 2.5, batchSize: '8', heldOutFraction: 1 }))).toEqual([
    "'training.learningRate' must be a number above 0", "'training.epochs' must be a positive integer", "'training.batchSize' must be a positive integer",
    "'training.heldOutFraction' must be a number from 0 to below 1",
  ]);
  expect(edited((c) => delete c.input.name)).toEqual(["'input.name' must name the backbone's input"]);
  expect(edited((c) => delete c.input.preprocessing)).toEqual(expect.arrayContaining(["'input.preprocessing.resizeShorterSide' must be a positive integer"]));
  expect(edited((c) => (c.input.preprocessing.std = [1, 0, 1]))).toEqual(["'input.preprocessing.std' needs 3 positive finite numbers"]);
  expect(edited((c) => delete c.backbone)).toEqual(["'backbone' must give the backbone's file, cut and parameter count"]);
  expect(edited((c) => (c.heads = [null]))).toEqual(['head null is not an object']);
  const whole = {
    folder: 'whole', training: 't.onnx', optimizer: 'o.onnx', eval: 'e.onnx', inference: 'i.onnx', init: 'init.f32', parameters: [], noise: [], inferenceParameters: [],
    labels: ['a', 'b'], defaults: { learningRate: 0.001, epochs: 0, batchSize: 8 },
  };
  expect(edited((c) => (c.wholeModel = whole))).toEqual(["'wholeModel.defaults.epochs' must be a positive integer"]);
  expect(edited((c) => (c.wholeModel = { ...whole, defaults: undefined }))).toEqual([expect.stringMatching(/^'wholeModel\.defaults' is missing/)]);
});

test('the pages refuse images over the CLI\'s pixel limit, by name', () => {
  expect(PAGE_MAX_PIXELS).toBe(DEFAULT_MAX_PIXELS);
  expect(pixelLimitProblem('photo.jpg', 8000, 6000)).toBeUndefined();
  expect(pixelLimitProblem('huge.png', 10000, 6000)).toBe("'huge.png' has 10000×6000 = 60,000,000 pixels, more than the 50,000,000 this page decodes (as `deepvision predict` refuses it): scale it down first");
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
  // A huge range is refused from its ends, not expanded first (which ran out of array length).
  for (const classes of ['2-999999999', '1-5', '5-3']) {
    const bad = cli(tmp, 'export-teach', backbone, '--classes', classes, '--out', path.join(tmp, 'y'));
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(new RegExp(`^error: .*'${classes}' is invalid\\. expected class counts from 2 to 100`));
  }
  expect(fs.existsSync(path.join(tmp, 'y'))).toBe(false);
});

/** A small classifier with batch norm (buffers) and dropout (noise inputs): what fine-tuning the whole model must handle. */
const tinyNet = defineModel({
  name: 'tiny-net', defaults: { numClasses: 3, imageSize: 9 },
  inputs: () => [{ name: 'input', shape: ['batch', 3, 9, 9] }],
  create: () => new nn.Sequential(
    new nn.Conv2d(3, 4, 3, { padding: 1 }), new nn.BatchNorm2d(4), new nn.ReLU(), new nn.MaxPool2d(2),
    new nn.Flatten(), new nn.Dropout(0.5), new nn.Linear(4 * 4 * 4, 3),
  ),
});

/** A run folder of tinyNet at its seeded initial values, as `deepvision train` writes one (artifacts and checkpoint). */
function writeRun(dir: string, images: ImageDataset): void {
  fs.mkdirSync(dir, { recursive: true });
  writeTrainingArtifacts(tinyNet, dir, {
    config: { numClasses: 3, imageSize: 9 }, seed: 0, optimizer: { kind: 'adam' },
    metadata: { 'deepvision.normalization': JSON.stringify(channelStatistics(images)), 'deepvision.classes': JSON.stringify(images.classNames) },
  });
}

describe('a bundle made from a training run', () => {
  let run: string;
  let out: string;
  let whole: TeachBundleCard;
  const images = randomImages();

  beforeAll(async () => {
    run = path.join(tmp, 'tiny-run');
    writeRun(run, images);
    out = path.join(tmp, 'run-bundle');
    whole = (await writeTeachBundle(transfer, out, { backbone: run, classCounts: [3] })).card;
  });

  test('ships the run\'s whole model: its graphs, its trained state, its classes, dropout noise, and heads on its trained layers', () => {
    expect(teachCardProblems(whole)).toEqual([]);
    const w = whole.wholeModel!;
    expect(w.labels).toEqual(['a', 'b', 'c']);
    expect(w.parameters.map((p) => p.name)).toEqual(expect.arrayContaining(['0.weight', '1.running_mean', '6.weight', '6.bias']));
    expect(w.noise).toEqual([{ name: expect.stringMatching(/^dropout_noise\./), shape: [64] }]);
    expect(w.defaults).toEqual({ learningRate: 0.0005, epochs: 10, batchSize: 8 });
    const values = w.parameters.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
    expect(fs.statSync(path.join(out, w.folder, w.init)).size).toBe(4 * values);
    for (const f of ['training_model.onnx', 'optimizer_model.onnx', 'eval_model.onnx']) expect(fs.readFileSync(path.join(out, w.folder, f))).toEqual(fs.readFileSync(path.join(run, f)));
    expect(whole.input.preprocessing).toEqual({ resizeShorterSide: 9, ...channelStatistics(images) });
    expect(whole.backbone.file).toBe('tiny-run');
    expect(whole.heads.map((h) => h.classes)).toEqual([3]);
  });

  test('two fine-tuning updates of the bundle\'s whole model equal the Node trainer\'s first two updates of the same model on the same batches', async () => {
    const normalization = channelStatistics(images);
    const result = await train({
      definition: tinyNet, config: { numClasses: 3, imageSize: 9 }, train: images, val: images, epochs: 1, batchSize: 12, maxSteps: 2,
      optimizer: { kind: 'adam' }, learningRate: 0.01, outDir: path.join(tmp, 'tiny-train'), threads: 1, seed: 0, trainAccuracySample: 0,
    });
    // The trainer's batches: its seeded shuffle of the 24 images, 12 at a time.
    const order = new Rng('train/0').shuffle([...Array(24).keys()]);
    const input = new Float32Array(24 * 3 * 81);
    fillBatch(images, order, normalization, input, new BigInt64Array(24));
    const rows = { features: input, labels: Int32Array.from(order, (i) => images.labels[i]!), width: 3 * 81 };
    const w = whole.wholeModel!;
    const { trainer, release } = await trainerOf(out, w, { classes: 3, input: { name: 'input', dims: [3, 9, 9] } });
    for (const step of [1, 2]) {
      const batch = [...Array(12).keys()].map((i) => (step - 1) * 12 + i);
      await trainer.step.run(trainer.state, trainer.batch(rows, batch, { step, seed: 0 }), 0.01, step);
    }
    let max = 0;
    for (const [name, t] of trainer.state) {
      const expected = result.tensors.get(name)!.data as Float32Array;
      (t.data as Float32Array).forEach((v, i) => (max = Math.max(max, Math.abs(v - expected[i]!))));
    }
    expect(trainer.state.size).toBe(result.tensors.size);
    expect(max).toBeLessThanOrEqual(1e-5);

    // Bound to its inference graph, the fine-tuned state computes what the eval graph computes.
    const bound = new Set(w.inferenceParameters);
    const state = w.parameters.filter((p) => bound.has(p.name)).map((p) => ({ name: p.name, dims: p.shape, data: trainer.state.get(p.name)!.data as Float32Array }));
    const model = bindInputs(fs.readFileSync(path.join(out, w.folder, w.inference)), state);
    expect(decodeModel(model).graph.inputs.map((v) => v.name)).toEqual(['input']);
    const session = await ort.InferenceSession.create(model);
    const logits = (await session.run({ input: new ort.Tensor('float32', input.slice(0, 4 * 243), [4, 3, 9, 9]) })).logits!.data as Float32Array;
    const viaEval = await trainer.logits(input.slice(0, 4 * 243), 243);
    logits.forEach((v, i) => expect(Math.abs(v - viaEval[i]!)).toBeLessThanOrEqual(1e-5));
    await Promise.all([session.release(), release()]);
  });

  /** A copy of the run with one file replaced by `make(file)`; the bundle written from it must be refused. */
  async function refusedWith(name: string, file: string, make: (target: string) => void): Promise<string> {
    const copy = path.join(tmp, `run-with-bad-${name}`);
    fs.cpSync(run, copy, { recursive: true });
    fs.rmSync(path.join(copy, file));
    make(path.join(copy, file));
    const target = path.join(tmp, `bundle-${name}`);
    const r = cli(tmp, 'export-teach', copy, '--classes', '3', '--out', target);
    expect({ status: r.status, lines: r.stderr.trim().split('\n').length }).toEqual({ status: 1, lines: 1 });
    expect(r.stderr).toMatch(/^error: /);
    expect(fs.existsSync(target)).toBe(false);
    return r.stderr;
  }

  test('every file the bundle ships from the run is validated as what it claims to be and must lie in the run folder', async () => {
    // A link out of the run folder is never followed, whatever it points to (serve would publish the bundle).
    expect(await refusedWith('link-out', 'optimizer_model.onnx', (f) => fs.symlinkSync('/etc/passwd', f))).toMatch(/optimizer_model\.onnx: .*leads outside/);
    const elsewhere = path.join(tmp, 'elsewhere.onnx');
    fs.copyFileSync(path.join(run, 'training_model.onnx'), elsewhere);
    expect(await refusedWith('link-out-model', 'training_model.onnx', (f) => fs.symlinkSync(elsewhere, f))).toMatch(/training_model\.onnx: .*leads outside/);
    // Random bytes, and an optimizer of other parameters or of another kind, are not this run's optimizer.
    expect(await refusedWith('random', 'optimizer_model.onnx', (f) => fs.writeFileSync(f, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251))))).toMatch(/optimizer_model\.onnx/);
    const other = buildOptimizerGraph([{ name: 'w', shape: [2, 2] }], { kind: 'adam' });
    expect(await refusedWith('other-model', 'optimizer_model.onnx', (f) => fs.writeFileSync(f, encodeModel(other.model)))).toMatch(/is not the optimizer of this run: it has no input '0\.weight'/);
    const params = whole.wholeModel!.parameters.filter((p) => !/running_|num_batches/.test(p.name));
    const sgd = buildOptimizerGraph(params, { kind: 'sgd' });
    expect(await refusedWith('other-kind', 'optimizer_model.onnx', (f) => fs.writeFileSync(f, encodeModel(sgd.model)))).toMatch(/is not the optimizer of this run: it has no input '.*\.exp_avg'/);
    // A named pipe is refused at once, never read (a reader would block forever).
    expect(await refusedWith('fifo', 'eval_model.onnx', (f) => execFileSync('mkfifo', [f]))).toMatch(/eval_model\.onnx: not a regular file/);
  });

  test('class names that do not fit the model\'s outputs, and a NaN weight, are refused as `export` refuses them (issue 24 item 4)', async () => {
    const { tensors, metadata } = readSafetensors(path.join(run, 'checkpoint.safetensors'));
    const seven = Array.from({ length: 7 }, (_, i) => `class ${i}`);
    expect(await refusedWith('classes', 'checkpoint.safetensors', (f) => writeSafetensors(f, tensors, { ...metadata, 'deepvision.classes': JSON.stringify(seven) })))
      .toMatch(/checkpoint\.safetensors: metadata 'deepvision\.classes' names 7 classes, but the model has 3 outputs/);
    const [name, t] = [...tensors].find(([, v]) => v.data.length > 1)!;
    const nan = new Map([...tensors, [name, { ...t, data: Float32Array.from(t.data as Float32Array, (v, i) => (i === 1 ? NaN : v)) }]]);
    expect(await refusedWith('nan', 'checkpoint.safetensors', (f) => writeSafetensors(f, nan, metadata))).toMatch(/holds NaN at index 1: the checkpoint is unusable/);
  });

  test('a folder that is not a finished run is refused in one line naming the missing file', async () => {
    const partial = path.join(tmp, 'partial-run');
    fs.mkdirSync(partial);
    fs.writeFileSync(path.join(partial, 'last.safetensors'), '');
    await expect(writeTeachBundle(transfer, path.join(tmp, 'z'), { backbone: partial })).rejects.toThrow(/partial-run is not a finished deepvision training run: training_model.onnx is missing/);
    const r = cli(tmp, 'export-teach', partial, '--out', path.join(tmp, 'z'));
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
