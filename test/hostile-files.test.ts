/**
 * Issue 24's classes of hostile input on the newer surfaces, through the CLI as users meet them: files that are
 * named pipes (a reader would block forever), and numbers from a flag, a card or a checkpoint that set how much work
 * a command does (a beam of a million, captions of 1e8 tokens). Each is one `error:` line and exit 1, at once.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors';
import { trainAndExportCaptioner } from './support/exported-captioner';
import { cli, trainAndExport } from './support/exported-model';

const ROOT = path.resolve(__dirname, '..');
const SAMPLE = path.join(ROOT, 'web-demo', 'samples', 'star.png');
let tmp: string;
let classifier: { runDir: string; modelDir: string };
let captioner: { runDir: string; modelDir: string };

/** A user error: exit 1 and exactly one `error:` line, no stack trace. */
function expectOneLineError(r: { status: number | null; stderr: string }, pattern: RegExp): void {
  expect(r.stderr).not.toMatch(/^\s+at /m);
  const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('error:'));
  expect({ status: r.status, lines: lines.length }).toEqual({ status: 1, lines: 1 });
  expect(lines[0]).toMatch(pattern);
}

/** A copy of `dir` with `file` replaced by a named pipe that nothing ever writes to. */
function withFifo(dir: string, file: string, name: string): string {
  const copy = path.join(tmp, name);
  fs.cpSync(dir, copy, { recursive: true });
  fs.rmSync(path.join(copy, file));
  execFileSync('mkfifo', [path.join(copy, file)]);
  return copy;
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-hostile-files-'));
  fs.mkdirSync(path.join(tmp, 'classifier'));
  classifier = trainAndExport(path.join(tmp, 'classifier'));
  captioner = trainAndExportCaptioner(tmp, path.join(tmp, 'models'));
  execFileSync('mkfifo', [path.join(tmp, 'pipe.png'), path.join(tmp, 'pipe.onnx')]);
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('a named pipe where a file is read is refused at once, never read', () => {
  const notRegular = /not a regular file/;

  test('images: predict and caption', () => {
    expectOneLineError(cli(tmp, 'predict', classifier.modelDir, path.join(tmp, 'pipe.png')), notRegular);
    expectOneLineError(cli(tmp, 'caption', captioner.modelDir, path.join(tmp, 'pipe.png')), notRegular);
  });

  test('model cards: predict and caption', () => {
    expectOneLineError(cli(tmp, 'predict', withFifo(classifier.modelDir, 'model.json', 'card-fifo'), SAMPLE), /model\.json: not a regular file/);
    expectOneLineError(cli(tmp, 'caption', withFifo(captioner.modelDir, 'model.json', 'captioner-card-fifo'), SAMPLE), /model\.json: not a regular file/);
  });

  test("ONNX files: inspect, transfer, build --set backbone=, a run's encoder, step and inference models, an exported captioner's", () => {
    const pipe = path.join(tmp, 'pipe.onnx');
    expectOneLineError(cli(tmp, 'inspect', pipe), notRegular);
    expectOneLineError(cli(tmp, 'transfer', pipe, '--data', 'shapes', '--epochs', '1', '--out', path.join(tmp, 'never')), notRegular);
    expectOneLineError(cli(tmp, 'build', path.join(ROOT, 'graphs', 'transfer.ts'), '--set', `backbone=${pipe}`), notRegular);
    for (const f of ['encoder_model.onnx', 'step_model.onnx']) {
      expectOneLineError(cli(tmp, 'caption', withFifo(captioner.runDir, f, `run-${f}`), SAMPLE), new RegExp(`${f.replace('.', '\\.')}: not a regular file`));
    }
    expectOneLineError(cli(tmp, 'caption', withFifo(captioner.modelDir, 'step.onnx', 'exported-step-fifo'), SAMPLE), /step\.onnx: not a regular file/);
    expectOneLineError(cli(tmp, 'export', withFifo(classifier.runDir, 'inference_model.onnx', 'run-inference-fifo'), '--out', path.join(tmp, 'never')), /inference_model\.onnx: not a regular file/);
    expect(fs.existsSync(path.join(tmp, 'never'))).toBe(false);
  });

  test('a backbone ONNX file read by export-teach', () => {
    expectOneLineError(cli(tmp, 'export-teach', path.join(tmp, 'pipe.onnx'), '--out', path.join(tmp, 'never')), /pipe\.onnx/);
  });
});

describe('numbers that set how much work is done have a ceiling', () => {
  test('--beam on caption, eval and export: at most 100, and no wider than the vocabulary', () => {
    expectOneLineError(cli(tmp, 'caption', captioner.modelDir, SAMPLE, '--beam', '1000000'), /--beam.*beam width from 1 to 100/);
    expectOneLineError(cli(tmp, 'export', captioner.runDir, '--out', path.join(tmp, 'never'), '--beam', '1000000'), /--beam.*beam width from 1 to 100/);
    expectOneLineError(cli(tmp, 'eval', path.join(captioner.runDir, 'best.safetensors'), '--beam', '1000000'), /--beam.*beam width from 1 to 100/);
    const vocabulary = (JSON.parse(fs.readFileSync(path.join(captioner.modelDir, 'model.json'), 'utf8')) as { vocabulary: { tokens: string[] } }).vocabulary.tokens.length;
    expect(vocabulary).toBeLessThan(100);
    expectOneLineError(cli(tmp, 'caption', captioner.modelDir, SAMPLE, '--beam', String(vocabulary + 1)), new RegExp(`beam of ${vocabulary + 1} is wider than the vocabulary \\(${vocabulary} tokens\\)`));
  });

  test("an exported card's generation.beam and generation.maxLength", () => {
    for (const [key, value, pattern] of [['beam', 1000000, /'generation\.beam': a beam of 1000000 is wider than the 100/], ['maxLength', 1e8, /'generation\.maxLength' is 100000000 words, more than the 254 supported/]] as const) {
      const copy = path.join(tmp, `card-${key}`);
      fs.cpSync(captioner.modelDir, copy, { recursive: true });
      const card = JSON.parse(fs.readFileSync(path.join(copy, 'model.json'), 'utf8')) as { generation: Record<string, number> };
      card.generation[key] = value;
      fs.writeFileSync(path.join(copy, 'model.json'), JSON.stringify(card));
      expectOneLineError(cli(tmp, 'caption', copy, SAMPLE), pattern);
    }
  });

  test("a checkpoint's config maxLength: caption, export and eval refuse it before building anything", () => {
    const copy = path.join(tmp, 'run-max-length');
    fs.cpSync(captioner.runDir, copy, { recursive: true });
    for (const f of ['encoder_model.onnx', 'step_model.onnx']) fs.rmSync(path.join(copy, f));
    const file = path.join(copy, 'best.safetensors');
    const { tensors, metadata } = readSafetensors(file);
    const config = JSON.parse(metadata['deepvision.config']!) as Record<string, unknown>;
    writeSafetensors(file, tensors, { ...metadata, 'deepvision.config': JSON.stringify({ ...config, maxLength: 1e8 }) });
    const refused = /best\.safetensors: its config's maxLength: captions of 100000001 tokens are longer than the 256 supported/;
    expectOneLineError(cli(tmp, 'caption', copy, SAMPLE, '--graph', path.join(ROOT, 'graphs', 'captioner.ts')), refused);
    expectOneLineError(cli(tmp, 'export', copy, '--out', path.join(tmp, 'never')), refused);
    expectOneLineError(cli(tmp, 'eval', file, '--val-size', '4'), refused);
  });

  test('input sizes and generated data: --image-size at most 4096 px, shapes at most 2 GiB of pixels', () => {
    const out = ['--out', path.join(tmp, 'never')];
    expectOneLineError(cli(tmp, 'train', path.join(ROOT, 'graphs', 'mlp.ts'), '--data', 'shapes', '--image-size', '100000', ...out), /--image-size got 100000, more than the 4096 supported/);
    expectOneLineError(cli(tmp, 'train', path.join(ROOT, 'graphs', 'mlp.ts'), '--data', 'shapes', '--train-size', '1000000000', ...out), /shapes: 1,000,000,000 images of 32x32 would take 2861\.0 GiB; at most 2 GiB/);
    expectOneLineError(cli(tmp, 'export-teach', path.join(ROOT, 'README.md'), '--image-size', '100000', ...out), /--image-size.*from 1 to 4096/);
    expect(fs.existsSync(path.join(tmp, 'never'))).toBe(false);
  });

  test('train --epochs at most 1,000,000 and --threads at most 256 (onnxruntime would start them all)', () => {
    const out = ['--out', path.join(tmp, 'never')];
    const mlp = path.join(ROOT, 'graphs', 'mlp.ts');
    expectOneLineError(cli(tmp, 'train', mlp, '--data', 'shapes', '--epochs', '1e300', ...out), /--epochs got 1e300, more than the 1000000 supported/);
    expectOneLineError(cli(tmp, 'train', mlp, '--data', 'shapes', '--train-size', '64', '--val-size', '16', '--threads', '100000', ...out), /--threads got 100000, more than the 256 supported/);
    expect(fs.existsSync(path.join(tmp, 'never'))).toBe(false);
  });

  test('train --max-length: at most 256 tokens', () => {
    expectOneLineError(cli(tmp, 'train', path.join(ROOT, 'graphs', 'captioner.ts'), '--data', 'shapes', '--max-length', '100000', '--out', path.join(tmp, 'never')),
      /--max-length got 100000, more than the 256 supported/);
  });
});
