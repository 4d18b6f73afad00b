/**
 * The Teach page: the user names classes and gives each a few images; the page computes their features with the
 * bundle's frozen backbone, trains the bundle's head for that many classes with its training and optimizer graphs
 * (the shared TrainingStep, as the Node trainer), shows the loss and held-out accuracy per epoch, classifies new
 * images, and offers the taught model as model.onnx + model.json. With a bundle made from a training run, the
 * page can instead fine-tune the run's whole model (every parameter) on images of its own classes, the same way.
 */
import { topK } from '../../../src/portable/image-preprocessing';
import { heldOutSplit, selectRows, EpochReport, FeatureSet, TeachTrainer } from '../../../src/portable/teach-session';
import { isPlainName, TeachHead, TeachWholeModel } from '../../../src/portable/teach-card';
import { SHAPE_CLASSES } from '../../../src/data/shapes';
import { TeachBundle } from './bundle';
import { decodeImage, sampleShapes, TeachImage, thumbnail } from './images';
import { errorMessage } from '../error-message';
import { acceptFileDrops } from '../file-drops';
import { PAGE_MAX_PIXELS } from './limits';
import { chooseProvider, configureRuntime } from './runtime';
import { installTestHooks } from './test-hooks';

interface TeachClass {
  row: HTMLElement;
  name: HTMLInputElement;
  images: TeachImage[];
  addImages: (list: TeachImage[]) => void;
}

/** A new head on the frozen backbone, or the bundle's whole model fine-tuned on its own classes. */
type Mode = 'head' | 'whole';
type Taught =
  | { mode: 'head'; trainer: TeachTrainer<TeachHead>; labels: string[] }
  | { mode: 'whole'; trainer: TeachTrainer<TeachWholeModel>; labels: string[] };

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const classList = $<HTMLDivElement>('classes');
const addClassButton = $<HTMLButtonElement>('add-class');
const samplesButton = $<HTMLButtonElement>('use-samples');
const trainButton = $<HTMLButtonElement>('train');
const stopButton = $<HTMLButtonElement>('stop');
const epochsInput = $<HTMLInputElement>('epochs-input');
const lrInput = $<HTMLInputElement>('lr-input');
const batchInput = $<HTMLInputElement>('batch-input');
const errorBox = $<HTMLDivElement>('error');
const notices = $<HTMLParagraphElement>('notices');
const statusLine = $<HTMLParagraphElement>('status');
const epochRows = document.querySelector<HTMLTableSectionElement>('#epochs tbody')!;
const speedLine = $<HTMLParagraphElement>('speed');
const bundleInfo = $<HTMLParagraphElement>('bundle-info');
const classifyInput = $<HTMLInputElement>('classify-input');
const predictions = $<HTMLOListElement>('predictions');
const downloads = $<HTMLParagraphElement>('downloads');
const downloadModel = $<HTMLAnchorElement>('download-model');
const downloadCard = $<HTMLAnchorElement>('download-card');
const modeBox = $<HTMLFieldSetElement>('mode');
const modeInputs = [...document.querySelectorAll<HTMLInputElement>('input[name="mode"]')];

const classes: TeachClass[] = [];
/** Features of each image, computed once (an image keeps its features when the classes are trained again). */
const featureCache = new WeakMap<TeachImage, Float32Array>();
let bundle: TeachBundle | undefined;
let mode: Mode = 'head';
let taught: Taught | undefined;
/**
 * What the page is running, if anything: one thing at a time, since onnxruntime-web's wasm backend does not run one
 * session concurrently (a classification and training both run the backbone's feature session).
 */
let busy: 'training' | 'classifying' | undefined;
let stopRequested = false;
let downloadUrls: string[] = [];
/** The features and labels of the last training run (all images, before the split), for the tests' hooks. */
let lastSet: FeatureSet | undefined;

function setStatus(state: string, text: string): void {
  statusLine.dataset.state = state;
  statusLine.textContent = text;
}

function showError(message: string): void {
  errorBox.textContent = message;
  errorBox.hidden = false;
}

function clearMessages(): void {
  errorBox.hidden = true;
  errorBox.textContent = '';
  notices.textContent = '';
}

/** Lets the browser draw between steps of long work. */
const nextFrame = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

function updateButtons(): void {
  const maxClasses = bundle ? Math.max(...bundle.classCounts) : 10;
  const running = busy !== undefined;
  addClassButton.disabled = running || mode === 'whole' || classes.length >= maxClasses;
  samplesButton.disabled = running || bundle === undefined || sampleClasses().length === 0;
  for (const input of modeInputs) input.disabled = running;
  trainButton.disabled = running || bundle === undefined;
  stopButton.disabled = busy !== 'training';
  classifyInput.disabled = running || taught === undefined;
  for (const c of classes) for (const b of c.row.querySelectorAll('button')) b.disabled = running;
}

/** Forgets the taught model, releasing its sessions (onnxruntime-web holds their memory until then). */
async function dropTaught(): Promise<void> {
  const old = taught;
  taught = undefined;
  await old?.trainer.release().catch(() => undefined);
}

/** Adds a class row; a whole model's classes are `fixed`: named by the model, never removed. */
function addClass(name: string, images: TeachImage[] = [], fixed = false): TeachClass {
  const row = Object.assign(document.createElement('div'), { className: 'class-row' });
  const header = document.createElement('header');
  const nameInput = Object.assign(document.createElement('input'), { className: 'class-name', value: name, placeholder: 'class name', maxLength: 60 });
  const count = Object.assign(document.createElement('span'), { className: 'count' });
  const files = Object.assign(document.createElement('input'), { type: 'file', accept: 'image/*', multiple: true, className: 'class-files' });
  const add = Object.assign(document.createElement('button'), { type: 'button', className: 'add-images', textContent: 'Add images' });
  const remove = Object.assign(document.createElement('button'), { type: 'button', className: 'remove', textContent: '×', title: 'remove this class' });
  const thumbs = Object.assign(document.createElement('div'), { className: 'thumbs' });
  header.append(nameInput, count, add, remove);
  row.append(header, files, thumbs);
  classList.append(row);
  if (fixed) {
    nameInput.readOnly = true;
    remove.hidden = true;
  }
  const c: TeachClass = { row, name: nameInput, images: [], addImages: () => undefined };
  classes.push(c);
  const refresh = () => {
    count.textContent = `${c.images.length} image${c.images.length === 1 ? '' : 's'}`;
    row.dataset.images = String(c.images.length);
  };
  const addImages = (list: TeachImage[]) => {
    c.images.push(...list);
    thumbs.append(...list.map((image) => thumbnail(image)));
    refresh();
  };
  c.addImages = addImages;
  const addFiles = async (fileList: FileList | null | undefined) => {
    if (!fileList || fileList.length === 0) return;
    clearMessages();
    const decoded: TeachImage[] = [];
    const refused: string[] = [];
    for (const file of Array.from(fileList)) {
      try {
        decoded.push(await decodeImage(file, file.name));
      } catch (err) {
        refused.push(errorMessage(err));
      }
    }
    addImages(decoded);
    if (refused.length > 0) {
      showError(`Skipped ${refused.length === 1 ? 'a file' : `${refused.length} files`}: ${refused.join('; ')}. `
        + `Give images (JPEG, PNG, WebP, GIF) of at most ${PAGE_MAX_PIXELS.toLocaleString('en-US')} pixels.`);
    }
    row.dataset.loaded = String(Number(row.dataset.loaded ?? 0) + 1);
  };
  add.addEventListener('click', () => files.click());
  files.addEventListener('change', () => {
    void addFiles(files.files).finally(() => (files.value = ''));
  });
  acceptFileDrops(row, (dropped) => void addFiles(dropped));
  remove.addEventListener('click', () => {
    classes.splice(classes.indexOf(c), 1);
    row.remove();
    updateButtons();
  });
  addImages(images);
  updateButtons();
  return c;
}

/** What stops training from starting, as one message for the user; undefined when all is well. */
function inputProblem(): string | undefined {
  if (mode === 'whole') {
    // Fine-tuning may leave classes without images: the model keeps what it knows of them.
    const total = classes.reduce((n, c) => n + c.images.length, 0);
    return total < 2 ? 'Fine-tuning needs images of the model\'s classes: add at least 2 in all (a few per class is better).' : undefined;
  }
  const counts = bundle!.classCounts;
  const [min, max] = [Math.min(...counts), Math.max(...counts)];
  if (classes.length < min) return `Teaching needs at least ${min} classes; there ${classes.length === 1 ? 'is 1' : `are ${classes.length}`}. Add a class.`;
  if (classes.length > max) return `This backbone's bundle has heads for at most ${max} classes; there are ${classes.length}.`;
  if (bundle!.head(classes.length) === undefined) return `This backbone's bundle has no head for ${classes.length} classes (it has ${counts.join(', ')}).`;
  const names = classes.map((c) => c.name.value.trim());
  const unnamed = names.findIndex((n) => n === '');
  if (unnamed >= 0) return `Class ${unnamed + 1} has no name.`;
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined) return `Two classes are named '${twice}': give each class its own name.`;
  const empty = classes.find((c) => c.images.length === 0);
  if (empty !== undefined) return `Class '${empty.name.value.trim()}' has no images: add at least 2 (3 or more is better).`;
  return undefined;
}

function settings(): { epochs: number; learningRate: number; batchSize: number } | string {
  const epochs = Number(epochsInput.value);
  const learningRate = Number(lrInput.value);
  const batchSize = Number(batchInput.value);
  if (!Number.isInteger(epochs) || epochs < 1 || epochs > 500) return 'Epochs must be a whole number from 1 to 500.';
  if (!(learningRate > 0 && learningRate < 10)) return 'The learning rate must be a number above 0 (for example 0.003).';
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 256) return 'The batch size must be a whole number from 1 to 256.';
  return { epochs, learningRate, batchSize };
}

/** Mode-dependent defaults of the settings. */
function showDefaults(): void {
  const d = mode === 'whole' ? bundle!.card.wholeModel!.defaults : bundle!.card.training;
  epochsInput.value = String(d.epochs);
  lrInput.value = String(d.learningRate);
  batchInput.value = String(d.batchSize);
}

/** Switches between teaching a head and fine-tuning the whole model: the classes start over. */
function setMode(next: Mode): void {
  if (busy !== undefined || bundle === undefined) return;
  mode = next;
  clearMessages();
  for (const c of classes) c.row.remove();
  classes.splice(0, classes.length);
  if (mode === 'whole') for (const label of bundle.card.wholeModel!.labels) addClass(label, [], true);
  else ['class 1', 'class 2'].forEach((name) => addClass(name));
  epochRows.replaceChildren();
  predictions.replaceChildren();
  speedLine.textContent = '';
  void dropTaught();
  revokeDownloads();
  showDefaults();
  for (const input of modeInputs) input.checked = input.value === mode;
  setStatus('ready', mode === 'whole'
    ? 'Add images to any of the model\'s classes (or use the sample shapes), then press Train to fine-tune every parameter.'
    : 'Name your classes and add images to each (or use the sample shapes), then press Train.');
  updateButtons();
}

function addEpochRow(r: EpochReport): void {
  const tr = document.createElement('tr');
  tr.dataset.epoch = String(r.epoch);
  tr.dataset.trainLoss = String(r.trainLoss);
  tr.dataset.heldOutLoss = String(r.heldOutLoss);
  tr.dataset.heldOutAccuracy = String(r.heldOutAccuracy);
  const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)} %` : 'n/a');
  const num = (x: number) => (Number.isFinite(x) ? x.toFixed(4) : 'n/a');
  for (const text of [r.epoch === 0 ? 'start' : String(r.epoch), r.epoch === 0 ? '' : num(r.trainLoss), num(r.heldOutLoss), pct(r.heldOutAccuracy)]) tr.append(Object.assign(document.createElement('td'), { textContent: text }));
  epochRows.append(tr);
}

async function train(): Promise<void> {
  if (busy !== undefined || bundle === undefined) return;
  clearMessages();
  const problem = inputProblem();
  const s = settings();
  if (problem !== undefined || typeof s === 'string') {
    showError(problem ?? (s as string));
    setStatus('invalid', 'Fix the classes or settings above, then train.');
    return;
  }
  busy = 'training';
  stopRequested = false;
  updateButtons();
  // At once, before the first await: a status left from an earlier run must not read as this run's.
  setStatus('training', 'Preparing the images…');
  let next: Taught | undefined;
  try {
    const labels = classes.map((c) => c.name.value.trim());
    const images = classes.flatMap((c, label) => c.images.map((image) => ({ image, label })));
    const { all, featureMs } = mode === 'whole' ? imageRows(images) : await featureRows(images);
    lastSet = all;
    const split = heldOutSplit(all.labels, bundle.card.training.heldOutFraction, 0);
    const heldOut = selectRows(all, split.heldOut);
    setStatus('training', `Training on ${split.train.length} images, ${split.heldOut.length} held out…`);
    epochRows.replaceChildren();
    // The previous model's sessions are released before the new ones are made: each Train press makes three.
    await dropTaught();
    revokeDownloads();
    next = mode === 'whole'
      ? { mode, trainer: (await bundle.wholeTrainer())!, labels }
      : { mode, trainer: await bundle.trainer(bundle.head(labels.length)!), labels };
    const trainer: TeachTrainer = next.trainer;
    if (mode === 'whole' && split.heldOut.length > 0) {
      // Where fine-tuning starts from: the run's model on the held-out images.
      const e = await trainer.evaluate(heldOut);
      addEpochRow({ epoch: 0, trainLoss: NaN, heldOutLoss: e.loss, heldOutAccuracy: e.accuracy, heldOutTop5: e.top5, steps: 0, seconds: 0 });
    }
    const trainStarted = performance.now();
    const reports = await trainer.train(selectRows(all, split.train), heldOut, {
      ...s, seed: 0, shouldStop: () => stopRequested,
      onEpoch: async (r) => {
        addEpochRow(r);
        setStatus('training', `Epoch ${r.epoch} / ${s.epochs}`);
        await nextFrame();
      },
    });
    const trainSeconds = (performance.now() - trainStarted) / 1000;
    const stepSeconds = reports.reduce((t, r) => t + r.seconds, 0);
    const last = reports.at(-1);
    taught = next;
    speedLine.dataset.mode = mode;
    speedLine.dataset.featureMs = String(featureMs ?? '');
    speedLine.dataset.trainSeconds = String(trainSeconds);
    speedLine.dataset.stepsPerSecond = String(trainer.updates / stepSeconds);
    const what = mode === 'whole' ? `Fine-tuning all ${parameterCount(bundle.card.wholeModel!).toLocaleString('en-US')} values of the model` : 'Training';
    speedLine.textContent = `${featureMs !== undefined ? `Features: ${featureMs.toFixed(1)} ms per image. ` : ''}`
      + `${what}: ${reports.length} epochs, ${trainer.updates} updates in ${trainSeconds.toFixed(2)} s with evaluation `
      + `(${(trainer.updates / stepSeconds).toFixed(mode === 'whole' ? 1 : 0)} updates/s). Provider: ${bundle.provider.description}.`;
    const accuracy = last && Number.isFinite(last.heldOutAccuracy) ? `, held-out accuracy ${(100 * last.heldOutAccuracy).toFixed(1)} %` : ' (no image held out: add more images per class)';
    const verb = mode === 'whole' ? 'Fine-tuned' : 'Trained';
    // The download first: 'trained' must mean ready, with nothing awaited between it and clearing `busy` (a
    // classification asked for in between would otherwise be turned away).
    await offerDownload(next, last, images.length);
    // The Stop button sets it while training awaits (the compiler, seeing the reset above, would assume it false).
    const stopped = (stopRequested as boolean);
    setStatus(stopped ? 'stopped' : 'trained', `${stopped ? 'Stopped' : verb} after ${reports.length} epochs${accuracy}. Classify new images or download the model below.`);
  } catch (err) {
    // A trainer that never became the taught model is of no further use: free its sessions.
    if (next !== undefined && next !== taught) await next.trainer.release().catch(() => undefined);
    showError(`Training failed: ${errorMessage(err)}`);
    setStatus('error', 'Training failed.');
  } finally {
    busy = undefined;
    updateButtons();
  }
}

function revokeDownloads(): void {
  for (const url of downloadUrls) URL.revokeObjectURL(url);
  downloadUrls = [];
  downloads.hidden = true;
}

/** The images as backbone features (computed once per image; the time per image when any were computed). */
async function featureRows(images: { image: TeachImage; label: number }[]): Promise<{ all: FeatureSet; featureMs: number | undefined }> {
  const missing = images.filter((x) => !featureCache.has(x.image)).map((x) => x.image);
  const width = bundle!.card.features;
  const started = performance.now();
  if (missing.length > 0) {
    setStatus('features', `Computing features: 0 / ${missing.length} images`);
    const computed = await bundle!.features(missing, async (done) => {
      setStatus('features', `Computing features: ${done} / ${missing.length} images`);
      await nextFrame();
    });
    missing.forEach((image, i) => featureCache.set(image, computed.slice(i * width, (i + 1) * width)));
  }
  const featureMs = missing.length > 0 ? (performance.now() - started) / missing.length : undefined;
  const all: FeatureSet = { features: new Float32Array(images.length * width), labels: Int32Array.from(images, (x) => x.label), width };
  images.forEach((x, i) => all.features.set(featureCache.get(x.image)!, i * width));
  return { all, featureMs };
}

/** The images preprocessed as the whole model reads them: each epoch runs the model on them. */
function imageRows(images: { image: TeachImage; label: number }[]): { all: FeatureSet; featureMs: undefined } {
  const all = { features: bundle!.pixels(images.map((x) => x.image)), labels: Int32Array.from(images, (x) => x.label), width: bundle!.imageSize };
  return { all, featureMs: undefined };
}

const parameterCount = (m: TeachWholeModel) => m.parameters.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);

async function offerDownload(t: Taught, last: EpochReport | undefined, images: number): Promise<void> {
  const { model, card } = t.mode === 'whole' ? await bundle!.fineTunedModel(t.trainer, last, images) : await bundle!.taughtModel(t.trainer, t.labels, last, images);
  revokeDownloads();
  downloadModel.href = URL.createObjectURL(new Blob([model], { type: 'application/octet-stream' }));
  downloadCard.href = URL.createObjectURL(new Blob([`${JSON.stringify(card, null, 2)}\n`], { type: 'application/json' }));
  downloadUrls = [downloadModel.href, downloadCard.href];
  downloadModel.textContent = `model.onnx (${(model.byteLength / 1e6).toFixed(1)} MB)`;
  downloads.hidden = false;
}

async function classify(file: File): Promise<void> {
  if (busy !== undefined || taught === undefined || bundle === undefined) return;
  busy = 'classifying';
  updateButtons();
  clearMessages();
  predictions.dataset.state = 'running';
  predictions.replaceChildren();
  try {
    const image = await decodeImage(file, file.name);
    const logits = taught.mode === 'whole'
      ? await taught.trainer.logits(bundle.pixels([image]), bundle.imageSize)
      : await taught.trainer.logits(await bundle.features([image]), bundle.card.features);
    predictions.replaceChildren(...topK(logits, taught.labels, Math.min(5, taught.labels.length)).map((p) => {
      const li = Object.assign(document.createElement('li'), { textContent: `${p.label}: ${(100 * p.probability).toFixed(2)} %` });
      li.dataset.label = p.label;
      li.dataset.probability = String(p.probability);
      return li;
    }));
    predictions.dataset.state = 'done';
  } catch (err) {
    showError(`Could not classify: ${errorMessage(err)}`);
    predictions.dataset.state = 'error';
  } finally {
    busy = undefined;
    updateButtons();
  }
}

type ShapeClass = (typeof SHAPE_CLASSES)[number];
const isShape = (name: string): name is ShapeClass => (SHAPE_CLASSES as readonly string[]).includes(name);

/** The shape classes the sample button generates: three new ones, or the whole model's classes that are shapes. */
function sampleClasses(): ShapeClass[] {
  if (mode === 'head') return ['circle', 'triangle', 'star'];
  return (bundle?.card.wholeModel?.labels ?? []).filter(isShape);
}

function useSamples(): void {
  if (busy !== undefined || bundle === undefined) return;
  clearMessages();
  // Generated at most 64 pixels a side (the shapes' own detail); preprocessing scales them to the backbone's input.
  const size = Math.min(64, bundle.card.input.shape[1]);
  const picked = sampleClasses();
  const samples = sampleShapes(picked, 10, size);
  if (mode === 'whole') {
    setMode('whole');
    for (const c of classes) c.addImages(samples.get(c.name.value as ShapeClass) ?? []);
  } else {
    for (const c of classes) c.row.remove();
    classes.splice(0, classes.length);
    for (const [name, images] of samples) addClass(name, images);
  }
  setStatus('ready', `Sample shapes loaded: ${picked.length} classes of 10 images. Press Train.`);
}

async function start(): Promise<void> {
  configureRuntime();
  addClassButton.addEventListener('click', () => addClass(`class ${classes.length + 1}`));
  samplesButton.addEventListener('click', useSamples);
  trainButton.addEventListener('click', () => void train());
  stopButton.addEventListener('click', () => (stopRequested = true));
  classifyInput.addEventListener('change', () => {
    const file = classifyInput.files?.[0];
    if (file) void classify(file).finally(() => (classifyInput.value = ''));
  });
  addClass('class 1');
  addClass('class 2');
  const name = new URLSearchParams(location.search).get('bundle') ?? 'teach';
  if (!isPlainName(name)) {
    showError(`?bundle= must name a folder under models/, got '${name}'`);
    setStatus('error', 'No backbone.');
    return;
  }
  const base = `models/${name}/`;
  try {
    const provider = await chooseProvider();
    bundle = await TeachBundle.load(base, provider);
    // Only the browser tests reach into the page, and they ask for it.
    if (new URLSearchParams(location.search).get('test') === '1') installTestHooks(bundle, () => taught?.trainer, () => lastSet);
  } catch (err) {
    showError(`Could not load the Teach bundle at ${base}: ${errorMessage(err)}. Make one with \`deepvision export-teach BACKBONE.onnx --out web-demo/models/${name}\`.`);
    setStatus('error', 'No backbone.');
    updateButtons();
    return;
  }
  try {
    const c = bundle.card;
    const counts = bundle.classCounts;
    bundleInfo.textContent = `Backbone: ${c.backbone.file}, cut at '${c.backbone.cut}' (${c.features} features per ${c.input.shape[1]}×${c.input.shape[2]} image, frozen); `
      + `heads for ${Math.min(...counts)} to ${Math.max(...counts)} classes; ${bundle.provider.description}.`;
    if (c.wholeModel !== undefined) {
      modeBox.hidden = false;
      $<HTMLSpanElement>('whole-description').textContent = `${c.wholeModel.labels.length} classes, ${parameterCount(c.wholeModel).toLocaleString('en-US')} values`;
      for (const input of modeInputs) input.addEventListener('change', () => input.checked && setMode(input.value as Mode));
    }
    showDefaults();
  } catch (err) {
    // A card the checks let through but the page cannot use: say so rather than leave the page half set up.
    bundle = undefined;
    showError(`Could not use the Teach bundle at ${base}: ${errorMessage(err)}. Make it again with \`deepvision export-teach\`.`);
    setStatus('error', 'No backbone.');
    updateButtons();
    return;
  }
  setStatus('ready', 'Name your classes and add images to each (or use the sample shapes), then press Train.');
  updateButtons();
}

void start();
