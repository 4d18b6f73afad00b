/**
 * Issue 12's adversarial cases for the training side, reproduced through the CLI as users meet them: a checkpoint
 * that names code to run, resuming into another folder, a killed launcher, bad config and graph files.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors';

const ROOT = path.resolve(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'deepvision.js');
const MLP = path.join(ROOT, 'graphs', 'mlp.ts');
const SMALL = ['--data', 'shapes', '--train-size', '96', '--val-size', '32', '--image-size', '8', '--batch-size', '32', '--threads', '1', '--no-progress'];
let tmp: string;

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: tmp, encoding: 'utf8', timeout: 60000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A user error: exit 1 and exactly one `error:` line, no stack trace. */
function expectOneLineError(r: { status: number | null; stderr: string }, pattern: RegExp): void {
  expect(r.status).toBe(1);
  const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('error:'));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/^\s+at /m);
}

beforeAll(() => {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('the CLI is not built: run `npm run build` (npm test does it first)');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-reliability-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('a checkpoint is data: it never makes deepvision run code', () => {
  let run: string;
  beforeAll(() => {
    run = path.join(tmp, 'run');
    const r = cli('train', MLP, ...SMALL, '--epochs', '1', '--set', 'hidden=8', '--out', run);
    if (r.status !== 0) throw new Error(r.stderr);
  });

  test('eval refuses the graph file a checkpoint names, and says how to trust it', () => {
    // A "graph file" that would leave a mark if it ever ran.
    const marker = path.join(tmp, 'pwned');
    const evil = path.join(tmp, 'evil.ts');
    fs.writeFileSync(evil, `require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'ran');\nexport default {};\n`);
    const { tensors, metadata } = readSafetensors(path.join(run, 'best.safetensors'));
    const forged = path.join(tmp, 'forged.safetensors');
    writeSafetensors(forged, tensors, { ...metadata, 'deepvision.graph_file': evil });
    const r = cli('eval', forged, '--val-size', '32');
    expectOneLineError(r, /forged\.safetensors was trained from the graph file .*evil\.ts; graph files are code.*pass --graph .*evil\.ts if you trust that file/);
    expect(fs.existsSync(marker)).toBe(false);
    // A model name that is no bundled graph: the user must name the file.
    writeSafetensors(forged, tensors, { ...metadata, 'deepvision.model': '../../tmp/evil', 'deepvision.graph_file': '' });
    expectOneLineError(cli('eval', forged), /does not come from a bundled graph .*pass --graph FILE/);
    expect(fs.existsSync(marker)).toBe(false);
  });

  test('eval runs the bundled graph of the model name, or the file named with --graph', () => {
    const { tensors, metadata } = readSafetensors(path.join(run, 'best.safetensors'));
    const anonymous = path.join(tmp, 'anonymous.safetensors');
    const { ['deepvision.graph_file']: _dropped, ...rest } = metadata;
    writeSafetensors(anonymous, tensors, rest);
    expect(cli('eval', anonymous, '--val-size', '32').stdout).toMatch(/mlp on shapes validation \(32 images\)/);
    const r = cli('eval', path.join(run, 'best.safetensors'), '--graph', MLP, '--val-size', '32');
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/top-1 [\d.]+ %/);
  });

  test('eval refuses a checkpoint with one NaN weight, and data whose classes are other ones (issue 24 item 4)', () => {
    const { tensors, metadata } = readSafetensors(path.join(run, 'best.safetensors'));
    const name = [...tensors.keys()].find((n) => !n.startsWith('optimizer.'))!;
    const weights = Float32Array.from(tensors.get(name)!.data as Float32Array);
    weights[1] = NaN;
    const nan = path.join(tmp, 'one-nan.safetensors');
    writeSafetensors(nan, new Map([...tensors, [name, { ...tensors.get(name)!, data: weights }]]), metadata);
    // It used to report "loss NaN, top-1 100.00 %".
    expectOneLineError(cli('eval', nan, '--val-size', '32'), new RegExp(`one-nan\\.safetensors: tensor "${name.replace(/\./g, '\\.')}" holds NaN at index 1: the checkpoint is unusable`));
    const renamed = path.join(tmp, 'renamed.safetensors');
    const classes = JSON.parse(metadata['deepvision.classes']!) as string[];
    writeSafetensors(renamed, tensors, { ...metadata, 'deepvision.classes': JSON.stringify(classes.map((c, i) => (i === 2 ? 'airplane' : c))) });
    expectOneLineError(cli('eval', renamed, '--val-size', '32'), /renamed\.safetensors was trained on other classes than shapes has: label 2 is "airplane" for the model but "\w+" in the data/);
  });

  test('eval validates its numeric options', () => {
    expect(cli('eval', path.join(run, 'best.safetensors'), '--val-size', 'abc').stderr).toMatch(/error: option '--val-size <n>' argument 'abc' is invalid/);
    expect(cli('eval', path.join(run, 'best.safetensors'), '--val-fraction', '1.5').status).toBe(1);
  });
});

describe('resuming and output folders', () => {
  test('resume into another folder trains on and leaves a complete folder (best checkpoint, artifacts, metrics)', () => {
    const a = path.join(tmp, 'A');
    const b = path.join(tmp, 'B');
    expect(cli('train', MLP, ...SMALL, '--epochs', '2', '--set', 'hidden=8', '--out', a).status).toBe(0);
    const r = cli('train', MLP, ...SMALL, '--epochs', '4', '--set', 'hidden=8', '--out', b, '--resume', path.join(a, 'last.safetensors'));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    for (const f of ['best.safetensors', 'last.safetensors', 'inference_model.onnx', 'summary.json']) expect(fs.existsSync(path.join(b, f))).toBe(true);
    const epochs = fs.readFileSync(path.join(b, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { epoch: number }).epoch);
    expect(epochs).toEqual([1, 2, 3, 4]);
  });

  test('--resume with another batch size or learning rate: one line naming the setting, its saved value and the new one', () => {
    const a = path.join(tmp, 'A');
    const last = path.join(a, 'last.safetensors');
    const other = (flag: string, value: string) => SMALL.map((v, i) => (SMALL[i - 1] === flag ? value : v));
    expectOneLineError(cli('train', MLP, ...other('--batch-size', '16'), '--epochs', '4', '--set', 'hidden=8', '--out', path.join(tmp, 'C'), '--resume', last),
      /A\/last\.safetensors was trained with --batch-size 32, this run has 16: --resume continues a run with the same settings/);
    expectOneLineError(cli('train', MLP, ...SMALL, '--lr', '0.5', '--epochs', '4', '--set', 'hidden=8', '--out', path.join(tmp, 'C'), '--resume', last),
      /trained with --lr 0\.001, this run has 0\.5/);
    expect(fs.existsSync(path.join(tmp, 'C', 'metrics.jsonl'))).toBe(false);
  });

  test('--out naming a file, --resume naming nothing or an ONNX model: one-line errors', () => {
    const file = path.join(tmp, 'a-file');
    fs.writeFileSync(file, 'x');
    expectOneLineError(cli('train', MLP, ...SMALL, '--epochs', '1', '--out', file), /--out .*a-file is a file, not a folder/);
    expectOneLineError(cli('train', MLP, ...SMALL, '--epochs', '1', '--out', path.join(tmp, 'r1'), '--resume', path.join(tmp, 'missing.safetensors')), /missing\.safetensors/);
  });
});

describe('a full disk', () => {
  test('train and resume stop with one `no space left on device writing FILE` line; earlier files stay intact', () => {
    const out = path.join(tmp, 'disk');
    expect(cli('train', MLP, ...SMALL, '--epochs', '1', '--set', 'hidden=8', '--out', out).status).toBe(0);
    const before = new Map(fs.readdirSync(out).map((f) => [f, fs.readFileSync(path.join(out, f))]));
    const full = (...args: string[]) => {
      const r = spawnSync(process.execPath, ['--require', path.join(__dirname, 'support', 'full-disk-preload.js'), BIN, ...args],
        { cwd: tmp, encoding: 'utf8', timeout: 60000, env: { ...process.env, FULL_DISK_BYTES: '0' } });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    expectOneLineError(full('train', MLP, ...SMALL, '--epochs', '2', '--set', 'hidden=8', '--out', out, '--resume', path.join(out, 'last.safetensors')),
      /^error: no space left on device writing .*disk\/((best|last)\.safetensors|metrics\.jsonl)$/);
    expectOneLineError(full('train', MLP, ...SMALL, '--epochs', '1', '--set', 'hidden=8', '--out', path.join(tmp, 'disk-fresh')),
      /^error: no space left on device writing .*disk-fresh\/(best|last)\.safetensors$/);
    // Every file of the earlier run is as it was, and no temporary file is left.
    expect(fs.readdirSync(out).sort()).toEqual([...before.keys()].sort());
    for (const [f, bytes] of before) expect(fs.readFileSync(path.join(out, f)).equals(bytes)).toBe(true);
  });
});

describe('models and configs that do not fit', () => {
  test('a model with 7 outputs on 10-class data is refused, as is --set numClasses in conflict with the data', () => {
    const seven = path.join(tmp, 'seven.ts');
    fs.writeFileSync(seven, fs.readFileSync(MLP, 'utf8').replace(/numClasses: 30/, 'numClasses: 7').replace(/numClasses/g, 'outputs'));
    expectOneLineError(cli('train', seven, ...SMALL, '--epochs', '1', '--out', path.join(tmp, 's7')), /has 7 outputs, but shapes has 10 classes/);
    expectOneLineError(cli('train', MLP, ...SMALL, '--epochs', '1', '--set', 'numClasses=5', '--out', path.join(tmp, 'n5')), /--set numClasses=5 disagrees with the data: shapes has 10 classes/);
  });

  test('a config the model cannot be built with, and a graph whose create() throws', () => {
    expectOneLineError(cli('train', MLP, ...SMALL, '--epochs', '1', '--set', 'hidden=-5', '--out', path.join(tmp, 'neg')), /cannot build model 'mlp' .*hidden.*-5/);
    const throwing = path.join(tmp, 'throwing.ts');
    fs.writeFileSync(throwing, `import { defineModel } from 'deepvision';
export default defineModel({ name: 'throws', defaults: { numClasses: 10 }, inputs: () => [{ name: 'input', shape: ['batch', 3, 8, 8] }],
  create: () => { throw new TypeError('this model is not ready'); } });\n`);
    expectOneLineError(cli('train', throwing, ...SMALL, '--epochs', '1', '--out', path.join(tmp, 'throws')), /cannot build model 'throws' .*this model is not ready/);
  });
});

describe('processes', () => {
  test('kill -9 of the deepvision process stops the trainer it started', async () => {
    const out = path.join(tmp, 'killed');
    const launcher = spawn(process.execPath, [BIN, 'train', MLP, ...SMALL, '--train-size', '4000', '--epochs', '50', '--set', 'hidden=8', '--out', out], { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    launcher.stdout.on('data', (d) => (stdout += d));
    const started = Date.now();
    while (!stdout.includes('epoch 1:') && Date.now() - started < 60000) await new Promise((r) => setTimeout(r, 20));
    const children = spawnSync('pgrep', ['-P', String(launcher.pid)], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean).map(Number);
    expect(children).toHaveLength(1);
    const trainer = children[0]!;
    launcher.kill('SIGKILL');
    const alive = () => {
      try {
        process.kill(trainer, 0);
        return true;
      } catch {
        return false;
      }
    };
    const killedAt = Date.now();
    while (alive() && Date.now() - killedAt < 10000) await new Promise((r) => setTimeout(r, 50));
    expect(alive()).toBe(false);
  });
});
