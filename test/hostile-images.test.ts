/**
 * Hostile inputs to the image readers: decompression bombs (an SVG or PNG that declares gigapixels), formats that are
 * not raster images, broken files, names that are not valid UTF-8, symbolic links out of a data folder, bad numbers
 * on predict's command line and a model.json that points outside its folder. Files come from test/adversarial/images.ts.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as F from '../src/dsl/functional';
import { GraphBuilder } from '../src/dsl/builder';
import { decodeImage, ImageDecodeError, maxPixelsFromEnvironment } from '../src/data/decode-image';
import { loadImageSet } from '../src/data/load-image-set';
import { readAllPixels } from '../src/data/dataset';
import { loadData } from '../src/data/registry';
import type { ModelCard } from '../src/portable/model-card';
import { TensorData } from '../src/ir/tensor';
import { encodeModel } from '../src/onnx/write';
import { predictCommand } from '../src/cli/commands/predict';
import { Predictor } from '../src/runtime/predictor';
import { COLOURS, garbage, hostileFolder, pdfLike, pngDeclaring, REFUSED, solid, svgBomb, truncatedJpeg } from './adversarial/images';

const ROOT = path.resolve(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'deepvision.js');
let tmp: string;

function cli(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: tmp, encoding: 'utf8', timeout: 60000, env: { ...process.env, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** stderr as lines; a user error is exactly one `error:` line, never a stack trace. */
function errorLines(stderr: string): string[] {
  expect(stderr).not.toMatch(/^\s+at /m);
  return stderr.trim().split('\n');
}

/** A three-class model on 4x4 RGB input (flatten + linear) and its model.json, written to `dir`. */
function writeModel(dir: string, file = 'model.onnx'): void {
  fs.mkdirSync(dir, { recursive: true });
  const b = new GraphBuilder('tiny', 'eval');
  const x = b.input('input', 'float32', ['batch', 3, 4, 4]);
  const weights = Float32Array.from({ length: 3 * 48 }, (_, i) => ((i * 37) % 11) / 11 - 0.5);
  const logits = b.run(() => F.linear(F.flatten(x), b.initializer('fc.weight', TensorData.float32([3, 48], weights)), b.initializer('fc.bias', TensorData.float32([3], new Float32Array(3)))));
  b.output('logits', logits);
  const bytes = encodeModel(b.toModel());
  fs.writeFileSync(path.join(dir, 'model.onnx'), bytes);
  const card: ModelCard = {
    format: 'deepvision-model-card', version: 1, name: 'tiny', file,
    input: { name: 'input', shape: [3, 4, 4], preprocessing: { resizeShorterSide: 4, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] } },
    output: { name: 'logits', kind: 'logits' }, labels: ['red', 'green', 'blue'], training: { dataset: 'none' },
    precision: 'float32', parameters: 147, bytes: bytes.length, producer: 'hostile-images.test.ts', exportedAt: '2026-01-01T00:00:00.000Z',
  };
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(card));
}

let modelDir: string;
let good: string;
beforeAll(async () => {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('the CLI is not built: run `npm run build` (npm test does it first)');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-hostile-'));
  modelDir = path.join(tmp, 'model');
  writeModel(modelDir);
  good = path.join(tmp, 'good.png');
  fs.writeFileSync(good, await solid(8, 8, [250, 10, 10]));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('decodeImage: raster formats only, and a pixel limit checked from the header', () => {
  test.each([
    ['an SVG named .jpg declaring 16000x16000', () => svgBomb(), /is an SVG image .*not accepted: only raster images \(JPEG, PNG, WebP, GIF, TIFF, AVIF\)/],
    ['a PDF', () => pdfLike(), /is a PDF document, which is not accepted/],
    ['garbage', () => garbage(), /is not a readable image \(not a JPEG, PNG, WebP, GIF, TIFF or AVIF file\)/],
    ['a zero-byte file', () => Buffer.alloc(0), /is an empty file/],
    ['a PNG header declaring 100000x100000', () => pngDeclaring(100_000, 100_000), /is 100000x100000 \(10,000,000,000 pixels\), over the limit of 50,000,000 pixels/],
  ])('%s is refused with a reason, from its file and from its bytes', async (_, make, reason) => {
    const file = path.join(tmp, 'case.jpg');
    fs.writeFileSync(file, make());
    await expect(decodeImage(file)).rejects.toThrow(reason);
    await expect(decodeImage(file)).rejects.toBeInstanceOf(ImageDecodeError);
    await expect(decodeImage(make(), { label: 'bytes.png' })).rejects.toThrow(reason);
  });

  test('a truncated JPEG is unreadable; a missing file says so', async () => {
    await expect(decodeImage(await truncatedJpeg(), { label: 't.jpg' })).rejects.toThrow(/^t\.jpg is not a readable image \(/);
    await expect(decodeImage(path.join(tmp, 'nope.png'))).rejects.toThrow(/nope\.png does not exist/);
  });

  test('a real PNG over the limit is refused from its header; at the limit it decodes', async () => {
    const png = await solid(300, 200, [1, 2, 3]);
    await expect(decodeImage(png, { maxPixels: 59_999 })).rejects.toThrow(/is 300x200 \(60,000 pixels\), over the limit of 59,999 pixels/);
    expect((await decodeImage(png, { maxPixels: 60_000 })).width).toBe(300);
  });

  test('DEEPVISION_MAX_PIXELS sets the default limit; a malformed value is an error', () => {
    expect(maxPixelsFromEnvironment({})).toBe(50_000_000);
    expect(maxPixelsFromEnvironment({ DEEPVISION_MAX_PIXELS: '1000' })).toBe(1000);
    for (const bad of ['abc', '-3', '1.5', '0']) expect(() => maxPixelsFromEnvironment({ DEEPVISION_MAX_PIXELS: bad })).toThrow(/DEEPVISION_MAX_PIXELS must be a positive whole number/);
  });
});

describe('training folders: hostile files are skipped and reported, never fatal', () => {
  test('refused and broken images, a name that is not UTF-8, links inside and outside the folder', async () => {
    const root = path.join(tmp, 'data');
    await hostileFolder(root, path.join(tmp, 'outside'));
    const notices: string[] = [];
    const { train, val } = await loadData(root, { imageSize: 8, cacheDir: path.join(tmp, 'cache'), valFraction: 0.4, onNotice: (m) => notices.push(m) });
    expect(train.classNames).toEqual(['cats', 'dogs']);
    // Read: cat.png, the non-UTF-8 name, linked.png (cats); dog.png, more/teal.png (dogs).
    const images = [train, val].flatMap((set) => Array.from({ length: set.count }, (_, n) => {
      const plane = 64;
      const pixels = readAllPixels(set);
      return { label: set.labels[n]!, rgb: [0, 1, 2].map((c) => pixels[n * 3 * plane + c * plane + 36]!) };
    }));
    expect(images).toHaveLength(5);
    const labelOf = (rgb: number[]) => images.find((i) => i.rgb.every((v, c) => Math.abs(v - rgb[c]!) <= 1))?.label;
    expect([COLOURS.cat, COLOURS.catNonUtf8, COLOURS.catLinked, COLOURS.dog, COLOURS.dogLinkedFolder].map(labelOf)).toEqual([0, 0, 0, 1, 1]);
    expect(labelOf(COLOURS.outside)).toBeUndefined();

    const line = (re: RegExp) => notices.filter((n) => re.test(n));
    const skipped = line(/^skipped \d+ unreadable images/);
    expect(skipped).toHaveLength(1);
    expect(skipped[0]).toMatch(new RegExp(`^skipped ${REFUSED.length} unreadable images \\(`));
    expect(skipped[0]).toMatch(/bomb\.jpg is an SVG image/);
    expect(line(/symbolic links? that points? outside the data folder/)).toEqual([
      expect.stringMatching(/^skipped 2 symbolic links that point outside the data folder \(cats\/outside\.png -> .*magenta\.png; dogs\/away -> /),
    ]);
    expect(line(/loops? back/)).toEqual(['skipped 1 symbolic link that loops back to a folder containing it (dogs/loop)']);
    expect(line(/not valid UTF-8/)).toEqual([expect.stringMatching(/^skipped 1 folder whose name is not valid UTF-8 \(folder names become class labels\) \(\uFFFD-class\)$/)]);
    expect(notices).toHaveLength(4);

    // From the cache: the same images and the same notices.
    const again: string[] = [];
    const cached = await loadImageSet(root, { imageSize: 8, cacheDir: path.join(tmp, 'cache'), valFraction: 0.4, onSkipped: (m) => again.push(m) });
    expect(cached.fromCache).toBe(true);
    expect(again).toEqual(notices);
  });

  test('a lowered DEEPVISION_MAX_PIXELS skips the larger images, and is part of the cache key', async () => {
    const root = path.join(tmp, 'sizes');
    for (const c of ['a', 'b']) fs.mkdirSync(path.join(root, c), { recursive: true });
    fs.writeFileSync(path.join(root, 'a', 'small.png'), await solid(10, 10, [9, 9, 9]));
    fs.writeFileSync(path.join(root, 'a', 'large.png'), await solid(100, 100, [9, 9, 9]));
    fs.writeFileSync(path.join(root, 'b', 'small.png'), await solid(10, 10, [9, 9, 9]));
    const notices: string[] = [];
    const cacheDir = path.join(tmp, 'cache-sizes');
    process.env.DEEPVISION_MAX_PIXELS = '1000';
    try {
      const limited = await loadData(root, { imageSize: 4, cacheDir, valFraction: 0.5, onNotice: (m) => notices.push(m) });
      expect(limited.train.count + limited.val.count).toBe(2);
    } finally {
      delete process.env.DEEPVISION_MAX_PIXELS;
    }
    expect(notices).toEqual(['skipped 1 unreadable image (large.png is 100x100 (10,000 pixels), over the limit of 1,000 pixels (DEEPVISION_MAX_PIXELS raises it))']);
    const all = await loadImageSet(root, { imageSize: 4, cacheDir, valFraction: 0.5 });
    expect(all.fromCache).toBe(false);
    expect(all.train.count + all.val.count).toBe(3);
  });

  test('Tiny ImageNet: annotations naming files outside val/images or missing files are skipped with a count', async () => {
    const root = path.join(tmp, 'tiny');
    fs.mkdirSync(path.join(root, 'val', 'images'), { recursive: true });
    fs.writeFileSync(path.join(root, 'wnids.txt'), 'n1\nn2\n');
    for (const w of ['n1', 'n2']) {
      fs.mkdirSync(path.join(root, 'train', w, 'images'), { recursive: true });
      fs.writeFileSync(path.join(root, 'train', w, 'images', `${w}_0.JPEG`), await solid(8, 8, [1, 1, 1], 'jpeg'));
    }
    fs.writeFileSync(path.join(root, 'val', 'images', 'val_0.JPEG'), await solid(8, 8, [1, 1, 1], 'jpeg'));
    fs.writeFileSync(path.join(root, 'val', 'val_annotations.txt'), 'val_0.JPEG\tn1\n../../wnids.txt\tn2\nval_9.JPEG\tn2\n');
    const notices: string[] = [];
    const { val } = await loadImageSet(root, { imageSize: 8, cacheDir: path.join(tmp, 'cache'), onSkipped: (m) => notices.push(m) });
    expect(val.count).toBe(1);
    expect(notices).toEqual([
      'skipped 1 val_annotations.txt entry that is not a plain file name (../../wnids.txt)',
      'skipped 1 image that val_annotations.txt lists but that does not exist (val/images/val_9.JPEG)',
    ]);
  });
});

describe('deepvision predict on hostile input', () => {
  /** predict's option parsing in this process (a CLI start costs ~0.7 s): commander's error, as the CLI prints it. */
  async function parseError(...args: string[]): Promise<string> {
    let printed = '';
    const command = predictCommand().exitOverride().configureOutput({ writeErr: (text) => { printed += text; }, writeOut: () => undefined });
    command.action(() => undefined);
    await expect(command.parseAsync(args, { from: 'user' })).rejects.toThrow();
    return printed.trim();
  }

  test('an SVG named .jpg, a zero-byte and a truncated image: exit 1, one error line each, the good image still classified', async () => {
    const bomb = path.join(tmp, 'bomb.jpg');
    fs.writeFileSync(bomb, svgBomb());
    const empty = path.join(tmp, 'empty.png');
    fs.writeFileSync(empty, Buffer.alloc(0));
    const truncated = path.join(tmp, 'truncated.jpg');
    fs.writeFileSync(truncated, await truncatedJpeg());
    const r = cli(['predict', modelDir, bomb, empty, good, truncated]);
    expect(r.status).toBe(1);
    const lines = errorLines(r.stderr);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe(`error: ${bomb} is an SVG image (or other XML/HTML text), which is not accepted: only raster images (JPEG, PNG, WebP, GIF, TIFF, AVIF)`);
    expect(lines[1]).toBe(`error: ${empty} is an empty file`);
    expect(lines[2]).toMatch(/^error: .*truncated\.jpg is not a readable image \(/);
    expect(r.stdout).toContain('good.png');
  });

  test('a real PNG over DEEPVISION_MAX_PIXELS is refused; --max-pixels overrides the variable; -k 2 shows two classes', async () => {
    const big = path.join(tmp, 'big.png');
    fs.writeFileSync(big, await solid(300, 300, [10, 250, 10]));
    const refused = cli(['predict', modelDir, big], { DEEPVISION_MAX_PIXELS: '10000' });
    expect(refused.status).toBe(1);
    expect(errorLines(refused.stderr)).toEqual([`error: ${big} is 300x300 (90,000 pixels), over the limit of 10,000 pixels (DEEPVISION_MAX_PIXELS raises it)`]);
    const allowed = cli(['predict', modelDir, big, '--max-pixels', '90000', '-k', '2', '--json'], { DEEPVISION_MAX_PIXELS: '10000' });
    expect(allowed.stderr).toBe('');
    expect((JSON.parse(allowed.stdout) as { predictions: unknown[] }).predictions).toHaveLength(2);
    const badVariable = cli(['predict', modelDir, good], { DEEPVISION_MAX_PIXELS: 'lots' });
    expect(badVariable.status).toBe(1);
    expect(errorLines(badVariable.stderr)).toEqual(["error: DEEPVISION_MAX_PIXELS must be a positive whole number of pixels, got 'lots'"]);
    expect(predictCommand().helpInformation()).toMatch(/--max-pixels <n>[\s\S]*DEEPVISION_MAX_PIXELS/);
  });

  test('-k abc is refused by the CLI with one error line and exit 1', () => {
    const r = cli(['predict', modelDir, good, '-k', 'abc']);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(errorLines(r.stderr)).toEqual(["error: option '-k, --top <k>' argument 'abc' is invalid. expected a positive integer."]);
  });

  test.each([['-3'], ['1.5'], ['0'], [''], ['1e999']])('-k %j is refused', async (k) => {
    expect(await parseError(modelDir, good, '-k', k)).toBe(`error: option '-k, --top <k>' argument '${k}' is invalid. expected a positive integer.`);
  });

  test('--max-pixels takes positive integers only', async () => {
    expect(await parseError(modelDir, good, '--max-pixels', '2.5')).toBe("error: option '--max-pixels <n>' argument '2.5' is invalid. expected a positive integer.");
  });
});

describe("model.json's file must stay inside the model folder", () => {
  test.each([
    ['../x.onnx', /'file' must name a file inside the model folder, but '\.\.\/x\.onnx' leads out of it/],
    ['/etc/passwd', /'file' must name a file inside the model folder, but '\/etc\/passwd' is an absolute path/],
    ['sub/../../model/model.onnx', /leads out of it/],
    ['link.onnx', /'file' must name a file inside the model folder, but 'link\.onnx' is a link to .*outside\.onnx, outside it/],
  ])('file %j is refused (by predict too: one error line naming model.json)', async (file, message) => {
    const dir = path.join(tmp, `card-${file.replace(/\W/g, '_')}`);
    writeModel(dir, file);
    fs.copyFileSync(path.join(dir, 'model.onnx'), path.join(tmp, 'outside.onnx'));
    if (file === 'link.onnx') fs.symlinkSync(path.join(tmp, 'outside.onnx'), path.join(dir, 'link.onnx'));
    await expect(Predictor.load(dir)).rejects.toThrow(message);
    await expect(Predictor.load(dir)).rejects.toThrow(path.join(dir, 'model.json'));
    if (file !== '../x.onnx') return;
    const r = cli(['predict', dir, good]);
    expect(r.status).toBe(1);
    expect(errorLines(r.stderr)).toEqual([expect.stringMatching(message)]);
  });

  test('a file in a sub-folder, or a link that stays inside, is fine', async () => {
    const dir = path.join(tmp, 'card-inside');
    writeModel(dir, 'onnx/model.onnx');
    fs.mkdirSync(path.join(dir, 'onnx'));
    fs.renameSync(path.join(dir, 'model.onnx'), path.join(dir, 'onnx', 'model.onnx'));
    const predictor = await Predictor.load(dir);
    expect(await predictor.classify(await decodeImage(good), 1)).toHaveLength(1);
    await predictor.release();
    const linked = path.join(tmp, 'card-linked');
    writeModel(linked, 'current.onnx');
    fs.symlinkSync('model.onnx', path.join(linked, 'current.onnx'));
    await (await Predictor.load(linked)).release();
  });
});
