/**
 * Issue 24 items 5 and 6, through the CLI as users meet them: command lines of a thousand image paths, output paths
 * whose folder is a file, file names that are not valid UTF-8, and output options that name one of the inputs.
 */
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFileAtomic, WriteError } from '../src/util/atomic-write';

const ROOT = path.resolve(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'deepvision.js');
const SAMPLE = path.join(ROOT, 'web-demo', 'samples', 'star.png');
let tmp: string;
/** An attention captioner's run folder, and a classifier exported for predict. */
let captioner: string;
let classifier: string;

interface Result { status: number | null; stdout: string; stderr: string }

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Result {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: tmp, encoding: 'utf8', timeout: 120000, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the CLI through sh, so that `printf` can put bytes that are not valid UTF-8 into its arguments. */
function shell(script: string): Result {
  const r = spawnSync('/bin/sh', ['-c', script], { cwd: tmp, encoding: 'utf8', timeout: 120000, env: { ...process.env, BIN } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A user error: exit 1 and exactly one `error:` line, no stack trace. */
function expectOneLineError(r: Result, pattern: RegExp): void {
  expect(r.stderr).not.toMatch(/^\s+at /m);
  const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('error:'));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(r.status).toBe(1);
}

const digest = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

beforeAll(() => {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('the CLI is not built: run `npm run build` (npm test does it first)');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-cli-paths-'));
  captioner = path.join(tmp, 'captioner');
  const trained = cli(['train', path.join(ROOT, 'graphs', 'captioner.ts'), '--variant', 'attention', '--data', 'shapes', '--image-size', '16', '--train-size', '128',
    '--val-size', '32', '--epochs', '1', '--set', 'embedding=8', '--set', 'hidden=16', '--set', 'attentionSize=8', '--max-length', '10', '--bleu-images', '8',
    '--out', captioner, '--no-progress', '--threads', '1']);
  if (trained.status !== 0) throw new Error(`training the captioner failed:\n${trained.stderr}`);
  const run = path.join(tmp, 'mlp-run');
  const mlp = cli(['train', path.join(ROOT, 'graphs', 'mlp.ts'), '--data', 'shapes', '--train-size', '96', '--val-size', '32', '--image-size', '8', '--batch-size', '32',
    '--epochs', '1', '--set', 'hidden=8', '--threads', '1', '--no-progress', '--out', run]);
  if (mlp.status !== 0) throw new Error(`training the classifier failed:\n${mlp.stderr}`);
  classifier = path.join(tmp, 'models', 'mlp');
  const exported = cli(['export', run, '--out', classifier]);
  if (exported.status !== 0) throw new Error(`export failed:\n${exported.stderr}`);
}, 120000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('long command lines', () => {
  // onnxruntime-node matches the whole /proc/self/cmdline with a recursive std::regex when it starts: about 28 KB of
  // arguments overflowed the stack (SIGSEGV, exit 139) before the first caption.
  test('caption with 1,000 image paths (about 90 KB of arguments) captions every image', () => {
    const dir = path.join(tmp, 'a folder with a long name, as photo collections have', 'and another one inside');
    fs.mkdirSync(dir, { recursive: true });
    const images = Array.from({ length: 1000 }, (_, i) => path.join(dir, `${String(i).padStart(4, '0')}.png`));
    for (const image of images) fs.symlinkSync(SAMPLE, image);
    expect(images.join(' ').length).toBeGreaterThan(80_000);
    const r = cli(['caption', captioner, ...images, '--beam', '1', '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { image: string; caption: string });
    expect(lines.map((l) => l.image)).toEqual(images);
    expect(new Set(lines.map((l) => l.caption)).size).toBe(1);
    // Also where the launcher would not re-run itself for the malloc tunables.
    const direct = cli(['caption', captioner, ...images.slice(0, 400), '--beam', '1'], { DEEPVISION_NO_TUNABLES: '1' });
    expect(direct.status).toBe(0);
    expect(direct.stdout.trim().split('\n')).toHaveLength(400);
  });
});

describe('an output path whose folder is a file', () => {
  test('writeFileAtomic reports it as a WriteError naming the file in the way, not the ENOTDIR of its clean-up', () => {
    const file = path.join(tmp, 'notes.txt');
    fs.writeFileSync(file, 'notes');
    expect(() => writeFileAtomic(path.join(file, 'x.onnx'), 'data')).toThrow(WriteError);
    expect(() => writeFileAtomic(path.join(file, 'x.onnx'), 'data')).toThrow(`cannot write ${path.join(file, 'x.onnx')}: ${file} is a file, not a folder`);
    expect(() => writeFileAtomic(path.join(file, 'sub', 'x.onnx'), 'data')).toThrow(`${file} is a file, not a folder`);
    expect(fs.readFileSync(file, 'utf8')).toBe('notes');
  });

  test('build, plot, eval --gallery, caption --attention-map and export --out: one error line each', () => {
    fs.writeFileSync(path.join(tmp, 'README.md'), 'readme');
    const mlp = path.join(ROOT, 'graphs', 'mlp.ts');
    const cases: string[][] = [
      ['build', mlp, '--out', 'README.md/x.onnx', '-q'],
      ['build', mlp, '--train', '--out', 'README.md/run'],
      ['plot', path.join(captioner, 'metrics.jsonl'), '--out', 'README.md/curves'],
      ['eval', path.join(captioner, 'best.safetensors'), '--val-size', '8', '--gallery', 'README.md/gallery.png'],
      ['caption', captioner, SAMPLE, '--attention-map', 'README.md/sub/map.png'],
      ['export', captioner, '--out', 'README.md/captioner'],
    ];
    for (const args of cases) expectOneLineError(cli(args), /cannot write README\.md\/.*README\.md is a file, not a folder/);
    expect(fs.readFileSync(path.join(tmp, 'README.md'), 'utf8')).toBe('readme');
  });
});

describe('file names that are not valid UTF-8', () => {
  test('predict and caption find the file a Latin-1 name names, and refuse a name two files share', () => {
    fs.mkdirSync(path.join(tmp, 'latin1'));
    // café.png and a folder d\xff holding été.png, their names in Latin-1 bytes.
    fs.copyFileSync(SAMPLE, Buffer.from(path.join(tmp, 'latin1', 'caf\xe9.png'), 'latin1'));
    fs.mkdirSync(Buffer.from(path.join(tmp, 'latin1', 'd\xff'), 'latin1'));
    fs.copyFileSync(SAMPLE, Buffer.from(path.join(tmp, 'latin1', 'd\xff', '\xe9t\xe9.png'), 'latin1'));
    const predicted = shell(`node "$BIN" predict ${classifier} "latin1/$(printf 'caf\\351.png')" "$PWD/latin1/$(printf 'd\\377/\\351t\\351.png')" --json`);
    expect(predicted.stderr).toBe('');
    expect(predicted.status).toBe(0);
    const results = predicted.stdout.trim().split('\n').map((l) => JSON.parse(l) as { image: string; predictions: unknown[] });
    expect(results.map((r) => r.image)).toEqual(['latin1/caf\ufffd.png', `${tmp}/latin1/d\ufffd/\ufffdt\ufffd.png`]);
    for (const r of results) expect(r.predictions.length).toBeGreaterThan(0);
    const captioned = shell(`cd latin1 && node "$BIN" caption ${captioner} "$(printf 'caf\\351.png')" --beam 1`);
    expect(captioned.stderr).toBe('');
    expect(captioned.stdout).toMatch(/^caf\ufffd\.png: \S+/);
    // café.png and cafè.png both read as caf\ufffd.png: which one was meant cannot be known.
    fs.copyFileSync(SAMPLE, Buffer.from(path.join(tmp, 'latin1', 'caf\xe8.png'), 'latin1'));
    expectOneLineError(shell(`cd latin1 && node "$BIN" caption ${captioner} "$(printf 'caf\\351.png')"`), /caf\ufffd\.png: 2 files in \. have names that read like this one .*"caf\\xe8\.png", "caf\\xe9\.png"/);
    // A name that matches nothing is still reported as missing.
    expectOneLineError(shell(`node "$BIN" predict ${classifier} "$(printf 'nothing\\351.png')"`), /nothing\ufffd\.png does not exist/);
  });
});

describe('an output never overwrites an input', () => {
  test('caption --attention-map naming an input image, itself or through a symbolic or hard link, is refused before any work', () => {
    const dir = path.join(tmp, 'inputs');
    fs.mkdirSync(dir);
    const image = path.join(dir, 's.png');
    fs.copyFileSync(SAMPLE, image);
    fs.symlinkSync(image, path.join(dir, 'link.png'));
    fs.linkSync(image, path.join(dir, 'hard.png'));
    const before = digest(image);
    expectOneLineError(cli(['caption', captioner, image, '--attention-map', image]), /--attention-map would write .*s\.png, which is the input image .*s\.png; deepvision never writes over its inputs/);
    expectOneLineError(cli(['caption', captioner, image, '--attention-map', path.join(dir, 'link.png')]), /which is the input image .*s\.png \(the same file\)/);
    expectOneLineError(cli(['caption', captioner, image, '--attention-map', path.join(dir, 'hard.png')]), /which is the input image .*s\.png \(the same file\)/);
    // Several images: the map of a.png is named x-a.png, which is the second input.
    fs.copyFileSync(SAMPLE, path.join(dir, 'a.png'));
    fs.copyFileSync(SAMPLE, path.join(dir, 'x-a.png'));
    expectOneLineError(cli(['caption', captioner, path.join(dir, 'a.png'), path.join(dir, 'x-a.png'), '--attention-map', path.join(dir, 'x.png')]), /would write .*x-a\.png, which is the input image/);
    expect(digest(image)).toBe(before);
    expect(fs.lstatSync(path.join(dir, 'link.png')).isSymbolicLink()).toBe(true);
    expect(digest(path.join(dir, 'x-a.png'))).toBe(before);
    // A map beside the image, not on it, is written.
    const map = cli(['caption', captioner, image, '--attention-map', path.join(dir, 'map.png')]);
    expect(map.status).toBe(0);
    expect(fs.existsSync(path.join(dir, 'map.png'))).toBe(true);
  });

  test('build --out the graph file, export --out the run folder, eval --gallery the checkpoint, export-teach --out around its backbone: refused', () => {
    const graph = path.join(tmp, 'net.ts');
    fs.copyFileSync(path.join(ROOT, 'graphs', 'mlp.ts'), graph);
    const source = fs.readFileSync(graph, 'utf8');
    expectOneLineError(cli(['build', graph, '--out', graph, '-q']), /--out would write .*net\.ts, which is the graph file/);
    fs.linkSync(graph, path.join(tmp, 'net-link.onnx'));
    expectOneLineError(cli(['build', graph, '--out', 'net-link.onnx', '-q']), /--out would write net-link\.onnx, which is the graph file .*net\.ts \(the same file\)/);
    expect(fs.readFileSync(graph, 'utf8')).toBe(source);
    expectOneLineError(cli(['export', captioner, '--out', captioner]), /--out would write .*captioner, which is the training run folder/);
    expect(fs.existsSync(path.join(captioner, 'model.json'))).toBe(false);
    const checkpoint = path.join(captioner, 'best.safetensors');
    const before = digest(checkpoint);
    fs.symlinkSync(checkpoint, path.join(tmp, 'gallery.png'));
    expectOneLineError(cli(['eval', checkpoint, '--gallery', 'gallery.png']), /--gallery would write gallery\.png, which is the checkpoint .*best\.safetensors \(the same file\)/);
    expect(digest(checkpoint)).toBe(before);
    const bundle = path.join(tmp, 'bundle');
    fs.mkdirSync(bundle);
    fs.copyFileSync(path.join(tmp, 'mlp-run', 'inference_model.onnx'), path.join(bundle, 'backbone.onnx'));
    expectOneLineError(cli(['export-teach', path.join(bundle, 'backbone.onnx'), '--out', bundle]), /--out .*bundle would replace the folder that holds the backbone .*backbone\.onnx/);
    expect(fs.existsSync(path.join(bundle, 'backbone.onnx'))).toBe(true);
  });
});
