/**
 * The web demo: pick an exported model, give it an image, see the top-5 classes, and a caption when a captioner is
 * exported beside the classifiers. Preprocessing and softmax come from the same module `deepvision predict` uses,
 * and the caption from the same search as `deepvision caption`, so the page and the CLI agree.
 */
import type * as OrtWeb from 'onnxruntime-web';
import { Pixels, Prediction, preprocessImage, scoresProblem, topK } from '../../src/portable/image-preprocessing';
import { outputOf } from '../../src/portable/session-output';
import { ModelCard, modelCardProblems } from '../../src/portable/model-card';
import { captionImage, LoadedCaptioner, loadCaptioner, releaseCaptioner } from './caption';
import { errorMessage } from './error-message';
import { fetchJson } from './fetch-files';
import { acceptFileDrops } from './file-drops';
import { pixelLimitProblem } from './teach/limits';

declare const ort: typeof OrtWeb;

/** An entry of models/index.json (model-index.ts writes it; that module reads folders, so it is not bundled). */
interface ModelIndexEntry {
  id: string;
  name: string;
  dataset: string;
  top1?: number;
  task?: 'captioning';
}

interface LoadedModel {
  id: string;
  card: ModelCard;
  session: OrtWeb.InferenceSession;
  provider: string;
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const modelSelect = $<HTMLSelectElement>('model-select');
const modelInfo = $<HTMLDListElement>('model-info');
const dropZone = $<HTMLDivElement>('drop-zone');
const fileInput = $<HTMLInputElement>('file-input');
const samples = $<HTMLDivElement>('samples');
const errorBox = $<HTMLDivElement>('error');
const preview = $<HTMLCanvasElement>('preview');
const imageName = $<HTMLParagraphElement>('image-name');
const classifierSection = $<HTMLDivElement>('classifier-section');
const results = $<HTMLOListElement>('results');
const timing = $<HTMLParagraphElement>('timing');
const providerLine = $<HTMLParagraphElement>('provider');
const captionerControls = $<HTMLDivElement>('captioner-controls');
const captionerSelect = $<HTMLSelectElement>('captioner-select');
const captionSection = $<HTMLDivElement>('caption-section');
const captionBox = $<HTMLParagraphElement>('caption');
const captionTiming = $<HTMLParagraphElement>('caption-timing');

let current: LoadedModel | undefined;
let lastImage: { pixels: Pixels; name: string } | undefined;
let loading: Promise<LoadedModel | undefined> = Promise.resolve(undefined);
let captioner: Promise<LoadedCaptioner | undefined> = Promise.resolve(undefined);
/** Counts the images given: a caption finished for an earlier one is not shown. */
let imageSerial = 0;
let inferenceQueue: Promise<unknown> = Promise.resolve();

/** One model run at a time: onnxruntime-web's wasm backend is not safe for overlapping runs. */
function exclusive<T>(work: () => Promise<T>): Promise<T> {
  const result = inferenceQueue.then(work, work);
  inferenceQueue = result.catch(() => undefined);
  return result;
}

function showError(message: string): void {
  errorBox.textContent = message;
  errorBox.hidden = false;
  results.dataset.state = 'error';
}

function clearError(): void {
  errorBox.hidden = true;
  errorBox.textContent = '';
}

/** Why WebGPU is no longer used, once onnxruntime-web's GPU device was lost (a driver reset, a crashed GPU process). */
let gpuLost: string | undefined;
let watchingGpu = false;

/**
 * Every run on a lost device fails, and onnxruntime-web keeps its one device: when it is lost, the page loads the
 * current model again, on wasm, and the provider line says why.
 */
function watchGpuDevice(): void {
  if (watchingGpu) return;
  watchingGpu = true;
  // The typings say a promise; onnxruntime-web 1.30 gives the device itself once a WebGPU session exists.
  void Promise.resolve(ort.env.webgpu.device as unknown)
    .then((device) => (device as { lost: Promise<{ reason?: string; message?: string }> }).lost)
    .then((info) => {
      if (info.reason === 'destroyed') return;
      gpuLost = info.message || 'no reason given';
      modelSelect.dispatchEvent(new Event('change'));
    });
}

/** WebGPU when the browser has a usable adapter, else wasm (threaded when the page is cross-origin isolated). */
async function createSession(bytes: ArrayBuffer): Promise<{ session: OrtWeb.InferenceSession; provider: string }> {
  const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  let webgpuProblem = gpuLost === undefined ? 'this browser has no WebGPU' : `the GPU device was lost: ${gpuLost}`;
  if (gpu && gpuLost === undefined) {
    try {
      if (await gpu.requestAdapter()) {
        const session = await ort.InferenceSession.create(bytes, { executionProviders: ['webgpu'] });
        watchGpuDevice();
        return { session, provider: 'WebGPU' };
      }
      webgpuProblem = 'no WebGPU adapter';
    } catch (err) {
      webgpuProblem = `WebGPU failed: ${errorMessage(err)}`;
    }
  }
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  const threads = ort.env.wasm.numThreads ?? 1;
  return { session, provider: `wasm (${threads} thread${threads === 1 ? '' : 's'}; ${webgpuProblem})` };
}

async function loadModel(id: string): Promise<LoadedModel | undefined> {
  clearError();
  modelInfo.replaceChildren();
  results.dataset.state = 'loading-model';
  try {
    const base = `models/${encodeURIComponent(id)}/`;
    const card = await fetchJson<ModelCard>(`${base}model.json`);
    const problems = modelCardProblems(card);
    if (problems.length > 0) throw new Error(`model.json of '${id}': ${problems.join('; ')}`);
    // A plain file name only: a card must not point the page at other paths of the site.
    if (!/^[\w.-]+$/.test(card.file) || /^\.+$/.test(card.file)) throw new Error(`model.json of '${id}': 'file' must be a plain file name, got '${card.file}'`);
    const response = await fetch(base + card.file);
    if (!response.ok) throw new Error(`${base}${card.file}: HTTP ${response.status}`);
    const { session, provider } = await createSession(await response.arrayBuffer());
    const info: [string, string][] = [
      ['Trained on', card.training.dataset],
      ['Validation top-1', card.training.validation ? `${(100 * card.training.validation.top1).toFixed(2)} %` : 'n/a'],
      ['Input', `${card.input.shape[1]}×${card.input.shape[2]}, ${card.input.shape[0]} channels`],
      ['Classes', String(card.labels.length)],
      ['Parameters', card.parameters.toLocaleString('en-US')],
      ['Size', `${(card.bytes / 1e6).toFixed(2)} MB (${card.precision})`],
    ];
    modelInfo.replaceChildren(...info.flatMap(([k, v]) => [Object.assign(document.createElement('dt'), { textContent: k }), Object.assign(document.createElement('dd'), { textContent: v })]));
    providerLine.textContent = `Execution provider: ${provider}`;
    providerLine.dataset.provider = provider.split(' ')[0]!;
    results.dataset.state = 'ready';
    return { id, card, session, provider };
  } catch (err) {
    showError(`Could not load model '${id}': ${errorMessage(err)}`);
    return undefined;
  }
}

/** Decodes an image file with the browser (EXIF orientation applied), as RGBA pixels at its own size. */
async function decode(blob: Blob, name: string): Promise<Pixels> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(blob, { premultiplyAlpha: 'none', imageOrientation: 'from-image' });
  } catch {
    throw new Error(`'${name}' is not an image this browser can decode`);
  }
  // The limit `deepvision predict` applies, so that the page and the CLI refuse the same images.
  const tooLarge = pixelLimitProblem(name, bitmap.width, bitmap.height);
  if (tooLarge !== undefined) {
    bitmap.close();
    throw new Error(tooLarge);
  }
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext('2d', { willReadFrequently: true })!;
  context.drawImage(bitmap, 0, 0);
  const data = context.getImageData(0, 0, bitmap.width, bitmap.height).data;
  // Preview: fit the image into the square canvas.
  const view = preview.getContext('2d')!;
  view.clearRect(0, 0, preview.width, preview.height);
  const fit = Math.min(preview.width / bitmap.width, preview.height / bitmap.height);
  view.imageSmoothingEnabled = fit < 1;
  view.drawImage(bitmap, (preview.width - bitmap.width * fit) / 2, (preview.height - bitmap.height * fit) / 2, bitmap.width * fit, bitmap.height * fit);
  bitmap.close();
  return { width: canvas.width, height: canvas.height, channels: 4, data };
}

async function classify(): Promise<void> {
  const model = current;
  const image = lastImage;
  const serial = imageSerial;
  if (!model || !image) return;
  results.dataset.state = 'running';
  try {
    const [c, h, w] = model.card.input.shape;
    const input = preprocessImage(image.pixels, model.card.input.preprocessing, c, h, w);
    const started = performance.now();
    const out = await exclusive(() => model.session.run({ [model.card.input.name]: new ort.Tensor('float32', input, [1, c, h, w]) }));
    const elapsed = performance.now() - started;
    // Another image came while this one ran: its own classification shows its result.
    if (serial !== imageSerial) return;
    const scores = outputOf(out, model.card.output.name).data as Float32Array;
    const problem = scoresProblem(scores, model.card.labels);
    if (problem !== undefined) throw new Error(problem);
    render(topK(scores, model.card.labels, 5));
    timing.textContent = `Inference: ${elapsed.toFixed(1)} ms (${image.pixels.width}×${image.pixels.height} image → ${w}×${h} input)`;
    // Which image the list is for: a test (or a script) waits for its own image's result, not any earlier one.
    results.dataset.image = image.name;
    results.dataset.state = 'done';
  } catch (err) {
    if (serial === imageSerial) showError(`Inference failed: ${errorMessage(err)}`);
  }
}

function render(predictions: Prediction[]): void {
  results.replaceChildren(...predictions.map((p) => {
    const li = document.createElement('li');
    li.dataset.label = p.label;
    li.dataset.probability = String(p.probability);
    const label = Object.assign(document.createElement('span'), { className: 'label', textContent: p.label, title: p.label });
    const bar = Object.assign(document.createElement('span'), { className: 'bar' });
    const fill = document.createElement('i');
    fill.style.width = `${(100 * p.probability).toFixed(2)}%`;
    bar.append(fill);
    const value = Object.assign(document.createElement('span'), { className: 'value', textContent: `${(100 * p.probability).toFixed(2)} %` });
    li.append(label, bar, value);
    return li;
  }));
}

function showCaption(state: 'waiting' | 'loading-model' | 'ready' | 'running' | 'done' | 'error', text: string): void {
  captionBox.dataset.state = state;
  captionBox.textContent = text;
  if (state !== 'done') {
    delete captionBox.dataset.caption;
    delete captionBox.dataset.image;
    captionTiming.textContent = '';
  }
}

/** Captions the current image with the current captioner; a failure is shown in the caption's place. */
async function caption(): Promise<void> {
  const serial = imageSerial;
  const model = await captioner;
  const image = lastImage;
  if (!model || !image || serial !== imageSerial) return;
  showCaption('running', 'Writing a caption…');
  try {
    const found = await exclusive(() => captionImage(model, image.pixels));
    if (serial !== imageSerial) return;
    showCaption('done', found.text === '' ? '(an empty caption)' : found.text);
    captionBox.dataset.caption = found.text;
    captionBox.dataset.image = image.name;
    const { beam } = model.card.generation;
    captionTiming.textContent = `Caption: ${found.milliseconds.toFixed(1)} ms (${beam === 1 ? 'greedy' : `beam ${beam}`}, log-probability ${found.logProb.toFixed(2)})`;
  } catch (err) {
    if (serial === imageSerial) showCaption('error', `Captioning failed: ${errorMessage(err)}`);
  }
}

/**
 * Switches run one after another (`serially`), so each one's `previous` is the captioner the switch before it loaded,
 * and each loaded captioner is released once, by the switch that replaces it. A switch asked for while others wait
 * makes them moot: only the latest one loads.
 */
let captionerSwitches = 0;
const switchCaptioner = serially(async (id: string, serial: number) => {
  if (serial !== captionerSwitches) return;
  const previous = await captioner;
  showCaption('loading-model', 'Loading the captioner…');
  captioner = loadCaptioner(id).catch((err: unknown) => {
    showCaption('error', `Could not load captioner '${id}': ${errorMessage(err)}`);
    return undefined;
  });
  const loaded = await captioner;
  // In the inference queue: a caption still being written with it finishes first.
  if (previous && previous !== loaded) await exclusive(() => releaseCaptioner(previous)).catch(() => undefined);
  if (!loaded || serial !== captionerSwitches) return;
  showCaption('ready', lastImage ? '' : 'Choose an image to caption it.');
  await caption();
}, () => ++captionerSwitches);

/**
 * `work` for each call, one call at a time in the order asked; `next()` numbers each call when it is asked, so that a
 * call can tell whether a later one is waiting.
 */
function serially<A>(work: (arg: A, serial: number) => Promise<void>, next: () => number): (arg: A) => Promise<void> {
  let queue: Promise<void> = Promise.resolve();
  return (arg: A) => {
    const serial = next();
    const result = queue.then(() => work(arg, serial));
    queue = result.catch(() => undefined);
    return result;
  };
}

async function useImage(blob: Blob, name: string): Promise<void> {
  imageSerial++;
  clearError();
  results.replaceChildren();
  delete results.dataset.image;
  timing.textContent = '';
  imageName.textContent = name;
  if (!captionSection.hidden) showCaption('waiting', '');
  try {
    lastImage = { pixels: await decode(blob, name), name };
  } catch (err) {
    lastImage = undefined;
    showError(errorMessage(err));
    if (!captionSection.hidden) showCaption('error', 'No caption: the image could not be read.');
    return;
  }
  // Waits for the model being loaded; the model switch (which owns `current`) sets it.
  await loading;
  await classify();
  await caption();
}

async function start(): Promise<void> {
  if (self.crossOriginIsolated) ort.env.wasm.numThreads = Math.min(navigator.hardwareConcurrency || 1, 4);
  else ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = new URL('ort/', document.baseURI).href;

  fileInput.addEventListener('change', () => {
    const file = fileInput.files?.[0];
    if (file) void useImage(file, file.name);
    fileInput.value = '';
  });
  dropZone.addEventListener('click', () => fileInput.click());
  dropZone.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') fileInput.click();
  });
  acceptFileDrops(dropZone, (dropped) => {
    const file = dropped?.[0];
    if (file) void useImage(file, file.name);
  });

  try {
    const { samples: list } = await fetchJson<{ samples: { file: string; caption: string }[] }>('samples/index.json');
    for (const s of list) {
      const button = document.createElement('button');
      button.title = s.caption;
      button.append(Object.assign(document.createElement('img'), { src: `samples/${s.file}`, alt: s.caption }));
      // A sample that cannot be fetched (the server stopped) is an error line, not an unhandled rejection.
      button.addEventListener('click', () => {
        fetch(`samples/${s.file}`).then((response) => response.blob()).then((blob) => useImage(blob, s.file)).catch((err: unknown) => showError(errorMessage(err)));
      });
      samples.append(button);
    }
  } catch {
    samples.textContent = 'no samples found';
  }

  let listed: ModelIndexEntry[] = [];
  try {
    listed = (await fetchJson<{ models: ModelIndexEntry[] }>('models/index.json')).models;
  } catch (err) {
    showError(`Could not list the models: ${errorMessage(err)}`);
  }
  const wantedCaptioner = new URLSearchParams(location.search).get('captioner');
  const captioners = listed.filter((m) => m.task === 'captioning');
  if (captioners.length > 0) {
    captionerSelect.replaceChildren(...captioners.map((m) => new Option(`${m.name} (${m.dataset})`, m.id)));
    if (wantedCaptioner && captioners.some((m) => m.id === wantedCaptioner)) captionerSelect.value = wantedCaptioner;
    captionerControls.hidden = false;
    captionSection.hidden = false;
    captionerSelect.addEventListener('change', () => void switchCaptioner(captionerSelect.value));
    void switchCaptioner(captionerSelect.value);
  }
  // Index entries without a task are classifiers (indexes written before captioners could be exported).
  const models = listed.filter((m) => m.task === undefined);
  if (models.length === 0) {
    modelSelect.replaceChildren(new Option(captioners.length > 0 ? 'no classifiers exported yet' : 'no models exported yet'));
    // A captioner alone (npm run demo:caption): no classifier, so no top 5 to show under its heading.
    if (captioners.length > 0) classifierSection.hidden = true;
    if (errorBox.hidden && captioners.length === 0) showError('No models yet: run `deepvision export models/RUN --out web-demo/models/NAME` and reload.');
    return;
  }
  modelSelect.replaceChildren(...models.map((m) => new Option(`${m.name} (${m.dataset}${m.top1 !== undefined ? `, ${(100 * m.top1).toFixed(1)} %` : ''})`, m.id)));
  modelSelect.disabled = false;
  // As the captioner's switches: one at a time, only the latest of those waiting loads, each model released once.
  let modelSwitches = 0;
  const switchModel = serially(async (id: string, serial: number) => {
    if (serial !== modelSwitches) return;
    const previous = current;
    loading = loadModel(id);
    current = await loading;
    // In the inference queue: a classification still running on it finishes first.
    if (previous && previous !== current) await exclusive(() => previous.session.release()).catch(() => undefined);
    if (serial === modelSwitches) await classify();
  }, () => ++modelSwitches);
  modelSelect.addEventListener('change', () => void switchModel(modelSelect.value));
  const wanted = new URLSearchParams(location.search).get('model');
  if (wanted && models.some((m) => m.id === wanted)) modelSelect.value = wanted;
  await switchModel(modelSelect.value);
}

void start();
