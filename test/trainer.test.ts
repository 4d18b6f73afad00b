/** Training: resume equivalence, the NaN guard, checkpoints that survive interrupted writes. */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import cnn from '../graphs/cnn';
import mlp from '../graphs/mlp';
import { generateShapes } from '../src/data/shapes';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors';
import { evaluationBatchSize } from '../src/train/input-batch';
import { readRunSummary, RunSummaryError } from '../src/train/run-summary';
import { train, TrainOptions } from '../src/train/trainer';
import { removeStaleTempFiles, writeFileAtomic } from '../src/util/atomic-write';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-train-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const trainSet = generateShapes({ count: 240, imageSize: 8, seed: 0 });
const valSet = generateShapes({ count: 60, imageSize: 8, seed: 1 });
const base = (outDir: string): TrainOptions => ({
  definition: mlp, config: { hidden: 16 }, train: trainSet, val: valSet, epochs: 3, batchSize: 32,
  optimizer: { kind: 'sgd', momentum: 0.9 }, learningRate: 0.05, outDir, threads: 1, seed: 7,
});

describe('trainer', () => {
  test('a model without frozen parameters runs on the images: no feature pass (an MLP starts with a Flatten)', async () => {
    const passes: string[] = [];
    const r = await train({ ...base(path.join(tmp, 'no-features')), epochs: 1, maxSteps: 2, cacheDir: path.join(tmp, 'no-features-cache'), onFeatures: (_done, _total, what) => passes.push(what) });
    expect(r.stopped).toBe('max-steps');
    expect(passes).toEqual([]);
  });

  test('a resumed run reproduces an uninterrupted run bit for bit', async () => {
    const full = await train(base(path.join(tmp, 'full')));
    expect(full.stopped).toBe('completed');
    expect(full.history).toHaveLength(3);
    // Stop in the middle of epoch 2, then resume from the last checkpoint.
    const partial = await train({ ...base(path.join(tmp, 'part')), maxSteps: 12 });
    expect(partial.stopped).toBe('max-steps');
    const resumed = await train({ ...base(path.join(tmp, 'part')), resume: partial.lastCheckpoint });
    for (const [name, t] of full.tensors) {
      const a = Buffer.from((t.data as Float32Array).buffer, (t.data as Float32Array).byteOffset, (t.data as Float32Array).byteLength);
      const r = resumed.tensors.get(name)!.data as Float32Array;
      expect(Buffer.from(r.buffer, r.byteOffset, r.byteLength).equals(a)).toBe(true);
    }
    expect(resumed.history[resumed.history.length - 1]!.valLoss).toBe(full.history[2]!.valLoss);
    const lines = fs.readFileSync(path.join(tmp, 'full', 'metrics.jsonl'), 'utf8').trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(JSON.parse(lines[0]!)).toHaveProperty('valTop1');
  });

  test('resume is exact for a model with dropout too (masks from the checkpointed generator)', async () => {
    const withDropout = (outDir: string): TrainOptions => ({
      ...base(outDir), definition: cnn, variant: 'dropout', config: {}, epochs: 2, train: generateShapes({ count: 96, imageSize: 8, seed: 0 }),
      val: generateShapes({ count: 32, imageSize: 8, seed: 1 }), optimizer: { kind: 'adam' }, learningRate: 1e-3,
    });
    const full = await train(withDropout(path.join(tmp, 'drop-full')));
    const partial = await train({ ...withDropout(path.join(tmp, 'drop-part')), maxSteps: 4 });
    const resumed = await train({ ...withDropout(path.join(tmp, 'drop-part')), resume: partial.lastCheckpoint });
    const w = (r: typeof full) => Buffer.from((r.tensors.get('classifier.6.weight')!.data as Float32Array).buffer);
    expect(w(resumed).equals(w(full))).toBe(true);
    expect(resumed.history[resumed.history.length - 1]!.trainLoss).toBe(full.history[1]!.trainLoss);
  });

  test('checkpoints are safetensors with parameters, optimizer state and metadata', async () => {
    const { tensors, metadata } = readSafetensors(path.join(tmp, 'full', 'best.safetensors'));
    expect(tensors.get('classifier.1.weight')!.shape).toEqual([16, 192]);
    expect(tensors.has('optimizer.classifier.1.weight.momentum_buffer')).toBe(true);
    expect(metadata['deepvision.model']).toBe('mlp');
    expect(JSON.parse(metadata['deepvision.classes']!)).toHaveLength(10);
    expect(Number(metadata['deepvision.step'])).toBeGreaterThan(0);
  });

  test('a library call leaves summary.json, the same record deepvision train leaves and the sweep reads', () => {
    const summary = readRunSummary(path.join(tmp, 'full'))!;
    expect(Object.keys(summary)).toEqual(['model', 'variant', 'data', 'classes', 'stopped', 'epochs', 'best', 'last', 'confusion', 'augmentation', 'optimizer', 'lr', 'batchSize', 'seconds']);
    expect(summary).toMatchObject({
      model: 'mlp', variant: null, data: 'shapes', classes: trainSet.classNames, stopped: 'completed', epochs: 3, augmentation: 'none', optimizer: 'sgd', lr: 0.05, batchSize: 32,
    });
    expect(summary.last!.epoch).toBe(3);
    expect(summary.best!.valLoss).toBeLessThanOrEqual(summary.last!.valLoss);
    expect(summary.confusion!.flat().reduce((a, b) => a + b, 0)).toBe(valSet.count);
    expect(summary.seconds).toBeGreaterThan(0);
    // A resumed run's summary replaces the one its first sitting left.
    expect(readRunSummary(path.join(tmp, 'part'))!.stopped).toBe('completed');
    expect(readRunSummary(path.join(tmp, 'no-such-run'))).toBeUndefined();
    const bad = path.join(tmp, 'bad-summary');
    writeFileAtomic(path.join(bad, 'summary.json'), JSON.stringify({ ...summary, stopped: 'paused' }));
    expect(() => readRunSummary(bad)).toThrow(RunSummaryError);
    expect(() => readRunSummary(bad)).toThrow(/summary\.json is not a summary written by deepvision train: 'stopped' is invalid \("paused"\)/);
  });

  test('a NaN loss stops training with a clear message and leaves the last good checkpoint intact', async () => {
    const dir = path.join(tmp, 'nan');
    await train({ ...base(dir), epochs: 1 });
    // A resume keeps the learning rate: the checkpoint is made one of an older version, which does not record it.
    const { tensors, metadata } = readSafetensors(path.join(dir, 'last.safetensors'));
    delete metadata['deepvision.resume_settings'];
    writeSafetensors(path.join(dir, 'last.safetensors'), tensors, metadata);
    const before = fs.readFileSync(path.join(dir, 'last.safetensors'));
    await expect(train({ ...base(dir), epochs: 3, learningRate: 1e30, resume: path.join(dir, 'last.safetensors') }))
      .rejects.toThrow(/the loss became (NaN|Infinity|-Infinity) at epoch 2, batch \d+ .*training stopped\. Checkpoints already written are untouched/);
    expect(fs.readFileSync(path.join(dir, 'last.safetensors')).equals(before)).toBe(true);
  });

  test('--resume refuses other settings and other data, naming the setting, its saved value and the new one', async () => {
    const dir = path.join(tmp, 'settings');
    await train({ ...base(dir), epochs: 1 });
    const last = path.join(dir, 'last.safetensors');
    const resume = (changes: Partial<TrainOptions>) => train({ ...base(dir), epochs: 2, resume: last, ...changes });
    const refused: [Partial<TrainOptions>, RegExp][] = [
      [{ batchSize: 16 }, /last\.safetensors was trained with --batch-size 32, this run has 16: --resume continues a run with the same settings/],
      [{ seed: 8 }, /trained with --seed 7, this run has 8/],
      [{ train: generateShapes({ count: 200, imageSize: 8, seed: 0 }) }, /trained with training images \(--train-size\) 240, this run has 200/],
      [{ learningRate: 0.01 }, /trained with --lr 0\.05, this run has 0\.01/],
      [{ labelSmoothing: 0.1 }, /trained with --label-smoothing 0, this run has 0\.1/],
      [{ optimizer: { kind: 'sgd', momentum: 0.5 } }, /trained with optimizer \(--optimizer, --momentum, --weight-decay\) \{"kind":"sgd","momentum":0\.9\}, this run has \{"kind":"sgd","momentum":0\.5\}/],
      [{ data: { source: '/data/cifar10' } }, /trained with --data shapes, this run has \/data\/cifar10/],
      [{ train: { ...trainSet, classNames: trainSet.classNames.map((c, i) => (i === 3 ? 'cat' : c)) } }, /trained on other classes than shapes has: label 3 is "\w+" for the model but "cat" in the data/],
    ];
    for (const [changes, message] of refused) await expect(resume(changes)).rejects.toThrow(message);
    // Nothing was trained or logged by the refused resumes; the same settings (more epochs) continue.
    expect(fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n')).toHaveLength(1);
    expect((await resume({})).history.map((m) => m.epoch)).toEqual([2]);
  });

  test('a checkpoint write killed midway leaves the previous file intact', async () => {
    const file = path.join(tmp, 'atomic', 'last.safetensors');
    writeFileAtomic(file, 'previous');
    // A child process starts writing a 400 MB file over it and is killed while writing.
    const script = `require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'util', 'atomic-write.js'))}).writeFileAtomic(${JSON.stringify(file)}, new Uint8Array(400e6).fill(7));`;
    const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
    // Kill it once its temporary file has started to fill.
    const dir = path.dirname(file);
    const started = Date.now();
    const writing = () => fs.readdirSync(dir).some((f) => f.endsWith('.tmp') && fs.statSync(path.join(dir, f)).size > 0);
    while (!writing() && Date.now() - started < 10000) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(writing()).toBe(true);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.on('exit', resolve));
    expect(fs.readFileSync(file, 'utf8')).toBe('previous');
    // The next run clears what the killed writer left (its process is gone), and nothing else.
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toHaveLength(1);
    expect(removeStaleTempFiles(dir)).toBe(1);
    expect(fs.readdirSync(dir)).toEqual(['last.safetensors']);
  });

  test('metrics.jsonl agrees with the checkpoint a run resumes from: no epoch twice, none the parameters lack', async () => {
    const dir = path.join(tmp, 'agree');
    await train({ ...base(dir), epochs: 2 });
    const afterTwo = fs.readFileSync(path.join(dir, 'last.safetensors'));
    await train({ ...base(dir), epochs: 3, resume: path.join(dir, 'last.safetensors') });
    // As if killed while writing epoch 3's checkpoint: the log already had epoch 3, the checkpoint is epoch 2's;
    // and a killed writer's temporary file lies beside it.
    fs.writeFileSync(path.join(dir, 'last.safetensors'), afterTwo);
    fs.writeFileSync(path.join(dir, '.last.safetensors.999999999.abc.tmp'), 'partial');
    const epochsLogged = () => fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { epoch: number }).epoch);
    expect(epochsLogged()).toEqual([1, 2, 3]);
    await train({ ...base(dir), epochs: 3, resume: path.join(dir, 'last.safetensors') });
    expect(epochsLogged()).toEqual([1, 2, 3]);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    // A fresh run into the same folder starts a fresh log.
    await train({ ...base(dir), epochs: 1 });
    expect(epochsLogged()).toEqual([1]);
  });
});

test('evaluation batches hold fewer large images: their activations stay what 256 images of 64x64 take', () => {
  const images = (side: number) => generateShapes({ count: 1, imageSize: side, seed: 0 });
  expect(evaluationBatchSize(images(32), 256)).toBe(256);
  expect(evaluationBatchSize(images(64), 256)).toBe(256);
  // At 224 px, 256 images at a time took MobileNetV2's evaluation to 13.7 GB (6.1 GB now, the training's 5.7 GB).
  expect(evaluationBatchSize(images(224), 256)).toBe(20);
  expect(evaluationBatchSize(images(48), 128)).toBe(128);
  expect(evaluationBatchSize(images(2048), 256)).toBe(1);
  // Cached features are small whatever the images' size.
  expect(evaluationBatchSize(images(224), 256, { rows: undefined as never, perImage: [1280] })).toBe(256);
});
