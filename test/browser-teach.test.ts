/**
 * The Teach page in a real browser (Debian's chromium driven by playwright-core, onnxruntime-web on wasm with 2
 * threads) against `deepvision serve`'s server. Fresh-clone lane: the backbone is a small CNN the test trains on
 * generated shapes (circle, cross, triangle: 97 % on its own validation set in about 20 s), cut at its 32-wide
 * embedding, and the page teaches a new head for those classes from 10 uploaded PNGs each. Data lane: MobileNetV2
 * and Tiny ImageNet photos.
 */
import * as fs from 'node:fs';
import type * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { Browser, chromium, Page } from 'playwright-core';
import sharp from 'sharp';
import { defineModel, F, nn, Tensor } from '../src';
import { subsetOf } from '../src/data/dataset';
import { decodeImage } from '../src/data/decode-image';
import { generateShapes, SHAPE_CLASSES } from '../src/data/shapes';
import { preprocessImage } from '../src/portable/image-preprocessing';
import type { TeachBundleCard, TeachHead, TeachWholeModel } from '../src/portable/teach-card';
import { TeachTrainer } from '../src/portable/teach-session';
import { writeTrainingArtifacts } from '../src/artifacts/write-artifacts';
import { loadCheckpoint } from '../src/checkpoint/checkpoint';
import { TensorData } from '../src/ir/tensor';
import { buildModel } from '../src/model/build';
import { writeModelFile } from '../src/onnx/write';
import { demoServerOptions, startStaticServer } from '../src/serve/static-server';
import { train } from '../src/train/trainer';
import type { TensorClass } from '../src/portable/training-step';
import { cli } from './support/exported-model';
import { dataTest, sharedFile } from './support/shared';
import { nodeTeachTrainer } from './support/teach-trainer';

const CHROMIUM = '/usr/bin/chromium';
const TAUGHT = ['circle', 'cross', 'triangle'] as const;
const SIZE = 32;
let tmp: string;
let modelsDir: string;
let server: http.Server | undefined;
let url: string;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];
/** Per taught class: 10 images to teach with, 5 new ones to classify. */
const images = new Map<string, { teach: string[]; fresh: string[] }>();
/** The page's top-1 for each fresh image, for the comparison with predict. */
const pageTop1 = new Map<string, { label: string; probability: number }>();

/** A small CNN whose 32-wide embedding (the input of its last Gemm) is export-teach's default cut. */
class ShapesBackbone extends nn.Module {
  features = new nn.Sequential(...[[3, 16], [16, 32], [32, 32]].flatMap(([i, o]) => [new nn.Conv2d(i!, o!, 3, { padding: 1 }), new nn.BatchNorm2d(o!), new nn.ReLU(), new nn.MaxPool2d(2)]));
  embed = new nn.Sequential(new nn.Linear(32 * (SIZE / 8) ** 2, 32), new nn.ReLU());
  head = new nn.Linear(32, TAUGHT.length);
  forward(x: Tensor): Tensor {
    return this.head.forward(this.embed.forward(F.flatten(this.features.forward(x))));
  }
}
const backboneDefinition = defineModel({
  name: 'shapes-backbone', defaults: { numClasses: TAUGHT.length, imageSize: SIZE },
  inputs: () => [{ name: 'input', shape: ['batch', 3, SIZE, SIZE] }], create: () => new ShapesBackbone(),
});

/** Generated shapes of the taught classes only, relabelled 0..2. */
function taughtShapes(count: number, seed: number) {
  const all = generateShapes({ count, imageSize: SIZE, seed });
  const keep = [...Array(all.count).keys()].filter((i) => TAUGHT.includes(SHAPE_CLASSES[all.labels[i]!] as (typeof TAUGHT)[number]));
  const kept = subsetOf(all, keep);
  const relabelled = Int32Array.from(kept.labels, (l) => TAUGHT.indexOf(SHAPE_CLASSES[l] as (typeof TAUGHT)[number]));
  return { ...kept, labels: relabelled, classNames: [...TAUGHT] };
}

/**
 * Trains the backbone and writes it as an ONNX model with its trained weights, and its run folder's artifacts as
 * `deepvision train` writes them (for the whole-model bundle); returns the file, the run folder and the normalization.
 */
async function trainBackbone(dir: string): Promise<{ file: string; run: string; mean: number[]; std: number[] }> {
  const result = await train({
    definition: backboneDefinition, train: taughtShapes(10000, 0), val: taughtShapes(700, 1), epochs: 6, batchSize: 64,
    optimizer: { kind: 'adam' }, learningRate: 0.005, outDir: path.join(dir, 'backbone-run'), threads: 2, seed: 0, trainAccuracySample: 0,
  });
  expect(result.history[result.history.length - 1]!.valTop1).toBeGreaterThan(0.85);
  const built = buildModel(backboneDefinition, { mode: 'eval' });
  for (const [name, data] of built.model.graph.initializers) {
    const trained = result.tensors.get(name);
    if (trained !== undefined) built.model.graph.initializers.set(name, TensorData.fromTyped('float32', data.dims, trained.data as Float32Array));
  }
  const file = path.join(dir, 'shapes-backbone.onnx');
  writeModelFile(built.model, file);
  const run = path.join(dir, 'backbone-run');
  const best = loadCheckpoint(result.bestCheckpoint);
  writeTrainingArtifacts(backboneDefinition, run, {
    config: { numClasses: TAUGHT.length, imageSize: SIZE }, seed: 0, optimizer: { kind: 'adam' },
    values: new Map([...best.tensors].map(([name, t]) => [name, t.data as Float32Array])), metadata: best.metadata,
  });
  return { file, run, ...result.normalization };
}

/** Writes generated 64x64 shapes as PNG files: 10 to teach with and 5 new ones per taught class. */
async function writeImages(dir: string): Promise<void> {
  const data = generateShapes({ count: 200, imageSize: 64, seed: 5 });
  const plane = 64 * 64;
  for (const name of TAUGHT) images.set(name, { teach: [], fresh: [] });
  for (let n = 0; n < data.count; n++) {
    const name = SHAPE_CLASSES[data.labels[n]!]!;
    const lists = images.get(name);
    if (lists === undefined || lists.fresh.length === 5) continue;
    const rgb = Buffer.alloc(3 * plane);
    for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) rgb[i * 3 + c] = data.pixels[n * 3 * plane + c * plane + i]!;
    const list = lists.teach.length < 10 ? lists.teach : lists.fresh;
    const file = path.join(dir, `${name}-${lists.teach.length + lists.fresh.length}.png`);
    await sharp(rgb, { raw: { width: 64, height: 64, channels: 3 } }).png().toFile(file);
    list.push(file);
  }
}

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run \`bash scripts/install-system-deps.sh\` (Debian package chromium)`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-teach-'));
  modelsDir = path.join(tmp, 'models');
  const backbone = await trainBackbone(tmp);
  const exported = cli(tmp, 'export-teach', backbone.file, '--out', path.join(modelsDir, 'teach'), '--mean', backbone.mean.join(','), '--std', backbone.std.join(','));
  if (exported.status !== 0) throw new Error(`export-teach failed:\n${exported.stdout}\n${exported.stderr}`);
  const fromRun = cli(tmp, 'export-teach', backbone.run, '--out', path.join(modelsDir, 'teach-run'), '--classes', '3');
  if (fromRun.status !== 0) throw new Error(`export-teach of the run failed:\n${fromRun.stdout}\n${fromRun.stderr}`);
  fs.mkdirSync(path.join(tmp, 'images'));
  await writeImages(path.join(tmp, 'images'));
  const demo = demoServerOptions();
  ({ server, url } = await startStaticServer({ ...demo, mounts: { '/models/': modelsDir, ...demo.mounts }, port: 0 }));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await openTeachPage();
}, 240000);

afterAll(async () => {
  // Unset when beforeAll failed before launching it.
  await (browser as Browser | undefined)?.close();
  server?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

async function openTeachPage(query = '', on: Browser = browser): Promise<Page> {
  const p = await on.newPage({ acceptDownloads: true });
  p.on('pageerror', (e) => pageErrors.push(e.message));
  await p.goto(`${url}teach.html?threads=2&test=1${query}`);
  await p.waitForSelector('#status[data-state="ready"], #status[data-state="error"]', { state: 'attached', timeout: 60000 });
  const error = await p.textContent('#error');
  if (error) throw new Error(`the Teach page shows an error: ${error}`);
  return p;
}

/** Names the page's classes and uploads each one's images (the page starts with two rows). */
async function teachClasses(p: Page, classes: { name: string; files: string[] }[]): Promise<void> {
  while ((await p.$$('.class-row')).length < classes.length) await p.click('#add-class');
  for (const [i, c] of classes.entries()) {
    const row = `.class-row:nth-child(${i + 1})`;
    await p.fill(`${row} .class-name`, c.name);
    await p.setInputFiles(`${row} .class-files`, c.files);
    await p.waitForSelector(`${row}[data-images="${c.files.length}"]`, { state: 'attached', timeout: 30000 });
  }
}

async function trainOnPage(p: Page): Promise<{ epochs: { epoch: number; heldOutAccuracy: number; trainLoss: number }[]; trainSeconds: number; featureMs: number; stepsPerSecond: number }> {
  await p.click('#train');
  await p.waitForSelector('#status[data-state="trained"], #status[data-state="error"], #status[data-state="invalid"]', { state: 'attached', timeout: 180000 });
  const error = await p.textContent('#error');
  if (error) throw new Error(`the Teach page shows an error: ${error}`);
  const epochs = await p.$$eval('#epochs tbody tr', (rows) => rows.map((r) => ({ epoch: Number(r.dataset.epoch), heldOutAccuracy: Number(r.dataset.heldOutAccuracy), trainLoss: Number(r.dataset.trainLoss) })));
  const speed = await p.$eval('#speed', (e) => ({ ...(e as unknown as { dataset: Record<string, string> }).dataset }));
  return { epochs, trainSeconds: Number(speed.trainSeconds), featureMs: Number(speed.featureMs), stepsPerSecond: Number(speed.stepsPerSecond) };
}

async function classifyOnPage(p: Page, file: string): Promise<{ label: string; probability: number }[]> {
  await p.setInputFiles('#classify-input', file);
  await p.waitForSelector('#predictions[data-state="done"], #predictions[data-state="error"]', { state: 'attached', timeout: 30000 });
  const error = await p.textContent('#error');
  if (error) throw new Error(`the page shows an error: ${error}`);
  return p.$$eval('#predictions li', (items) => items.map((li) => ({ label: li.dataset.label!, probability: Number(li.dataset.probability) })));
}

/** Saves the page's taught model.onnx and model.json into `dir`. */
async function download(p: Page, dir: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  for (const [link, file] of [['#download-model', 'model.onnx'], ['#download-card', 'model.json']] as const) {
    const [d] = await Promise.all([p.waitForEvent('download'), p.click(link)]);
    await d.saveAs(path.join(dir, file));
  }
}

function predictTop1(modelDir: string, files: string[]): Map<string, { label: string; probability: number }> {
  const r = cli(tmp, 'predict', modelDir, ...files, '--json');
  if (r.status !== 0) throw new Error(r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { image: string; predictions: { label: string; probability: number }[] });
  return new Map(lines.map((l) => [l.image, l.predictions[0]!]));
}

test('teaching 3 shape classes from 10 uploaded images each reaches >= 90 % on held-out and new images, in under 10 s of training', async () => {
  await teachClasses(page, TAUGHT.map((name) => ({ name, files: images.get(name)!.teach })));
  const r = await trainOnPage(page);
  expect(r.epochs).toHaveLength(20);
  expect(r.epochs[19]!.heldOutAccuracy).toBeGreaterThanOrEqual(0.9);
  expect(r.epochs[19]!.trainLoss).toBeLessThan(r.epochs[0]!.trainLoss);
  expect(r.trainSeconds).toBeLessThan(10);
  console.log(`Teach page (wasm, 2 threads, shapes backbone): features ${r.featureMs.toFixed(1)} ms/image, 20 epochs in ${r.trainSeconds.toFixed(2)} s, ${r.stepsPerSecond.toFixed(0)} updates/s`);
  let correct = 0;
  for (const name of TAUGHT) {
    for (const file of images.get(name)!.fresh) {
      const shown = await classifyOnPage(page, file);
      expect(shown).toHaveLength(3);
      pageTop1.set(file, shown[0]!);
      correct += Number(shown[0]!.label === name);
    }
  }
  expect(correct / 15).toBeGreaterThanOrEqual(0.9);
  expect(pageErrors).toEqual([]);
}, 240000);

test('the page computes the features Node computes, and one training step in the page equals the Node step on the same batch and parameters within 1e-4', async () => {
  const set = await page.evaluate(() => (globalThis as unknown as { deepvisionTeach: { trainingSet(): { features: number[]; labels: number[] } } }).deepvisionTeach.trainingSet());
  const card = JSON.parse(fs.readFileSync(path.join(modelsDir, 'teach', 'teach.json'), 'utf8')) as TeachBundleCard;
  const width = card.features;
  expect(set.labels).toHaveLength(30);
  // Features of the first image of each class, in Node, from the same PNG files.
  const features = await ort.InferenceSession.create(path.join(modelsDir, 'teach', card.featureModel));
  const [c, h, w] = card.input.shape;
  for (const [k, name] of TAUGHT.entries()) {
    const pixels = await decodeImage(images.get(name)!.teach[0]!);
    const out = await features.run({ input: new ort.Tensor('float32', preprocessImage(pixels, card.input.preprocessing, c, h, w), [1, c, h, w]) });
    const node = out.features!.data as Float32Array;
    const row = set.features.slice(k * 10 * width, (k * 10 + 1) * width);
    for (let i = 0; i < width; i++) expect(Math.abs(row[i]! - node[i]!)).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(node[i]!)));
  }
  await features.release();

  // Two Adam updates on an 8-image batch: from the bundle's initial head, then from the state after the first.
  const rows = [0, 3, 7, 10, 14, 19, 22, 29];
  const batch = { features: rows.flatMap((r) => set.features.slice(r * width, (r + 1) * width)), labels: rows.map((r) => set.labels[r]!) };
  const head = card.heads.find((x) => x.classes === 3)!;
  await expectSameUpdates(page, path.join(modelsDir, 'teach'), head, { classes: 3 }, batch, width, 0.003);
}, 120000);

/**
 * Two updates in the page (the test hook, from the bundle's initial state, then from the state after the first)
 * against the same two updates in Node with onnxruntime-node and the same bundle files: loss and the state
 * (parameters, buffers, optimizer slots) within 1e-4.
 */
async function expectSameUpdates(p: Page, bundleDir: string, m: TeachHead | TeachWholeModel, o: ConstructorParameters<typeof TeachTrainer>[4],
  batch: { features: number[]; labels: number[] }, width: number, learningRate: number): Promise<void> {
  const { trainer, sessions } = await nodeTeachTrainer(bundleDir, m, o);
  const plain = () => Object.fromEntries([...trainer.state].map(([name, t]) => [name, Array.from(t.data as Float32Array)]));
  const set = { features: Float32Array.from(batch.features), labels: Int32Array.from(batch.labels), width };
  let startState: Record<string, number[]> | undefined;
  for (const step of [1, 2]) {
    const feeds = trainer.batch(set, batch.labels.map((_, i) => i), { step, seed: 0 });
    const out = await trainer.step.gradients(trainer.state, feeds);
    // A gradient that is zero but for rounding has a sign that rounding decides, and Adam's step moves by +-lr
    // whatever the size: such parameters (and their slots) are left out of the comparison; every other value must
    // agree. (A convolution's bias before batch norm, which the normalization cancels, now gets an exact zero.)
    const noise = trainer.step.graphs.trainable.filter((name) => (out[`${name}_grad`]!.data as Float32Array).every((g) => Math.abs(g) < 1e-6));
    await trainer.step.update(trainer.state, out, learningRate, step);
    const shown = await p.evaluate((request) => (globalThis as unknown as { deepvisionTeach: { step(r: unknown): Promise<{ loss: number; state: Record<string, number[]> }> } }).deepvisionTeach.step(request),
      { classes: 'input' in feeds ? 'whole' : o.classes, ...batch, learningRate, step, state: startState });
    expect(Math.abs(shown.loss - (out.loss!.data as Float32Array)[0]!)).toBeLessThanOrEqual(1e-4);
    const expected: Record<string, number[]> = plain();
    expect(Object.keys(shown.state).sort()).toEqual(Object.keys(expected).sort());
    expect(noise.every((name) => name.endsWith('.bias'))).toBe(true);
    const compared = Object.entries(expected).filter(([name]) => !noise.some((n) => name === n || name.startsWith(`optimizer.${n}.`)));
    expect(compared.length).toBeGreaterThan(Object.keys(expected).length / 2);
    let max = 0;
    for (const [name, values] of compared) values.forEach((v, i) => (max = Math.max(max, Math.abs(v - shown.state[name]![i]!))));
    expect(max).toBeLessThanOrEqual(1e-4);
    startState = expected;
  }
  await Promise.all(Object.values(sessions).map((s) => s.release()));
}

test('the downloaded model.onnx + model.json give the same top-1 in deepvision predict', async () => {
  const taught = path.join(tmp, 'taught');
  await download(page, taught);
  const card = JSON.parse(fs.readFileSync(path.join(taught, 'model.json'), 'utf8')) as { labels: string[]; training: { validation?: { top1: number } } };
  expect(card.labels).toEqual([...TAUGHT]);
  expect(card.training.validation!.top1).toBeGreaterThanOrEqual(0.9);
  const files = [...pageTop1.keys()];
  const predicted = predictTop1(taught, files);
  for (const file of files) {
    expect(predicted.get(file)!.label).toBe(pageTop1.get(file)!.label);
    expect(Math.abs(predicted.get(file)!.probability - pageTop1.get(file)!.probability)).toBeLessThanOrEqual(1e-4);
  }
}, 120000);

test('bad input shows a clear message and leaves the page usable: a non-image, a class with no images, a single class', async () => {
  const p = await openTeachPage();
  const fake = path.join(tmp, 'notes.png');
  fs.writeFileSync(fake, 'these are notes, not pixels');
  await p.setInputFiles('.class-row:nth-child(1) .class-files', [fake, images.get('circle')!.teach[0]!]);
  await p.waitForSelector('.class-row:nth-child(1)[data-loaded="1"]', { state: 'attached', timeout: 30000 });
  expect(await p.textContent('#error')).toContain("'notes.png' is not an image this browser can decode");
  expect(await p.getAttribute('.class-row:nth-child(1)', 'data-images')).toBe('1');

  await p.fill('.class-row:nth-child(2) .class-name', 'empty');
  await p.click('#train');
  await p.waitForSelector('#status[data-state="invalid"]', { state: 'attached', timeout: 10000 });
  expect(await p.textContent('#error')).toContain("Class 'empty' has no images");

  await p.click('.class-row:nth-child(2) .remove');
  await p.click('#train');
  await p.waitForSelector('#error:not([hidden])', { state: 'attached', timeout: 10000 });
  expect(await p.textContent('#error')).toContain('Teaching needs at least 2 classes; there is 1');
  expect(await p.isEnabled('#train')).toBe(true);

  // The sample shapes fill three classes of ten, and train.
  await p.click('#use-samples');
  expect(await p.$$eval('.class-row', (rows) => rows.map((r) => (r as unknown as { dataset: Record<string, string> }).dataset.images))).toEqual(['10', '10', '10']);
  const r = await trainOnPage(p);
  expect(r.epochs).toHaveLength(20);
  expect(pageErrors).toEqual([]);
  await p.close();
}, 120000);

test('fine-tuning the whole shapes CNN in the page: two updates equal Node\'s within 1e-4, held-out accuracy does not fall, and predict agrees with the download', async () => {
  const p = await openTeachPage('&bundle=teach-run');
  await p.check('input[name="mode"][value="whole"]');
  await p.waitForSelector('.class-row:nth-child(3)', { state: 'attached' });
  // The rows are the model's own classes, named by it and fixed.
  expect(await p.$$eval('.class-row .class-name', (inputs) => inputs.map((i) => (i as unknown as { value: string }).value))).toEqual([...TAUGHT]);
  expect(await p.isDisabled('#add-class')).toBe(true);
  for (const [i, name] of TAUGHT.entries()) {
    await p.setInputFiles(`.class-row:nth-child(${i + 1}) .class-files`, images.get(name)!.teach);
    await p.waitForSelector(`.class-row:nth-child(${i + 1})[data-images="10"]`, { state: 'attached', timeout: 30000 });
  }
  const r = await trainOnPage(p);
  const card = JSON.parse(fs.readFileSync(path.join(modelsDir, 'teach-run', 'teach.json'), 'utf8')) as TeachBundleCard;
  const whole = card.wholeModel!;
  // A row for the start (the run's model on the held-out images), then one per epoch.
  expect(r.epochs.map((e) => e.epoch)).toEqual([...Array(whole.defaults.epochs + 1).keys()]);
  const [start, last] = [r.epochs[0]!, r.epochs[r.epochs.length - 1]!];
  expect(last.heldOutAccuracy).toBeGreaterThanOrEqual(start.heldOutAccuracy);
  expect(last.trainLoss).toBeLessThan(r.epochs[1]!.trainLoss);
  console.log(`Teach page, whole model (wasm, 2 threads, shapes CNN): ${whole.defaults.epochs} epochs in ${r.trainSeconds.toFixed(2)} s, ${r.stepsPerSecond.toFixed(1)} updates/s; held-out ${start.heldOutAccuracy} -> ${last.heldOutAccuracy}`);

  // The fine-tuned model classifies in the page as predict classifies its download.
  const fresh = TAUGHT.flatMap((name) => images.get(name)!.fresh);
  const shown = new Map<string, { label: string; probability: number }>();
  for (const file of fresh) shown.set(file, (await classifyOnPage(p, file))[0]!);
  const tuned = path.join(tmp, 'fine-tuned');
  await download(p, tuned);
  const downloaded = JSON.parse(fs.readFileSync(path.join(tuned, 'model.json'), 'utf8')) as { labels: string[] };
  expect(downloaded.labels).toEqual([...TAUGHT]);
  const predicted = predictTop1(tuned, fresh);
  for (const file of fresh) {
    expect(predicted.get(file)!.label).toBe(shown.get(file)!.label);
    expect(Math.abs(predicted.get(file)!.probability - shown.get(file)!.probability)).toBeLessThanOrEqual(1e-4);
  }
  expect(fresh.filter((f) => shown.get(f)!.label === path.basename(f).split('-')[0]).length / fresh.length).toBeGreaterThanOrEqual(0.9);

  // Two updates of all parameters on 8 of the page's own preprocessed images, in the page and in Node.
  const set = await p.evaluate(() => (globalThis as unknown as { deepvisionTeach: { trainingSet(): { features: number[]; labels: number[] } } }).deepvisionTeach.trainingSet());
  const width = 3 * SIZE * SIZE;
  expect(set.features).toHaveLength(30 * width);
  const rows = [0, 3, 7, 10, 14, 19, 22, 29];
  const batch = { features: rows.flatMap((row) => set.features.slice(row * width, (row + 1) * width)), labels: rows.map((row) => set.labels[row]!) };
  await expectSameUpdates(p, path.join(modelsDir, 'teach-run'), whole, { classes: 3, input: { name: 'input', dims: [3, SIZE, SIZE] } }, batch, width, whole.defaults.learningRate);
  expect(pageErrors).toEqual([]);
  await p.close();
}, 240000);

/**
 * Chromium's own software Vulkan (SwiftShader) gives headless Chromium a WebGPU adapter on any machine, so the
 * page's WebGPU path runs here and in CI: flags that enable WebGPU where Chromium would not by default.
 */
const WEBGPU_ARGS = ['--headless', '--no-sandbox', '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

test('on WebGPU (Chromium\'s software adapter) the page teaches a head (>= 90 % held-out) and fine-tunes the whole CNN with onnxruntime-web\'s WebGPU provider; two updates of each equal Node\'s within 1e-4', async () => {
  const gpuBrowser = await chromium.launch({ executablePath: CHROMIUM, args: WEBGPU_ARGS });
  try {
    const p = await openTeachPage('', gpuBrowser);
    expect(await p.textContent('#bundle-info')).toMatch(/; WebGPU\.$/);
    await teachClasses(p, TAUGHT.map((name) => ({ name, files: images.get(name)!.teach })));
    const r = await trainOnPage(p);
    expect(r.epochs).toHaveLength(20);
    expect(r.epochs[19]!.heldOutAccuracy).toBeGreaterThanOrEqual(0.9);
    expect(await p.textContent('#speed')).toContain('Provider: WebGPU');
    console.log(`Teach page (WebGPU on SwiftShader, shapes backbone): features ${r.featureMs.toFixed(1)} ms/image, 20 epochs in ${r.trainSeconds.toFixed(2)} s, ${r.stepsPerSecond.toFixed(0)} updates/s`);
    const set = await p.evaluate(() => (globalThis as unknown as { deepvisionTeach: { trainingSet(): { features: number[]; labels: number[] } } }).deepvisionTeach.trainingSet());
    const card = JSON.parse(fs.readFileSync(path.join(modelsDir, 'teach', 'teach.json'), 'utf8')) as TeachBundleCard;
    const rows = [0, 3, 7, 10, 14, 19, 22, 29];
    const width = card.features;
    const batch = { features: rows.flatMap((row) => set.features.slice(row * width, (row + 1) * width)), labels: rows.map((row) => set.labels[row]!) };
    await expectSameUpdates(p, path.join(modelsDir, 'teach'), card.heads.find((x) => x.classes === 3)!, { classes: 3 }, batch, width, 0.003);
    await p.close();

    // The whole shapes CNN on WebGPU: two updates of every parameter equal Node's.
    const w = await openTeachPage('&bundle=teach-run', gpuBrowser);
    await w.check('input[name="mode"][value="whole"]');
    await w.waitForSelector('.class-row:nth-child(3)', { state: 'attached' });
    for (const [i, name] of TAUGHT.entries()) {
      await w.setInputFiles(`.class-row:nth-child(${i + 1}) .class-files`, images.get(name)!.teach);
      await w.waitForSelector(`.class-row:nth-child(${i + 1})[data-images="10"]`, { state: 'attached', timeout: 30000 });
    }
    // Two epochs (software WebGPU makes about half an update a second): enough to run every graph of the mode.
    await w.fill('#epochs-input', '2');
    const tuned = await trainOnPage(w);
    expect(tuned.epochs.map((e) => e.epoch)).toEqual([0, 1, 2]);
    expect(tuned.epochs.every((e) => Number.isFinite(e.trainLoss) || e.epoch === 0)).toBe(true);
    const whole = (JSON.parse(fs.readFileSync(path.join(modelsDir, 'teach-run', 'teach.json'), 'utf8')) as TeachBundleCard).wholeModel!;
    const images3 = await w.evaluate(() => (globalThis as unknown as { deepvisionTeach: { trainingSet(): { features: number[]; labels: number[] } } }).deepvisionTeach.trainingSet());
    const pixels = 3 * SIZE * SIZE;
    const wholeBatch = { features: rows.flatMap((row) => images3.features.slice(row * pixels, (row + 1) * pixels)), labels: rows.map((row) => images3.labels[row]!) };
    await expectSameUpdates(w, path.join(modelsDir, 'teach-run'), whole, { classes: 3, input: { name: 'input', dims: [3, SIZE, SIZE] } }, wholeBatch, pixels, whole.defaults.learningRate);
    console.log(`Teach page, whole model (WebGPU on SwiftShader, shapes CNN): 2 epochs in ${tuned.trainSeconds.toFixed(2)} s, ${tuned.stepsPerSecond.toFixed(1)} updates/s`);
    expect(pageErrors).toEqual([]);
    await w.close();
  } finally {
    await gpuBrowser.close();
  }
}, 300000);

test('the page installs its test hooks only when asked (?test=1)', async () => {
  const p = await browser.newPage();
  await p.goto(`${url}teach.html?threads=2`);
  await p.waitForSelector('#status[data-state="ready"]', { state: 'attached', timeout: 60000 });
  expect(await p.evaluate(() => 'deepvisionTeach' in globalThis)).toBe(false);
  await p.close();
});

test('a missing bundle is a message naming the command that makes one', async () => {
  const p = await browser.newPage();
  await p.goto(`${url}teach.html?bundle=nothing-here`);
  await p.waitForSelector('#status[data-state="error"]', { state: 'attached', timeout: 30000 });
  expect(await p.textContent('#error')).toMatch(/Could not load the Teach bundle at models\/nothing-here\/: .*HTTP 404.*deepvision export-teach/);
  expect(await p.isDisabled('#train')).toBe(true);
  // A teach.json without its training defaults: the same message, naming the field (the page once stalled silently).
  const card = JSON.parse(fs.readFileSync(path.join(modelsDir, 'teach', 'teach.json'), 'utf8')) as Partial<TeachBundleCard>;
  delete card.training;
  fs.mkdirSync(path.join(modelsDir, 'no-training'));
  fs.writeFileSync(path.join(modelsDir, 'no-training', 'teach.json'), JSON.stringify(card));
  await p.goto(`${url}teach.html?bundle=no-training`);
  await p.waitForSelector('#status[data-state="error"]', { state: 'attached', timeout: 30000 });
  expect(await p.textContent('#error')).toMatch(/Could not load the Teach bundle at models\/no-training\/: .*'training' is missing/);
  expect(await p.isDisabled('#train')).toBe(true);
  await p.close();
});

dataTest('teaching 3 Tiny ImageNet classes from 10 photos each on MobileNetV2 reaches >= 90 % held-out; predict agrees with the page',
  ['models/mobilenetv2-7-fp32.onnx', 'data/tiny-imagenet-30/train'], async () => {
    const exported = cli(tmp, 'export-teach', sharedFile('models/mobilenetv2-7-fp32.onnx'), '--out', path.join(modelsDir, 'mobilenetv2'));
    if (exported.status !== 0) throw new Error(exported.stderr);
    const train = sharedFile('data/tiny-imagenet-30/train');
    const classes = fs.readdirSync(train).sort().slice(0, 3).map((wnid) => {
      const files = fs.readdirSync(path.join(train, wnid, 'images')).sort().map((f) => path.join(train, wnid, 'images', f));
      return { name: wnid, files: files.slice(0, 10), fresh: files.slice(10, 12) };
    });
    const p = await openTeachPage('&bundle=mobilenetv2');
    await teachClasses(p, classes);
    const r = await trainOnPage(p);
    expect(r.epochs[r.epochs.length - 1]!.heldOutAccuracy).toBeGreaterThanOrEqual(0.9);
    expect(r.trainSeconds).toBeLessThan(10);
    console.log(`Teach page (wasm, 2 threads, MobileNetV2): features ${r.featureMs.toFixed(1)} ms/image, 20 epochs in ${r.trainSeconds.toFixed(2)} s, ${r.stepsPerSecond.toFixed(0)} updates/s`);
    const fresh = classes.flatMap((c) => c.fresh);
    const shown = new Map<string, string>();
    for (const file of fresh) shown.set(file, (await classifyOnPage(p, file))[0]!.label);
    const taught = path.join(tmp, 'taught-mobilenetv2');
    await download(p, taught);
    const predicted = predictTop1(taught, fresh);
    for (const file of fresh) expect(predicted.get(file)!.label).toBe(shown.get(file));
    expect(pageErrors).toEqual([]);
    await p.close();
  }, 300000);
