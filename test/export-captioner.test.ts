/**
 * Exporting a captioner for the page: encoder.onnx, step.onnx and a card with the vocabulary and the search; the
 * models index marks it; `deepvision caption` reads the exported folder as it reads the run; broken folders give one
 * error line.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CaptionerCard } from '../src/portable/captioner-card';
import { captionerCardProblems } from '../src/portable/captioner-card';
import { exportCaptioner } from '../src/export/export-captioner';
import { listModels } from '../src/export/model-index';
import { readSafetensors } from '../src/io/safetensors';
import { UserError } from '../src/util/user-error';
import { trainAndExportCaptioner } from './support/exported-captioner';
import { cli } from './support/exported-model';
import { onnxCheck } from './support/onnx-checker';

const SAMPLES = path.resolve(__dirname, '..', 'web-demo', 'samples');
const images = ['star.png', 'circle.png', 'square.png'].map((f) => path.join(SAMPLES, f));

let tmp: string;
let modelsDir: string;
let trained: { runDir: string; modelDir: string };

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-export-captioner-'));
  modelsDir = path.join(tmp, 'models');
  trained = trainAndExportCaptioner(tmp, modelsDir);
});

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

interface Printed { image: string; caption: string; candidates: { caption: string; logProb: number }[] }

function caption(dir: string, ...args: string[]): Printed[] {
  const r = cli(tmp, 'caption', dir, ...images, '--json', ...args);
  if (r.status !== 0 || r.stderr !== '') throw new Error(`caption ${dir} failed:\n${r.stderr}`);
  return r.stdout.trim().split('\n').map((line) => JSON.parse(line) as Printed);
}

function expectSameCaptions(a: Printed[], b: Printed[]): void {
  expect(a.map((p) => p.candidates.map((c) => c.caption))).toEqual(b.map((p) => p.candidates.map((c) => c.caption)));
  a.forEach((p, i) => p.candidates.forEach((c, j) => expect(Math.abs(c.logProb - b[i]!.candidates[j]!.logProb)).toBeLessThan(1e-4)));
}

/** A copy of the exported folder with its card edited (or a file replaced), for the error cases. */
function broken(name: string, edit: (card: Record<string, unknown>, dir: string) => void): string {
  const dir = path.join(tmp, 'broken', name);
  fs.mkdirSync(dir, { recursive: true });
  for (const f of fs.readdirSync(trained.modelDir)) fs.copyFileSync(path.join(trained.modelDir, f), path.join(dir, f));
  const card = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8')) as Record<string, unknown>;
  edit(card, dir);
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(card));
  return dir;
}

function captionError(dir: string): string {
  const r = cli(tmp, 'caption', dir, images[0]!);
  expect(r.status).toBe(1);
  expect(r.stdout).toBe('');
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  return r.stderr;
}

test('the exported folder: encoder.onnx, step.onnx (valid ONNX) and a card with the vocabulary, preprocessing and search', () => {
  expect(fs.readdirSync(trained.modelDir).sort()).toEqual(['encoder.onnx', 'model.json', 'step.onnx']);
  const card = JSON.parse(fs.readFileSync(path.join(trained.modelDir, 'model.json'), 'utf8')) as CaptionerCard;
  expect(captionerCardProblems(card)).toEqual([]);
  const meta = readSafetensors(path.join(trained.runDir, 'best.safetensors')).metadata;
  const config = JSON.parse(meta['deepvision.config']!) as { maxLength: number };
  expect(card).toMatchObject({
    task: 'captioning', name: 'captioner', files: { encoder: 'encoder.onnx', step: 'step.onnx' },
    input: { name: 'input', shape: [3, 16, 16], preprocessing: { resizeShorterSide: 16, ...JSON.parse(meta['deepvision.normalization']!) } },
    vocabulary: JSON.parse(meta['deepvision.vocabulary']!),
    generation: { maxLength: config.maxLength - 1, beam: 3, lengthPenalty: 0.7 },
    training: { dataset: 'shapes', validation: { epoch: 3 } },
    precision: 'float32',
  });
  expect(card.training.validation!.bleu).toHaveLength(4);
  const bytes = ['encoder.onnx', 'step.onnx'].reduce((n, f) => n + fs.statSync(path.join(trained.modelDir, f)).size, 0);
  expect(card.bytes).toBe(bytes);
  const { ok, report } = onnxCheck(['encoder.onnx', 'step.onnx'].map((f) => path.join(trained.modelDir, f)));
  expect(report).not.toMatch(/FAIL/);
  expect(ok).toBe(true);
});

test('the models index marks the captioner, so that the page lists it apart from the classifiers', () => {
  const index = JSON.parse(fs.readFileSync(path.join(modelsDir, 'index.json'), 'utf8')) as { models: unknown[] };
  expect(index.models).toEqual([{ id: 'captioner', name: 'captioner', dataset: 'shapes', task: 'captioning' }]);
  // A classifier's card beside it keeps the entry it always had (no task).
  fs.mkdirSync(path.join(modelsDir, 'small'));
  fs.writeFileSync(path.join(modelsDir, 'small', 'model.json'), JSON.stringify({ name: 'small', training: { dataset: 'shapes', validation: { top1: 0.5 } } }));
  try {
    expect(listModels(modelsDir)).toEqual([
      { id: 'captioner', name: 'captioner', dataset: 'shapes', task: 'captioning' },
      { id: 'small', name: 'small', dataset: 'shapes', top1: 0.5 },
    ]);
  } finally {
    fs.rmSync(path.join(modelsDir, 'small'), { recursive: true });
  }
});

test('deepvision caption on the exported folder writes the run\'s captions (beam 3 and greedy)', () => {
  const fromRun = caption(trained.runDir);
  expect(fromRun[0]!.caption).toMatch(/^[a-z]+( [a-z]+)+$/);
  expectSameCaptions(caption(trained.modelDir), fromRun);
  expectSameCaptions(caption(trained.modelDir, '--beam', '1'), caption(trained.runDir, '--beam', '1'));
});

test('a run without encoder_model.onnx and step_model.onnx exports from the bundled graph, with the same captions', () => {
  const run = path.join(tmp, 'graphless-run');
  fs.mkdirSync(run);
  fs.copyFileSync(path.join(trained.runDir, 'best.safetensors'), path.join(run, 'best.safetensors'));
  const out = path.join(tmp, 'graphless-models', 'captioner');
  const r = cli(tmp, 'export', run, '--out', out, '--beam', '2');
  expect(r.stderr).toBe('');
  // One batch normalization per convolution block of the small encoder (four).
  expect(r.stdout).toMatch(/^Exported captioner captioner: [\d,]+ parameters, [\d.]+ MB \(float32\), \d+ tokens, captions of up to 20 words, input \[3,16,16\], beam 2\n {2}folded 4 batch normalizations/);
  expect((JSON.parse(fs.readFileSync(path.join(out, 'model.json'), 'utf8')) as CaptionerCard).generation.beam).toBe(2);
  expectSameCaptions(caption(out, '--beam', '3'), caption(trained.modelDir));
  // Without --beam, caption searches as the card says (beam 2 here), as the page does.
  expect(caption(out).every((p) => p.candidates.length <= 2)).toBe(true);
});

test('--fp16 halves the weights; the captioner still loads and captions', () => {
  const out = path.join(tmp, 'half-models', 'captioner');
  const r = cli(tmp, 'export', trained.runDir, '--out', out, '--fp16');
  expect(r.stderr).toBe('');
  const card = JSON.parse(fs.readFileSync(path.join(out, 'model.json'), 'utf8')) as CaptionerCard;
  const full = JSON.parse(fs.readFileSync(path.join(trained.modelDir, 'model.json'), 'utf8')) as CaptionerCard;
  expect(card.precision).toBe('float16-weights');
  expect(card.bytes).toBeLessThan(full.bytes * 0.75);
  expect(caption(out)[0]!.caption).toMatch(/^[a-z]+( [a-z]+)*$/);
});

test('a failed write leaves nothing behind: no folder, no index', async () => {
  const base = path.join(tmp, 'full-disk');
  fs.mkdirSync(base);
  const write = (file: string) => {
    if (path.basename(file) === 'step.onnx') throw Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' });
    fs.writeFileSync(file, '');
  };
  const err = await exportCaptioner(trained.runDir, path.join(base, 'models', 'captioner'), { writeFile: write }).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(UserError);
  expect((err as Error).message).toBe(`no space left on device writing ${path.join(base, 'models', 'captioner', 'step.onnx')}`);
  expect(fs.readdirSync(base)).toEqual([]);
});

describe('broken exported folders: one error line', () => {
  test('a card without vocabulary', () => {
    expect(captionError(broken('no-vocabulary', (card) => delete card.vocabulary))).toMatch(/^error: .*model\.json: 'vocabulary' is missing/);
  });

  test('a vocabulary of another size than the step model scores', () => {
    const dir = broken('other-vocabulary', (card) => {
      const v = card.vocabulary as { tokens: string[] };
      v.tokens.push('zebra');
    });
    expect(captionError(dir)).toMatch(/^error: .*: the captioner's step model scores \d+ tokens, but its vocabulary has \d+$/m);
  });

  test('a step model that is not one (the encoder copied over it)', () => {
    const dir = broken('swapped', (_, d) => fs.copyFileSync(path.join(d, 'encoder.onnx'), path.join(d, 'step.onnx')));
    expect(captionError(dir)).toMatch(/^error: .*the captioner's step model has no input `token`/);
  });

  test('a missing model file, and a file name with a folder in it', () => {
    expect(captionError(broken('missing', (_, d) => fs.rmSync(path.join(d, 'step.onnx'))))).toMatch(/^error: .*step\.onnx is missing \(.*model\.json names it\)/);
    expect(captionError(broken('escape', (card) => (card.files = { encoder: 'encoder.onnx', step: '../step.onnx' })))).toMatch(/'files\.step' must be a plain file name/);
  });

  test('an input of another name, or not a square resized to its side (the card check the page shares)', () => {
    const input = (edit: (i: { name: string; shape: number[]; preprocessing: { resizeShorterSide: number } }) => void) => (card: Record<string, unknown>) => edit(card.input as never);
    expect(captionError(broken('input-name', input((i) => (i.name = 'image'))))).toMatch(/^error: .*model\.json: 'input\.name' must be 'input'/);
    expect(captionError(broken('not-square', input((i) => (i.shape = [3, 16, 20]))))).toMatch(/^error: .*model\.json: a captioner's input is a square image resized to its side, not \[3,16,20\] from 16 pixels$/m);
    expect(captionError(broken('other-resize', input((i) => (i.preprocessing.resizeShorterSide = 20))))).toMatch(/a captioner's input is a square image resized to its side, not \[3,16,16\] from 20 pixels$/m);
  });

  test('preprocessing that is not numbers: a mean of strings, an infinite std, a resize side as text (issue 24 item 4)', () => {
    const card = JSON.parse(fs.readFileSync(path.join(trained.modelDir, 'model.json'), 'utf8')) as CaptionerCard;
    const edited = (edit: (p: Record<string, unknown>) => void): string[] => {
      const copy = JSON.parse(JSON.stringify(card)) as CaptionerCard;
      edit(copy.input.preprocessing as unknown as Record<string, unknown>);
      return captionerCardProblems(copy);
    };
    expect(edited((p) => (p.mean = ['0.5', 0.5, 0.5]))).toEqual(["'input.preprocessing.mean' needs 3 finite numbers"]);
    expect(edited((p) => (p.mean = [0.5, null, 0.5]))).toEqual(["'input.preprocessing.mean' needs 3 finite numbers"]);
    expect(edited((p) => (p.mean = [0.5, 0.5]))).toEqual(["'input.preprocessing.mean' needs 3 finite numbers"]);
    expect(edited((p) => (p.std = [1, 1e400, 1]))).toEqual(["'input.preprocessing.std' needs 3 positive finite numbers"]);
    expect(edited((p) => (p.std = [1, '1', 1]))).toEqual(["'input.preprocessing.std' needs 3 positive finite numbers"]);
    expect(edited((p) => (p.resizeShorterSide = '16'))).toEqual(expect.arrayContaining(["'input.preprocessing.resizeShorterSide' must be a positive integer"]));
    // It used to print an empty caption and exit 0.
    const dir = broken('mean-text', (c) => ((c.input as CaptionerCard['input']).preprocessing.mean = ['a', 'b', 'c'] as never));
    expect(captionError(dir)).toMatch(/^error: .*model\.json: 'input\.preprocessing\.mean' needs 3 finite numbers$/m);
  });

  test('predict on a captioner says to caption it', () => {
    const r = cli(tmp, 'predict', trained.modelDir, images[0]!);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error: .*model\.json: it is a captioner's card \(task 'captioning'\): caption images with `deepvision caption`\n$/);
  });
});
