/**
 * The Node trainer's native fast path (src/native): the fused in-place optimizer against the optimizer graph it
 * replaces, update by update, alone and inside whole training runs of every model in graphs/; its refusals.
 * Where the addon is not built these tests are skipped, except in CI, which builds it and must run them.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import captioner from '../graphs/captioner';
import cnn from '../graphs/cnn';
import mlp from '../graphs/mlp';
import referenceCnn from '../graphs/reference-cnn';
import resnet from '../graphs/resnet';
import transfer from '../graphs/transfer';
import { loadCaptionData } from '../src/data/captions/load-captions';
import { generateShapes } from '../src/data/shapes';
import { nativeAddon } from '../src/native/native-addon';
import { FusedOptimizer, FusedOptimizerError } from '../src/native/fused-optimizer';
import { encodeModel } from '../src/onnx/write';
import { OptimizerConfig, slotNames } from '../src/optim/config';
import { buildOptimizerGraph, ParameterSpec } from '../src/optim/optimizer-graph';
import { train, TrainOptions } from '../src/train/trainer';
import { Rng } from '../src/util/rng';
import { largestDifference } from './support/largest-difference';
import { writeSmallBackbone } from './support/small-backbone';

const addon = nativeAddon();
if (typeof addon === 'string' && (process.env.CI !== undefined || process.env.DEEPVISION_NATIVE_ADDON !== undefined) && process.env.DEEPVISION_NATIVE !== 'off') {
  throw new Error(`CI builds the native fast path, but it is not available: ${addon}`);
}
const native = typeof addon === 'string' ? describe.skip : describe;

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-fused-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

// Enough elements in all (over 2^18) that the native update runs on two threads, and one parameter group.
const SPECS: ParameterSpec[] = [{ name: 'a', shape: [300, 70] }, { name: 'b', shape: [5] }, { name: 'c', shape: [3, 3, 3, 8], lrScale: 0.1 }, { name: 'd', shape: [300000] }];

const OPTIMIZERS: [string, OptimizerConfig, number | undefined][] = [
  ['SGD', { kind: 'sgd' }, undefined],
  ['SGD with weight decay', { kind: 'sgd', weightDecay: 1e-3 }, undefined],
  ['SGD momentum', { kind: 'sgd', momentum: 0.9 }, undefined],
  ['SGD momentum with dampening', { kind: 'sgd', momentum: 0.9, dampening: 0.3 }, undefined],
  ['SGD Nesterov with weight decay', { kind: 'sgd', momentum: 0.8, nesterov: true, weightDecay: 5e-4 }, undefined],
  ['Adam', { kind: 'adam' }, undefined],
  ['Adam with weight decay', { kind: 'adam', weightDecay: 1e-2 }, undefined],
  ['AdamW', { kind: 'adamw' }, undefined],
  ['Adam with other betas, eps and clipping', { kind: 'adam', beta1: 0.8, beta2: 0.99, eps: 1e-6 }, 0.5],
  ['SGD momentum with clipping', { kind: 'sgd', momentum: 0.9 }, 1.0],
];

const size = (p: ParameterSpec) => p.shape.reduce((a, b) => a * b, 1);
const tensor = (data: Float32Array, dims: readonly number[]) => new ort.Tensor('float32', data, [...dims]);

/** A state map (parameters, zero slots) as the trainer keeps it, from a seeded start. */
function startState(specs: ParameterSpec[], config: OptimizerConfig, seed: number): Map<string, ort.Tensor> {
  const rng = new Rng(seed);
  const state = new Map<string, ort.Tensor>();
  for (const p of specs) state.set(p.name, tensor(Float32Array.from({ length: size(p) }, () => rng.normal()), p.shape));
  for (const name of slotNames(config)) {
    for (const p of specs) state.set(`optimizer.${p.name}.${name}`, tensor(new Float32Array(size(p)), p.shape));
  }
  return state;
}

/** Ten updates with the same seeded gradients: by the optimizer graph in onnxruntime, and by the fused optimizer. */
async function tenUpdates(config: OptimizerConfig, clip: number | undefined, threads = 2) {
  const graph = buildOptimizerGraph(SPECS, config, { clipGradNorm: clip });
  const session = await ort.InferenceSession.create(encodeModel(graph.model), { intraOpNumThreads: 2 });
  const fused = FusedOptimizer.create(SPECS, config, { clipGradNorm: clip }, threads) as FusedOptimizer;
  const byGraph = startState(SPECS, config, 1);
  const byFused = startState(SPECS, config, 1);
  const rng = new Rng(2);
  for (let step = 1; step <= 10; step++) {
    const grads = SPECS.map((p) => tensor(Float32Array.from({ length: size(p) }, () => 0.1 * rng.normal()), p.shape));
    const feeds: Record<string, ort.Tensor> = {
      learning_rate: tensor(Float32Array.of(0.01), [1]), step: new ort.Tensor('int64', BigInt64Array.of(BigInt(step)), [1]),
    };
    SPECS.forEach((p, i) => Object.assign(feeds, { [p.name]: byGraph.get(p.name)!, [`${p.name}_grad`]: grads[i]! }));
    for (const slot of graph.stateNames) feeds[slot] = byGraph.get(`optimizer.${slot}`)!;
    const out = await session.run(feeds);
    for (const p of SPECS) byGraph.set(p.name, out[`${p.name}_updated`] as ort.Tensor);
    for (const slot of graph.stateNames) byGraph.set(`optimizer.${slot}`, out[`${slot}_updated`] as ort.Tensor);
    fused.update(byFused, grads, 0.01, step);
  }
  await session.release();
  return { byGraph, byFused };
}

/** The largest difference of each tensor relative to its largest value, over all tensors. */
function largestRelativeDifference(a: ReadonlyMap<string, ort.Tensor>, b: ReadonlyMap<string, ort.Tensor>): number {
  let worst = 0;
  for (const [name, t] of a) {
    const { difference, scale } = largestDifference(t.data as Float32Array, b.get(name)!.data as Float32Array);
    // An all-zero tensor (a bias whose gradient is exactly zero, and its slots) must stay all zero.
    worst = Math.max(worst, scale === 0 ? difference : difference / scale);
  }
  return worst;
}

function bitEqual(a: ReadonlyMap<string, ort.Tensor>, b: ReadonlyMap<string, ort.Tensor>): string[] {
  expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
  const bytes = (t: ort.Tensor) => Buffer.from((t.data as Float32Array).buffer, (t.data as Float32Array).byteOffset, (t.data as Float32Array).byteLength);
  return [...a].filter(([name, t]) => !bytes(t).equals(bytes(b.get(name)!))).map(([name]) => name);
}

native('the fused native optimizer', () => {
  test.each(OPTIMIZERS)('%s: ten updates equal to the optimizer graph (bit for bit without clipping, within 1e-5 with it)', async (_, config, clip) => {
    const { byGraph, byFused } = await tenUpdates(config, clip);
    // Clipping's global norm is summed in float64 natively and in float32 by onnxruntime: the scale differs in its
    // last bits. Everything else is the same float32 operations in the same order.
    if (clip === undefined) expect(bitEqual(byGraph, byFused)).toEqual([]);
    else expect(largestRelativeDifference(byGraph, byFused)).toBeLessThan(1e-5);
  });

  test('the result does not depend on the number of threads, clipping included', async () => {
    for (const [, config, clip] of [OPTIMIZERS[5]!, OPTIMIZERS[8]!]) {
      const [one, two] = [await tenUpdates(config, clip, 1), await tenUpdates(config, clip, 2)];
      expect(bitEqual(one.byFused, two.byFused)).toEqual([]);
    }
  });

  test('a state that does not match the parameters is a clear error, and nothing is updated', () => {
    const fused = FusedOptimizer.create(SPECS, { kind: 'adam' }, {}, 2) as FusedOptimizer;
    const state = startState(SPECS, { kind: 'adam' }, 3);
    const before = new Float32Array(state.get('a')!.data as Float32Array);
    const grads = SPECS.map((p) => tensor(new Float32Array(size(p)).fill(1), p.shape));
    state.set('optimizer.c.exp_avg', tensor(new Float32Array(7), [7]));
    expect(() => fused.update(state, grads, 0.1, 1)).toThrow(FusedOptimizerError);
    expect(() => fused.update(state, grads, 0.1, 1)).toThrow("'optimizer.c.exp_avg' has 7 values but the parameter 'c' has shape [3, 3, 3, 8] (216 values): the state does not match the model the optimizer was made for");
    state.delete('optimizer.c.exp_avg');
    expect(() => fused.update(state, grads, 0.1, 1)).toThrow("the fused optimizer has no value for 'optimizer.c.exp_avg' in the training state");
    expect(() => fused.update(startState(SPECS, { kind: 'adam' }, 3), grads.slice(1), 0.1, 1)).toThrow('the fused optimizer got 3 gradients for 4 parameters');
    expect(state.get('a')!.data).toEqual(before);
  });

  test('the addon refuses wrong arrays with an exception, not a crash', () => {
    const lib = addon as Exclude<typeof addon, string>;
    const settings = { clip: false, decay: false, momentum: true, dampening: false, nesterov: false, clipScale: 1, weightDecay: 0, mu: 0.9, bufferScale: 1 };
    const p = new Float32Array(4);
    expect(() => lib.sgd([p], [new Float64Array(4) as unknown as Float32Array], [new Float32Array(4)], Float32Array.of(0.1), settings, 1)).toThrow('grads[0] is not a Float32Array');
    expect(() => lib.sgd([p], [new Float32Array(3)], [new Float32Array(4)], Float32Array.of(0.1), settings, 1)).toThrow('grads[0] has 3 elements, the parameter 4');
    expect(() => lib.sgd([p], [new Float32Array(4)], null, Float32Array.of(0.1), settings, 1)).toThrow('sgd with momentum needs buffers');
    expect(() => lib.sgd([p], [new Float32Array(4)], [new Float32Array(4)], Float32Array.of(0.1, 0.2), settings, 1)).toThrow('scalars: expected 1 values, got 2');
    // A gradient that is a view of its own parameter would be overwritten while it is read.
    const shared = new Float32Array(8);
    expect(() => lib.sgd([shared.subarray(0, 4)], [shared.subarray(2, 6)], [new Float32Array(4)], Float32Array.of(0.1), settings, 1)).toThrow('two of the arrays share memory');
    expect(() => lib.sumOfSquares([new Float32Array(2), 'x' as unknown as Float32Array], 1)).toThrow('grads[1] is not a Float32Array');
  });
});

// Every model in graphs/, each trained for 10 updates on both paths with one of the optimizers: where the same
// gradients reach the fused optimizer and the graph, every parameter, buffer and slot must come out bit for bit the
// same; where a native kernel computes some of them, within 1e-5.
native('the trainer on the native fast path and on the portable path', () => {
  const shapes = (imageSize: number) => ({ train: generateShapes({ count: 96, imageSize, seed: 0 }), val: generateShapes({ count: 16, imageSize, seed: 1 }) });
  const run = async (name: string, o: Omit<TrainOptions, 'outDir' | 'epochs' | 'nativeFastPath'>) => {
    const notices: string[] = [];
    const options = { ...o, epochs: 1, maxSteps: 10, threads: 2, onNotice: (m: string) => notices.push(m) };
    const fast = await train({ ...options, outDir: path.join(tmp, `${name}-fast`), nativeFastPath: true });
    const portable = await train({ ...options, outDir: path.join(tmp, `${name}-portable`), nativeFastPath: false });
    expect(notices).toEqual([]);
    expect(fast.stopped).toBe('max-steps');
    return { fast: fast.tensors, portable: portable.tensors };
  };
  const common = { batchSize: 8, learningRate: 0.01, seed: 3 };

  test.each([
    ['mlp', () => ({ definition: mlp, config: { hidden: 16 }, ...shapes(8), optimizer: { kind: 'sgd', momentum: 0.9, nesterov: true } as OptimizerConfig })],
    ['mlp (Adam)', () => ({ definition: mlp, config: { hidden: 16 }, ...shapes(8), optimizer: { kind: 'adam' } as OptimizerConfig })],
    ['resnet', () => ({ definition: resnet, config: { width: 8 }, ...shapes(16), optimizer: { kind: 'sgd', momentum: 0.9, dampening: 0.1 } as OptimizerConfig })],
  ])('%s: bit for bit the same after 10 updates', async (name, options) => {
    const { fast, portable } = await run(name.replace(/\W+/g, '-'), { ...common, ...options() });
    expect(bitEqual(portable, fast)).toEqual([]);
  });

  // The CNN's first block (Conv, batch norm, ReLU, max pool) runs natively around the session (src/native/conv-stem.cc):
  // the same formulas, summed in another order (one update's gradients: conv-stem.test.ts). With SGD the runs stay
  // within 3e-6; Adam's steps are +-lr wherever a gradient is tiny, whatever its rounding, so those would part.
  test('cnn with the native stem (SGD momentum): within 1e-5 after 10 updates', async () => {
    const { fast, portable } = await run('cnn', { ...common, definition: cnn, config: {}, ...shapes(16), optimizer: { kind: 'sgd', momentum: 0.9 } });
    expect(largestRelativeDifference(portable, fast)).toBeLessThan(1e-5);
    expect(bitEqual(portable, fast)).toContain('features.0.0.weight');
  });

  // The reference CNN's second and third convolutions (no batch norm after them) get their weight gradients from the
  // native dense kernel (src/native/conv-weight-grad.cc): the same sums in another order.
  test('reference-cnn (SGD with weight decay): within 1e-5 after 10 updates', async () => {
    const { fast, portable } = await run('reference-cnn', { ...common, definition: referenceCnn, config: {}, ...shapes(16), optimizer: { kind: 'sgd', weightDecay: 1e-4 } });
    expect(largestRelativeDifference(portable, fast)).toBeLessThan(1e-5);
    expect(bitEqual(portable, fast)).toContain('features.3.weight');
  });

  test.each([
    ['reference-cnn with native weight gradients', referenceCnn],
    ['cnn with the native stem', cnn],
  ])('%s: a resumed run reproduces an uninterrupted one bit for bit', async (name, definition) => {
    const options = (outDir: string): TrainOptions => ({
      ...common, definition, config: {}, ...shapes(16), optimizer: { kind: 'sgd', momentum: 0.9 }, epochs: 2, threads: 2, outDir,
    });
    const dir = name.split(' ')[0]!;
    const full = await train(options(path.join(tmp, `resume-full-${dir}`)));
    // 96 images at batch 8: stop in the middle of the second epoch, then resume from the last checkpoint.
    const partial = await train({ ...options(path.join(tmp, `resume-part-${dir}`)), maxSteps: 18 });
    expect(partial.stopped).toBe('max-steps');
    const resumed = await train({ ...options(path.join(tmp, `resume-part-${dir}`)), resume: partial.lastCheckpoint });
    expect(bitEqual(full.tensors, resumed.tensors)).toEqual([]);
  });

  // The small backbone has a depthwise convolution, whose weight gradient the fast path computes natively
  // (src/native/depthwise-weight-grad.cc): the same sum in another order, so the runs part by rounding.
  test('transfer with a depthwise convolution (fine-tuned, Adam): within 1e-5 after 10 updates', async () => {
    const { fast, portable } = await run('transfer-depthwise', {
      ...common, definition: transfer, config: { backbone: writeSmallBackbone(tmp), trainable: 'all' }, ...shapes(9), learningRates: { 'backbone.': 0.001 },
      optimizer: { kind: 'adam', weightDecay: 1e-3 },
    });
    expect(largestRelativeDifference(portable, fast)).toBeLessThan(1e-5);
    expect(bitEqual(portable, fast)).toContain('optimizer.backbone.dw.weight.exp_avg');
  });

  // The captioner's CNN encoder starts with the native stem, so its runs part by rounding; with Adam they would part
  // further (see the CNN above).
  test('captioner (SGD momentum): within 1e-5 after 10 updates', async () => {
    const data = await loadCaptionData('shapes', { imageSize: 16, trainSize: 96, valSize: 16, minCount: 1, maxLength: 14, seed: 0, cacheDir: path.join(tmp, 'cache') });
    const { fast, portable } = await run('captioner', {
      ...common, definition: captioner, config: { embedding: 16, hidden: 32 }, train: data.train.images, val: data.val.images, captions: data,
      optimizer: { kind: 'sgd', momentum: 0.9 }, bleuImages: 16, data: { source: 'shapes' },
    });
    expect(largestRelativeDifference(portable, fast)).toBeLessThan(1e-5);
    expect(bitEqual(portable, fast)).toContain('encoder.features.0.weight');
  });

  // Clipping's scale differs in its last bits (see above), so the runs part by rounding. Not in a model with batch
  // norm: the gradient of a bias before batch norm is rounding noise, which Adam scales up to full steps.
  test('mlp with clipped gradients (Adam): within 1e-5 after 10 updates', async () => {
    const { fast, portable } = await run('mlp-clipped', { ...common, definition: mlp, config: { hidden: 16 }, ...shapes(8), optimizer: { kind: 'adam' }, clipGradNorm: 0.5 });
    expect(largestRelativeDifference(portable, fast)).toBeLessThan(1e-5);
  });
});

// Where the addon cannot load, training goes on with the optimizer graph and says so once.
test('a native build that does not load: one notice, and the run trains on the portable path', () => {
  const broken = path.join(tmp, 'broken.node');
  fs.writeFileSync(broken, 'not a shared library');
  const bin = path.join(__dirname, '..', 'bin', 'deepvision.js');
  const r = spawnSync(process.execPath, [bin, 'train', 'graphs/mlp.ts', '--data', 'shapes', '--train-size', '64', '--val-size', '16', '--epochs', '1', '--out', path.join(tmp, 'broken-run')], {
    cwd: path.join(__dirname, '..'), encoding: 'utf8', timeout: 60000, env: { ...process.env, DEEPVISION_NATIVE_ADDON: broken, DEEPVISION_NATIVE: undefined },
  });
  expect(r.status).toBe(0);
  const notices = r.stderr.split('\n').filter((l) => l.includes('native training fast path'));
  expect(notices).toHaveLength(1);
  expect(notices[0]).toMatch(/^note: the native training fast path is not available \(\S+broken\.node does not load: .+\); training uses the portable ONNX optimizer graph$/);
  expect(r.stdout).toContain('epoch 1:');
});
