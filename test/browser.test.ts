/**
 * The web demo in a real browser (Debian's chromium driven by playwright-core) against `deepvision serve`'s
 * server: the page's top 5 must equal `deepvision predict`'s for the same exported model and image, and its caption
 * `deepvision caption`'s for the same exported captioner.
 */
import * as fs from 'node:fs';
import type * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { Browser, chromium, Page } from 'playwright-core';
import sharp from 'sharp';
import { demoServerOptions, startStaticServer } from '../src/serve/static-server';
import type { CaptionerCard } from '../src/portable/captioner-card';
import { trainAndExportCaptioner } from './support/exported-captioner';
import { cli, trainAndExport } from './support/exported-model';
import { dataTest, fixture, sharedFile } from './support/shared';

const CHROMIUM = '/usr/bin/chromium';
let tmp: string;
let trained: ReturnType<typeof trainAndExport>;
let captioner: ReturnType<typeof trainAndExportCaptioner>;
let server: http.Server | undefined;
let url: string;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run \`bash scripts/install-system-deps.sh\` (Debian package chromium)`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-browser-'));
  trained = trainAndExport(tmp);
  // A model whose card points at a file that does not exist: the page must say so.
  fs.mkdirSync(path.join(trained.modelsDir, 'broken'));
  fs.writeFileSync(path.join(trained.modelsDir, 'broken', 'model.json'), fs.readFileSync(path.join(trained.modelDir, 'model.json'), 'utf8').replace('"model.onnx"', '"missing.onnx"'));
  // A captioner beside the classifiers, and one whose step model is missing.
  captioner = trainAndExportCaptioner(tmp, trained.modelsDir);
  fs.mkdirSync(path.join(trained.modelsDir, 'broken-captioner'));
  fs.copyFileSync(path.join(captioner.modelDir, 'encoder.onnx'), path.join(trained.modelsDir, 'broken-captioner', 'encoder.onnx'));
  fs.writeFileSync(path.join(trained.modelsDir, 'broken-captioner', 'model.json'), fs.readFileSync(path.join(captioner.modelDir, 'model.json'), 'utf8').replace('"step.onnx"', '"missing.onnx"'));
  fs.rmSync(path.join(trained.modelsDir, 'index.json'));
  const demo = demoServerOptions();
  ({ server, url } = await startStaticServer({ ...demo, mounts: { '/models/': trained.modelsDir, ...demo.mounts }, port: 0 }));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${url}?model=small&captioner=captioner`);
  await page.waitForSelector('#results[data-state="ready"]', { state: 'attached', timeout: 60000 });
});

afterAll(async () => {
  // Unset when beforeAll failed before launching it.
  await (browser as Browser | undefined)?.close();
  server?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** The page's top 5 for an uploaded file, once the list is for that file (the page names it in data-image). */
async function upload(file: string, on: Page = page): Promise<{ label: string; probability: number }[]> {
  await on.setInputFiles('#file-input', file);
  const name = JSON.stringify(path.basename(file));
  await on.waitForSelector(`#results[data-state="done"][data-image=${name}], #results[data-state="error"]`, { state: 'attached', timeout: 60000 });
  if (await on.getAttribute('#results', 'data-state') === 'error') throw new Error(`the page shows an error: ${await on.textContent('#error')}`);
  return on.$$eval('#results li', (items) => items.map((li) => ({ label: li.dataset.label!, probability: Number(li.dataset.probability) })));
}

function predict(file: string, modelDir = trained.modelDir): { label: string; probability: number }[] {
  const r = cli(tmp, 'predict', modelDir, file, '--json');
  if (r.status !== 0) throw new Error(r.stderr);
  return (JSON.parse(r.stdout) as { predictions: { label: string; probability: number }[] }).predictions;
}

function expectSamePredictions(shown: { label: string; probability: number }[], cliPredictions: { label: string; probability: number }[]): void {
  expect(shown.map((p) => p.label)).toEqual(cliPredictions.map((p) => p.label));
  for (const [i, p] of shown.entries()) expect(Math.abs(p.probability - cliPredictions[i]!.probability)).toBeLessThanOrEqual(1e-4);
}

test('the page loads the model with the wasm provider (no GPU here) and shows its card', async () => {
  expect(await page.textContent('#provider')).toMatch(/Execution provider: wasm \(\d+ threads?; /);
  expect(await page.$eval('#model-select', (s) => (s as unknown as { value: string }).value)).toBe('small');
  expect(await page.textContent('#model-info')).toContain('shapes');
  expect(await page.$$eval('#samples img', (imgs) => imgs.length)).toBe(10);
});

test('a PNG photo: top 5 labels and probabilities equal deepvision predict within 1e-4', async () => {
  const png = path.join(tmp, 'photo.png');
  await sharp(fixture('photos/val_1.JPEG')).png().toFile(png);
  const shown = await upload(png);
  expect(shown).toHaveLength(5);
  expectSamePredictions(shown, predict(png));
  expect(await page.textContent('#timing')).toMatch(/Inference: [\d.]+ ms \(64×64 image → 16×16 input\)/);
});

test('a JPEG (resized and center-cropped from 4:3) and a generated sample agree with predict too', async () => {
  const jpeg = path.join(tmp, 'wide.jpg');
  await sharp(fixture('photos/dog-320.jpg')).resize(120, 90, { fit: 'fill' }).jpeg({ quality: 90 }).toFile(jpeg);
  expectSamePredictions(await upload(jpeg), predict(jpeg));
  const sample = path.resolve(__dirname, '..', 'web-demo', 'samples', 'star.png');
  expectSamePredictions(await upload(sample), predict(sample));
});

/** The page's caption of an image (uploaded, or a sample's button clicked) once it is written for that image. */
async function pageCaption(file: string, how: 'upload' | 'sample' = 'upload'): Promise<string> {
  if (how === 'sample') await page.click(`#samples button:has(img[src="samples/${path.basename(file)}"])`);
  else await page.setInputFiles('#file-input', file);
  const name = JSON.stringify(path.basename(file));
  await page.waitForSelector(`#caption[data-state="done"][data-image=${name}], #caption[data-state="error"]`, { state: 'attached', timeout: 60000 });
  if (await page.getAttribute('#caption', 'data-state') === 'error') throw new Error(`the page shows a caption error: ${await page.textContent('#caption')}`);
  return (await page.getAttribute('#caption', 'data-caption'))!;
}

function cliCaption(file: string): string {
  const card = JSON.parse(fs.readFileSync(path.join(captioner.modelDir, 'model.json'), 'utf8')) as CaptionerCard;
  const r = cli(tmp, 'caption', captioner.modelDir, file, '--beam', String(card.generation.beam), '--length-penalty', String(card.generation.lengthPenalty), '--json');
  if (r.status !== 0) throw new Error(r.stderr);
  return (JSON.parse(r.stdout) as { caption: string }).caption;
}

/** A page on Chromium's software WebGPU adapter (SwiftShader's Vulkan, so it runs on any machine, CI's too). */
async function withGpuPage(work: (p: Page, gpuBrowser: Browser) => Promise<void>): Promise<void> {
  const gpuBrowser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const p = await gpuBrowser.newPage();
    p.on('pageerror', (e) => pageErrors.push(e.message));
    await p.goto(`${url}?model=small`);
    await p.waitForSelector('#results[data-state="ready"]', { state: 'attached', timeout: 60000 });
    expect(await p.textContent('#provider')).toMatch(/Execution provider: WebGPU/);
    await work(p, gpuBrowser);
    expect(pageErrors).toEqual([]);
  } finally {
    await gpuBrowser.close();
  }
}

test('with a WebGPU adapter (Chromium\'s software one) the page classifies on onnxruntime-web\'s WebGPU provider, as predict does within 1e-4', async () => {
  await withGpuPage(async (p) => {
    const sample = path.resolve(__dirname, '..', 'web-demo', 'samples', 'star.png');
    expectSamePredictions(await upload(sample, p), predict(sample));
    const png = path.join(tmp, 'photo-webgpu.png');
    await sharp(fixture('photos/val_1.JPEG')).png().toFile(png);
    expectSamePredictions(await upload(png, p), predict(png));
    expect(await p.getAttribute('#provider', 'data-provider')).toBe('WebGPU');
  });
});

test('when the GPU device is lost (the GPU process crashes) the page says so, loads the model again on wasm and still agrees with predict', async () => {
  await withGpuPage(async (p, gpuBrowser) => {
    const sample = path.resolve(__dirname, '..', 'web-demo', 'samples', 'star.png');
    expectSamePredictions(await upload(sample, p), predict(sample));
    const cdp = await gpuBrowser.newBrowserCDPSession();
    await cdp.send('Browser.crashGpuProcess');
    await p.waitForSelector('#provider[data-provider="wasm"]', { state: 'attached', timeout: 60000 });
    expect(await p.textContent('#provider')).toMatch(/^Execution provider: wasm \(\d+ threads?; the GPU device was lost: .+\)$/);
    const png = path.join(tmp, 'photo-after-gpu-loss.png');
    await sharp(fixture('photos/val_1.JPEG')).png().toFile(png);
    expectSamePredictions(await upload(png, p), predict(png));
    expect(await p.textContent('#error')).toBe('');
  });
});

test('captioners are listed apart from the classifiers', async () => {
  expect(await page.$$eval('#model-select option', (o) => o.map((x) => (x as unknown as { value: string }).value))).toEqual(['broken', 'small']);
  expect(await page.$$eval('#captioner-select option', (o) => o.map((x) => (x as unknown as { value: string }).value))).toEqual(['broken-captioner', 'captioner']);
  expect(await page.$eval('#captioner-select', (s) => (s as unknown as { value: string }).value)).toBe('captioner');
});

test('a sample and an uploaded photo: the page\'s caption equals deepvision caption\'s, beside the top 5', async () => {
  const sample = path.resolve(__dirname, '..', 'web-demo', 'samples', 'star.png');
  const shown = await pageCaption(sample, 'sample');
  expect(shown).toMatch(/^[a-z]+( [a-z]+)+$/);
  expect(shown).toBe(cliCaption(sample));
  expect(await page.$$eval('#results li', (items) => items.length)).toBe(5);
  expect(await page.textContent('#caption-timing')).toMatch(/^Caption: [\d.]+ ms \(beam 3, log-probability -[\d.]+\)$/);
  const png = path.join(tmp, 'photo-for-caption.png');
  await sharp(fixture('photos/val_1.JPEG')).png().toFile(png);
  expect(await pageCaption(png)).toBe(cliCaption(png));
  expect(pageErrors).toEqual([]);
});

test('a captioner that fails to load says so in the caption\'s place', async () => {
  await page.selectOption('#captioner-select', 'broken-captioner');
  await page.waitForSelector('#caption[data-state="error"]', { state: 'attached', timeout: 30000 });
  expect(await page.textContent('#caption')).toMatch(/^Could not load captioner 'broken-captioner': .*missing\.onnx: HTTP 404$/);
  await page.selectOption('#captioner-select', 'captioner');
  await page.waitForSelector('#caption[data-state="done"]', { state: 'attached', timeout: 60000 });
  expect(pageErrors).toEqual([]);
});

test('with only a captioner exported (npm run demo:caption), the page captions and shows no empty top 5', async () => {
  const p = await browser.newPage();
  const errors: string[] = [];
  p.on('pageerror', (e) => errors.push(e.message));
  try {
    // The folder as demo:caption leaves it on a fresh checkout: the captioner alone in its index.
    await p.route('**/models/index.json', (route) => route.fulfill({ json: { models: [{ id: 'captioner', name: 'captioner', dataset: 'shapes', task: 'captioning' }] } }));
    await p.goto(url);
    await p.waitForSelector('#caption[data-state="ready"]', { state: 'attached', timeout: 60000 });
    expect(await p.isVisible('#caption-section')).toBe(true);
    expect(await p.isVisible('#classifier-section')).toBe(false);
    expect(await p.isVisible('h2:text-is("Top 5")')).toBe(false);
    const sample = path.resolve(__dirname, '..', 'web-demo', 'samples', 'star.png');
    await p.setInputFiles('#file-input', sample);
    await p.waitForSelector('#caption[data-state="done"][data-image="star.png"], #caption[data-state="error"]', { state: 'attached', timeout: 60000 });
    expect(await p.getAttribute('#caption', 'data-caption')).toBe(cliCaption(sample));
    expect(await p.isVisible('#error')).toBe(false);
    expect(errors).toEqual([]);
  } finally {
    await p.close();
  }
});

test('a file that is not an image shows an error on the page', async () => {
  const fake = path.join(tmp, 'notes.png');
  fs.writeFileSync(fake, 'these are notes, not pixels');
  await page.setInputFiles('#file-input', fake);
  await page.waitForSelector('#results[data-state="error"]', { state: 'attached', timeout: 30000 });
  expect(await page.isVisible('#error')).toBe(true);
  expect(await page.textContent('#error')).toContain("'notes.png' is not an image");
});

test('a model that fails to load shows an error on the page', async () => {
  await page.selectOption('#model-select', 'broken');
  await page.waitForSelector('#results[data-state="error"]', { state: 'attached', timeout: 30000 });
  expect(await page.textContent('#error')).toMatch(/Could not load model 'broken': .*missing\.onnx: HTTP 404/);
  expect(pageErrors).toEqual([]);
});

dataTest('transfer: MobileNetV2 with a head trained on real classes classifies a real photo in the page as predict does',
  ['models/mobilenetv2-7-fp32.onnx', 'models/samples/dog.jpg', 'data/tiny-imagenet-30/train'], async () => {
    // Three Tiny ImageNet classes, 16 photos each, at MobileNetV2's 224 px.
    const data = path.join(tmp, 'photos');
    const train = sharedFile('data/tiny-imagenet-30/train');
    for (const wnid of fs.readdirSync(train).sort().slice(0, 3)) {
      fs.mkdirSync(path.join(data, wnid), { recursive: true });
      for (const f of fs.readdirSync(path.join(train, wnid, 'images')).sort().slice(0, 16)) fs.copyFileSync(path.join(train, wnid, 'images', f), path.join(data, wnid, f));
    }
    const run = path.join(tmp, 'transfer-run');
    const trainRun = cli(tmp, 'transfer', sharedFile('models/mobilenetv2-7-fp32.onnx'), '--data', data, '--val-fraction', '0.25', '--epochs', '5', '--lr', '0.003',
      '--out', run, '--no-progress', '--cache-dir', path.join(tmp, 'cache'));
    if (trainRun.status !== 0) throw new Error(trainRun.stderr);
    const exported = path.join(trained.modelsDir, 'transfer');
    const x = cli(tmp, 'export', run, '--out', exported);
    if (x.status !== 0) throw new Error(x.stderr);
    await page.goto(`${url}?model=transfer`);
    await page.waitForSelector('#results[data-state="ready"]', { state: 'attached', timeout: 60000 });
    const dog = sharedFile('models/samples/dog.jpg');
    const shown = await upload(dog);
    expect(shown).toHaveLength(3);
    expectSamePredictions(shown, predict(dog, exported));
    expect(pageErrors).toEqual([]);
  }, 240000);
