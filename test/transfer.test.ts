/**
 * Transfer learning (graphs/transfer.ts): a frozen backbone runs once per image and the head trains on cached
 * features, with the same result as running the backbone every step; fine-tuning trains the backbone too; the
 * backbone's normalization is the one recorded with the model.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import cnn from '../graphs/cnn';
import transfer from '../graphs/transfer';
import { generateShapes } from '../src/data/shapes';
import { readSafetensors } from '../src/io/safetensors';
import { buildTrainingGraph } from '../src/model/training-graph';
import { findFrozenSplit } from '../src/train/frozen-features';
import { train, TrainOptions } from '../src/train/trainer';
import { writeSmallBackbone } from './support/small-backbone';

let tmp: string;
let backbone: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-transfer-'));
  backbone = writeSmallBackbone(tmp);
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const trainSet = generateShapes({ count: 192, imageSize: 16, seed: 0 });
const valSet = generateShapes({ count: 64, imageSize: 16, seed: 1 });
const options = (outDir: string, extra: Partial<TrainOptions> = {}): TrainOptions => ({
  definition: transfer, config: { backbone, trainable: 'none' }, train: trainSet, val: valSet, epochs: 2, batchSize: 32,
  optimizer: { kind: 'adam' }, learningRate: 0.01, outDir, threads: 1, seed: 3, cacheDir: path.join(tmp, 'cache'), trainAccuracySample: 64, ...extra,
});

describe('transfer learning', () => {
  test('the frozen part of a model ends where its first trained layer starts', () => {
    const frozen = buildTrainingGraph(transfer, { config: { backbone, imageSize: 16, numClasses: 10 } });
    const parameters = new Set(frozen.parameters.filter((p) => !frozen.trainable.includes(p.name)).map((p) => p.name));
    expect(frozen.trainable).toEqual(['head.weight', 'head.bias']);
    expect(findFrozenSplit(frozen.model, parameters)).toMatchObject({ perImage: [8] });
    // Nothing frozen: nothing to cache.
    const all = buildTrainingGraph(transfer, { config: { backbone, imageSize: 16, numClasses: 10, trainable: 'all' } });
    expect(findFrozenSplit(all.model, new Set())).toBeUndefined();
    const seed = buildTrainingGraph(cnn, { config: { imageSize: 8, numClasses: 3 } });
    expect(findFrozenSplit(seed.model, new Set())).toBeUndefined();
  });

  test('a frozen backbone runs once per image, cached on disk; the head trains on its features as it would through the backbone', async () => {
    const computed: string[] = [];
    const cached = await train(options(path.join(tmp, 'cached'), { onFeatures: (done, total, what) => done === total && computed.push(what) }));
    expect(computed).toHaveLength(2); // training and validation images, once each
    // A library caller of train() gets the run folder the CLI writes: the artifacts beside the checkpoints.
    expect(cached.artifacts).toEqual(['training_model.onnx', 'eval_model.onnx', 'optimizer_model.onnx', 'inference_model.onnx', 'checkpoint.safetensors']);
    for (const f of cached.artifacts) expect(fs.statSync(path.join(tmp, 'cached', f)).size).toBeGreaterThan(0);
    const direct = await train(options(path.join(tmp, 'direct'), { cacheFeatures: false }));
    cached.history.forEach((m, i) => {
      expect(Math.abs(m.valLoss - direct.history[i]!.valLoss)).toBeLessThan(1e-5);
      expect(m.valTop1).toBe(direct.history[i]!.valTop1);
    });
    const w = (r: typeof cached) => r.tensors.get('head.weight')!.data as Float32Array;
    expect(w(cached).reduce((m, v, i) => Math.max(m, Math.abs(v - w(direct)[i]!)), 0)).toBeLessThan(1e-5);
    // The backbone is untouched.
    expect(Array.from(cached.tensors.get('backbone.stem.weight')!.data as Float32Array)).toEqual(Array.from(direct.tensors.get('backbone.stem.weight')!.data as Float32Array));
    // A second run reads the features from the cache.
    computed.length = 0;
    const again = await train(options(path.join(tmp, 'again'), { onFeatures: (done, total, what) => done === total && computed.push(what) }));
    expect(computed).toEqual([]);
    expect(again.history.map((m) => m.valLoss)).toEqual(cached.history.map((m) => m.valLoss));
    // The backbone's normalization (ImageNet's) is what the checkpoint records, for predict and the page.
    const { metadata } = readSafetensors(cached.bestCheckpoint);
    expect(JSON.parse(metadata['deepvision.normalization']!)).toEqual({ mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
  });

  test('with augmentation the backbone runs on every batch, and says so', async () => {
    const notices: string[] = [];
    const computed: string[] = [];
    await train(options(path.join(tmp, 'augmented'), { epochs: 1, augment: { ...(await import('../src/data/augment')).NO_AUGMENTATION, hflip: 0.5 }, onNotice: (m) => notices.push(m), onFeatures: (_d, _t, what) => computed.push(what) }));
    expect(notices).toEqual(['note: augmentation is on, so the frozen backbone runs on every batch (its features cannot be cached)']);
    expect(computed).toEqual([]);
  });

  test('fine-tuning trains the backbone too', async () => {
    const before = transferWeights();
    const tuned = await train(options(path.join(tmp, 'tuned'), { config: { backbone, trainable: 'dw.,left.' }, epochs: 1 }));
    const after = (name: string) => Array.from(tuned.tensors.get(name)!.data as Float32Array);
    expect(after('backbone.dw.weight')).not.toEqual(before.get('dw.weight'));
    expect(after('backbone.left.weight')).not.toEqual(before.get('left.weight'));
    expect(after('backbone.stem.weight')).toEqual(before.get('stem.weight'));
  });

  test('last:K trains the last K layers with weights; --backbone-lr gives the backbone its own learning rate', async () => {
    const last = buildTrainingGraph(transfer, { config: { backbone, imageSize: 16, numClasses: 10, trainable: 'last:2' } });
    expect(last.trainable).toEqual(['backbone.left.weight', 'backbone.left.bias', 'backbone.right.weight', 'backbone.right.bias', 'head.weight', 'head.bias']);
    // One plain SGD step from the same start: the backbone moves exactly a quarter as far at a quarter of the rate.
    const step = (dir: string, learningRates?: Record<string, number>) => train(options(path.join(tmp, dir), {
      config: { backbone, trainable: 'all' }, optimizer: { kind: 'sgd', momentum: 0 }, learningRate: 0.1, learningRates, maxSteps: 1,
    }));
    const [plain, slow] = [await step('lr-plain'), await step('lr-slow', { 'backbone.': 0.025 })];
    const start = transferWeights().get('dw.weight')!;
    const moved = (r: typeof plain, name: string, from: number[]) => Array.from(r.tensors.get(name)!.data as Float32Array, (v, i) => v - from[i]!);
    // Summed over the tensor: single elements moved by a few float32 steps carry rounding of a few percent.
    const norm = (d: number[]) => d.reduce((sum, v) => sum + Math.abs(v), 0);
    expect(norm(moved(slow, 'backbone.dw.weight', start)) / norm(moved(plain, 'backbone.dw.weight', start))).toBeCloseTo(0.25, 3);
    expect(Array.from(slow.tensors.get('head.bias')!.data as Float32Array)).toEqual(Array.from(plain.tensors.get('head.bias')!.data as Float32Array));
  });

  test('deepvision transfer: train on a backbone from the command line, then eval and export the run', () => {
    const bin = path.join(__dirname, '..', 'bin', 'deepvision.js');
    const cli = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { cwd: tmp, encoding: 'utf8', timeout: 60000, env: { ...process.env, DEEPVISION_CACHE: path.join(tmp, 'cache') } });
    const out = path.join(tmp, 'cli-run');
    const r = cli('transfer', backbone, '--data', 'shapes', '--image-size', '16', '--train-size', '96', '--val-size', '32', '--epochs', '2',
      '--unfreeze', 'last:1', '--backbone-lr', '0.0001', '--out', out, '--no-progress', '--threads', '1');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Training transfer on shapes \(96 train \/ 32 validation images, 16x16, 10 classes\)/);
    const e = cli('eval', path.join(out, 'best.safetensors'), '--val-size', '32');
    expect(e.stderr).toBe('');
    expect(e.stdout).toMatch(/transfer on shapes validation \(32 images\)/);
    const x = cli('export', out, '--out', path.join(tmp, 'exported'));
    expect(x.stderr).toBe('');
    expect(x.stdout).toMatch(/top-1 agrees on \d+\/\d+ inputs/);
    const missing = cli('transfer', path.join(tmp, 'nope.onnx'), '--data', 'shapes');
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/^error: backbone not found: .*nope\.onnx$/m);
  });
  test('a two-layer head (hidden, dropout) trains on the cached features as through the backbone; pool=avg pools a spatial cut', async () => {
    const config = { backbone, trainable: 'none', hidden: 6, dropout: 0.5 };
    const graph = buildTrainingGraph(transfer, { config: { ...config, imageSize: 16, numClasses: 10 } });
    expect(graph.trainable).toEqual(['hidden.weight', 'hidden.bias', 'head.weight', 'head.bias']);
    const frozen = new Set(graph.parameters.filter((p) => !graph.trainable.includes(p.name)).map((p) => p.name));
    expect(findFrozenSplit(graph.model, frozen)).toMatchObject({ perImage: [8] });
    // The features cached for the linear head above serve this head too, whatever its width, weights or seed.
    const computed: string[] = [];
    const cached = await train(options(path.join(tmp, 'mlp-cached'), { config, epochs: 1, seed: 11, onFeatures: (_d, _t, what) => computed.push(what) }));
    expect(computed).toEqual([]);
    const direct = await train(options(path.join(tmp, 'mlp-direct'), { config, epochs: 1, seed: 11, cacheFeatures: false }));
    expect(Math.abs(cached.history[0]!.valLoss - direct.history[0]!.valLoss)).toBeLessThan(1e-5);
    // Pooling a [N, 8] cut would average over nothing: the head reads its 8 channels either way.
    expect(buildTrainingGraph(transfer, { config: { backbone, pool: 'avg', imageSize: 16, numClasses: 10 } }).values.get('head.weight')!.dims).toEqual([10, 8]);
    expect(() => buildTrainingGraph(transfer, { config: { backbone, pool: 'max', imageSize: 16 } })).toThrow(/pool must be none or avg/);
    expect(() => buildTrainingGraph(transfer, { config: { backbone, hidden: 1e9, imageSize: 16 } })).toThrow(/hidden must be a whole number/);
  });
});

/** The backbone file's initializers as stored. */
function transferWeights(): Map<string, number[]> {
  const { onnx } = jest.requireActual<typeof import('onnx-proto')>('onnx-proto');
  const proto = onnx.ModelProto.decode(fs.readFileSync(backbone));
  return new Map(proto.graph!.initializer!.map((t) => {
    const raw = t.rawData!;
    return [t.name!, Array.from(new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)))];
  }));
}
