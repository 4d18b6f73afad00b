/** The command line as users run it: the built CLI in a child process, on graph files anywhere on disk. */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { helpText } from '../src/cli/help-text';
import { dataTest, fixture, sharedFile } from './support/shared';

const ROOT = path.resolve(__dirname, '..');
const BIN = path.join(ROOT, 'bin', 'deepvision.js');
let tmp: string;

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: tmp, encoding: 'utf8', timeout: 60000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('the CLI is not built: run `npm run build` (npm test does it first)');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-cli-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const USER_GRAPH = `
import { defineModel, nn, F, Tensor } from 'deepvision';

class TinyNet extends nn.Module {
  features = new nn.Sequential(new nn.Conv2d(3, 8, 3, { padding: 1 }), new nn.BatchNorm2d(8), new nn.ReLU(), new nn.MaxPool2d(2));
  head = new nn.Linear(8 * 8 * 8, 5);
  constructor(readonly classes: number) { super(); }
  forward(x: Tensor): Tensor {
    return this.head.forward(F.flatten(this.features.forward(x)));
  }
}

export default defineModel({
  name: 'tiny',
  defaults: { numClasses: 5 },
  inputs: () => [{ name: 'input', shape: ['batch', 3, 16, 16] }],
  create: (c) => new TinyNet(c.numClasses),
});
`;

describe('deepvision CLI', () => {
  test('builds a user graph file outside the project, prints the summary, and inspect reads the result', () => {
    const dir = path.join(tmp, 'elsewhere', 'my models');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'tiny.ts'), USER_GRAPH);
    const out = path.join(tmp, 'out', 'tiny.onnx');
    const r = cli('build', path.join(dir, 'tiny.ts'), '--out', out, '--check');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Conv2d: 2-1 \(features\.0\)\s+\[batch, 8, 16, 16\]\s+224/);
    expect(r.stdout).toContain('Total params: 2,805');
    expect(r.stdout).toMatch(/Check: onnxruntime-node .* -> logits \[2, 5\]/);
    expect(fs.existsSync(out)).toBe(true);

    const inspect = cli('inspect', out);
    expect(inspect.status).toBe(0);
    expect(inspect.stdout).toMatch(/input\s+float32 \[batch, 3, 16, 16\]/);
    expect(inspect.stdout).toMatch(/logits\s+float32 \[batch, 5\]/);
    expect(inspect.stdout).toContain('Opsets: ai.onnx 17');
    expect(inspect.stdout).toContain('Parameters: 2,805');
    expect(JSON.parse(cli('inspect', out, '--json').stdout).parameterCount).toBe(2805);
  });

  test('the bundled graphs build with variants and config changes', () => {
    const r = cli('build', path.join(ROOT, 'graphs', 'mlp.ts'), '--set', 'numClasses=10', '--set', 'imageSize=32', '-q', '--out', 'mlp.onnx');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('"numClasses":10,"imageSize":32');
    expect(r.stdout).not.toContain('Layer (type:depth-idx)');
  });

  test('a shape error in a user graph is reported with the op, layer and shapes, exit code 1', () => {
    const file = path.join(tmp, 'broken.ts');
    fs.writeFileSync(file, USER_GRAPH.replace('new nn.Linear(8 * 8 * 8, 5)', 'new nn.Linear(100, 5)'));
    const r = cli('build', file);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe("error: linear 'head': input has 512 features, weight expects 100 (Gemm inputs: float32[batch, 512], float32[5, 100], float32[5])");
  });

  test('graph files that do not load or export no model are explained', () => {
    const syntax = path.join(tmp, 'syntax.ts');
    fs.writeFileSync(syntax, 'export default {,};');
    const r1 = cli('build', syntax);
    expect(r1.status).toBe(1);
    expect(r1.stderr).toContain(`error: cannot load graph file ${syntax}`);
    const noExport = path.join(tmp, 'no-export.ts');
    fs.writeFileSync(noExport, 'export const x = 1;');
    expect(cli('build', noExport).stderr).toContain('must `export default defineModel(');
    expect(cli('build', path.join(tmp, 'nope.ts')).stderr).toContain('error: graph file not found');
    expect(cli('build', path.join(ROOT, 'graphs', 'cnn.ts'), '--set', 'numClasses=many').stderr).toContain("config 'numClasses' must be a number, got 'many'");
  });

  dataTest('inspect describes a model from another tool', ['models/mobilenetv2-torchvision-int8-qdq.onnx'], () => {
    const r = cli('inspect', sharedFile('models/mobilenetv2-torchvision-int8-qdq.onnx'));
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Conv\s+52/);
    expect(r.stdout).toContain('Opsets: ai.onnx 12');
  });

  test('inspect rejects a file that is not a model', () => {
    const bad = cli('inspect', fixture('photos/dog-320.jpg'));
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('not an ONNX model');
  });

  test('train writes checkpoints and metrics, and eval reads the checkpoint back', () => {
    const out = path.join(tmp, 'run');
    const r = cli('train', path.join(ROOT, 'graphs', 'mlp.ts'), '--data', 'shapes', '--train-size', '120', '--val-size', '40', '--image-size', '8',
      '--epochs', '2', '--batch-size', '32', '--set', 'hidden=16', '--optimizer', 'sgd', '--lr', '0.05', '--out', out, '--threads', '1');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/epoch 2: train loss [\d.]+ top-1 [\d.]+ % \| val loss [\d.]+ top-1 [\d.]+ %/);
    expect(r.stdout).toContain('epoch  train loss  train top-1  val loss  val top-1');
    expect(r.stdout).toMatch(/^Device: (cpu|cuda|webgpu)/m);
    // On the CPU the device line says how convolutions run (blocked kernels where the CPU has them).
    if (/^Device: cpu/m.test(r.stdout)) expect(r.stdout).toMatch(/; convolutions (on onnxruntime's channel-blocked CPU kernels \(block \d+\)|as standard ONNX Conv)/);
    for (const f of ['best.safetensors', 'last.safetensors', 'metrics.jsonl', 'training_model.onnx', 'eval_model.onnx', 'optimizer_model.onnx', 'inference_model.onnx', 'checkpoint.safetensors']) {
      expect(fs.existsSync(path.join(out, f))).toBe(true);
    }
    const e = cli('eval', path.join(out, 'best.safetensors'), '--val-size', '40');
    expect(e.status).toBe(0);
    expect(e.stdout).toMatch(/mlp on shapes validation \(40 images\): loss [\d.]+, top-1 [\d.]+ %, top-5 [\d.]+ %/);
    const flipped = cli('eval', path.join(out, 'best.safetensors'), '--val-size', '40', '--tta', 'hflip');
    expect(flipped.stdout).toMatch(/mlp on shapes validation \(40 images, each also mirrored: softmax averaged\): loss [\d.]+, top-1 [\d.]+ %/);
    const bad = cli('eval', path.join(ROOT, 'package.json'));
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('package.json: not a safetensors checkpoint');
  });

  test('Ctrl-C during training saves a checkpoint to resume from, then exits', async () => {
    const out = path.join(tmp, 'interrupted');
    const child = spawn(process.execPath, [BIN, 'train', path.join(ROOT, 'graphs', 'mlp.ts'), '--train-size', '4000', '--val-size', '40',
      '--image-size', '8', '--epochs', '50', '--batch-size', '16', '--set', 'hidden=16', '--out', out, '--threads', '1'], { cwd: tmp });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    // Interrupt once the first epoch has been reported.
    const started = Date.now();
    while (!stdout.includes('epoch 1:') && Date.now() - started < 60000) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGINT');
    const code = await new Promise((resolve) => child.on('exit', resolve));
    expect(code).toBe(130);
    expect(stderr).toContain('Stopping: saving a checkpoint after this batch');
    expect(stdout).toMatch(/Interrupted; resume with --resume .*last\.safetensors/);
    expect(fs.existsSync(path.join(out, 'last.safetensors'))).toBe(true);
  });

  test('a captioner on shapes trains with its own defaults when no flag is given; a classifier with the command\'s', () => {
    // --warmup-steps -1 is refused after the settings line and before any graph is built: the line, then one error.
    const graphs = path.join(ROOT, 'graphs');
    const captioner = cli('train', path.join(graphs, 'captioner.ts'), '--train-size', '64', '--val-size', '64', '--warmup-steps', '-1', '--out', path.join(tmp, 'cap'));
    expect(captioner.stdout).toContain('adam lr 0.004, batch 64, 2 epochs;');
    const cnn = cli('train', path.join(graphs, 'cnn.ts'), '--train-size', '64', '--val-size', '64', '--warmup-steps', '-1', '--out', path.join(tmp, 'cnn'));
    expect(cnn.stdout).toContain('adam lr 0.001, batch 64, 10 epochs;');
    for (const r of [captioner, cnn]) expect([r.status, r.stderr.trim().split('\n').pop()]).toEqual([1, expect.stringMatching(/^error: .*warmup-steps/)]);
  });

  test('--help explains every command', () => {
    const root = cli('--help');
    expect(root.status).toBe(0);
    expect(root.stdout).toMatch(/build .*build a model from a graph file/);
    expect(root.stdout).toMatch(/inspect .*describe any ONNX file/);
    expect(root.stdout).toMatch(/train .*train a model from a graph file/);
    expect(root.stdout).toMatch(/eval .*evaluate a checkpoint/);
    const trainHelp = cli('train', '--help');
    for (const flag of ['--data', '--epochs', '--batch-size', '--optimizer', '--lr', '--schedule', '--resume', '--patience', '--clip-grad-norm', '--device']) expect(trainHelp.stdout).toContain(flag);
    const build = cli('build', '--help');
    for (const flag of ['--out', '--variant', '--set', '--seed', '--mode', '--check']) expect(build.stdout).toContain(flag);
    expect(build.stdout).toContain('Examples:');
    expect(cli('inspect', '--help').stdout).toContain('--json');
  });

  test('every command\'s help fits an 80-column terminal, its prose wrapped into even paragraphs', () => {
    // Child processes have no terminal: commander wraps to 80 columns.
    for (const command of ['build', 'inspect', 'train', 'transfer', 'eval', 'export', 'predict', 'caption', 'plot', 'sweep', 'serve']) {
      const lines = cli(command, '--help').stdout.split('\n');
      const description = lines.slice(2, lines.indexOf('', 2));
      for (const line of lines) expect(`${command}: ${line.length <= 80 ? 'fits' : line}`).toBe(`${command}: fits`);
      // A paragraph re-wrapped from hard line breaks leaves short lines in its middle.
      for (const line of description.slice(0, -1)) expect(`${command}: ${line.length >= 60 ? 'even' : line}`).toBe(`${command}: even`);
    }
  });
});

describe('help text', () => {
  test('joins prose lines into paragraphs and keeps examples, indented and listed lines', () => {
    expect(helpText(['One sentence', 'continued.', '', 'Examples:', '  deepvision x', 'Example: y', 'More'])).toBe(
      'One sentence continued.\n\nExamples:\n  deepvision x\nExample: y\nMore',
    );
  });
});
