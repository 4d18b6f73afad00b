/**
 * The native stem of the Node trainer's fast path: a first Conv -> [batch norm] -> ReLU -> 2x2 max pool block cut out
 * of the training session (src/passes/cut-conv-stem.ts) and run by src/native/conv-stem.cc around it. One update
 * of the cut session with the native block must give the whole graph's gradients and running statistics within
 * float rounding. (The trainer's 10-update comparison is in fused-optimizer.test.ts.)
 */
import * as ort from 'onnxruntime-node';
import cnn from '../graphs/cnn';
import mlp from '../graphs/mlp';
import referenceCnn from '../graphs/reference-cnn';
import resnet from '../graphs/resnet';
import type { ModelDefinition } from '../src/model/definition';
import { defineModel, nn } from '../src/index';
import type { Tensor } from '../src/dsl/builder';
import { buildEvalGraph, buildTrainingGraph } from '../src/model/training-graph';
import { nativeAddon } from '../src/native/native-addon';
import { encodeModel } from '../src/onnx/write';
import { findConvStem } from '../src/passes/cut-conv-stem';
import { nativeConvStem } from '../src/train/training-sessions';
import { Rng } from '../src/util/rng';
import { largestDifference } from './support/largest-difference';

const addon = nativeAddon();
if (typeof addon === 'string' && (process.env.CI !== undefined || process.env.DEEPVISION_NATIVE_ADDON !== undefined) && process.env.DEEPVISION_NATIVE !== 'off') {
  throw new Error(`CI builds the native fast path, but it is not available: ${addon}`);
}
const native = typeof addon === 'string' ? describe.skip : describe;

/**
 * A stem off every vector width: 5x5 kernel (pad 2, asymmetric none), 5 output channels (the convolution's blocks of
 * four plus one), an 18-px grid (a partial vector of windows and of weight-gradient columns).
 */
const oddStem = defineModel({
  name: 'odd-stem',
  defaults: { numClasses: 4, imageSize: 18 },
  inputs: (c) => [{ name: 'input', shape: ['batch', 3, c.imageSize, c.imageSize] }],
  create: () => {
    class Net extends nn.Module {
      readonly conv = new nn.Conv2d(3, 5, 5, { padding: 2 });
      readonly norm = new nn.BatchNorm2d(5);
      readonly fc = new nn.Linear(5, 4);
      forward(x: Tensor): Tensor {
        const pooled = new nn.MaxPool2d(2).forward(new nn.ReLU().forward(this.norm.forward(this.conv.forward(x))));
        return this.fc.forward(new nn.Flatten().forward(new nn.GlobalAvgPool().forward(pooled)));
      }
    }
    return new Net();
  },
});

test('the stem is found in the CNN and nowhere else in graphs/', () => {
  const stemOf = (definition: ModelDefinition, config: Record<string, number>) => {
    let found: ReturnType<typeof findConvStem>;
    buildTrainingGraph(definition, { config, gradientOf: (g) => (found = findConvStem(g))?.pooled });
    // The evaluation graph's check, which the trainer runs first, agrees.
    expect(findConvStem(buildEvalGraph(definition, { config }).model.graph, 'eval')?.stem).toEqual(found?.stem);
    return found?.stem;
  };
  expect(stemOf(cnn, { imageSize: 16 })).toEqual({
    input: 'input', weight: 'features.0.0.weight', bias: 'features.0.0.bias', pooled: expect.any(String), weightShape: [64, 3, 3, 3], pads: [1, 1, 1, 1],
    batchNorm: {
      gamma: 'features.0.1.weight', beta: 'features.0.1.bias', runningMean: 'features.0.1.running_mean', runningVar: 'features.0.1.running_var',
      epsilon: expect.closeTo(1e-5, 10), momentum: expect.closeTo(0.9, 6),
    },
  });
  // The reference CNN's first block has no batch norm.
  expect(stemOf(referenceCnn, { imageSize: 16 })).toEqual({
    input: 'input', weight: 'features.0.weight', bias: 'features.0.bias', pooled: expect.any(String), weightShape: [32, 3, 3, 3], pads: [1, 1, 1, 1],
    batchNorm: undefined,
  });
  // No max pool after the first block (ResNet's stem), no convolution (MLP).
  expect(stemOf(resnet, { imageSize: 16, width: 8 })).toBeUndefined();
  expect(stemOf(mlp, { imageSize: 8 })).toBeUndefined();
  // An odd convolution output (15 px) is not tiled by the 2x2 windows.
  expect(() => buildTrainingGraph(cnn, { config: { imageSize: 15 } })).toThrow();
});

native('one update with the native stem', () => {
  /** Every output of one update, by the whole graph and by the cut session with the native stem. */
  async function bothPaths(size: number, batch: number, definition: ModelDefinition = cnn) {
    const config = { imageSize: size, numClasses: 4 };
    const graph = buildTrainingGraph(definition, { config, seed: 1 });
    const cut = nativeConvStem({ trainingGraphWith: (gradientOf) => buildTrainingGraph(definition, { config, seed: 1, gradientOf }), evalModel: buildEvalGraph(definition, { config }).model }, 2)!;
    expect(cut).toBeDefined();
    const rng = new Rng(0);
    // Images of a few grey levels, as flat as the shapes data: many windows hold tied maxima.
    const images = Float32Array.from({ length: batch * 3 * size * size }, () => Math.round(rng.normal() * 2) / 2);
    const feeds: Record<string, ort.Tensor> = {
      input: new ort.Tensor('float32', images, [batch, 3, size, size]),
      labels: new ort.Tensor('int64', BigInt64Array.from({ length: batch }, () => BigInt(rng.int(4))), [batch]),
    };
    const state = new Map<string, ort.Tensor>();
    for (const [name, value] of graph.values) state.set(name, new ort.Tensor('float32', value.typed() as Float32Array, [...value.dims]));
    const whole = await ort.InferenceSession.create(encodeModel(graph.model));
    const expected = await whole.run({ ...feeds, ...Object.fromEntries(state) });
    const session = await ort.InferenceSession.create(encodeModel(cut.model));
    expect(session.inputNames).not.toContain('input');
    expect(session.inputNames).not.toContain(cut.stem.stem.weight);
    const cutFeeds = cut.stem.forward(state, feeds);
    for (const name of session.inputNames) cutFeeds[name] ??= state.get(name)!;
    const got = await session.run(cutFeeds);
    cut.stem.complete(got);
    await Promise.all([whole.release(), session.release()]);
    return { expected, got, names: whole.outputNames };
  }

  // Relative to each tensor's largest element: the block's sums run in another order (measured worst 2.3e-6).
  const worstDifference = (expected: ort.InferenceSession.ReturnType, got: ort.InferenceSession.ReturnType, names: readonly string[]) => {
    let worst = { name: '', relative: 0 };
    for (const name of names) {
      const x = expected[name]!.data as Float32Array;
      const y = got[name]!.data as Float32Array;
      expect(y).toHaveLength(x.length);
      const { difference, scale } = largestDifference(x, y);
      const relative = scale === 0 ? difference : difference / scale;
      if (!(relative <= worst.relative)) worst = { name, relative };
    }
    return worst;
  };

  test.each([
    ['16 px (whole vectors of windows)', 16, 8],
    ['40 px (a partial vector at each row end)', 40, 2],
  ])('%s: every gradient and running statistic within 1e-5 of the whole graph', async (_label, size, batch) => {
    const { expected, got, names } = await bothPaths(size, batch);
    expect(worstDifference(expected, got, names).relative).toBeLessThan(1e-5);
    // The bias before batch norm: exactly zero on both paths.
    expect(Array.from(got['features.0.0.bias_grad']!.data as Float32Array).every((v) => v === 0)).toBe(true);
    expect(Array.from(expected['features.0.0.bias_grad']!.data as Float32Array).every((v) => v === 0)).toBe(true);
  });

  test('a 5x5 stem of 5 channels on 18 px: every gradient and running statistic within 1e-5 of the whole graph', async () => {
    const { expected, got, names } = await bothPaths(18, 4, oddStem);
    expect(worstDifference(expected, got, names).relative).toBeLessThan(1e-5);
  });

  test('the reference CNN (no batch norm): every gradient within 1e-5 of the whole graph', async () => {
    const { expected, got, names } = await bothPaths(16, 8, referenceCnn);
    expect(worstDifference(expected, got, names).relative).toBeLessThan(1e-5);
    // The bias's gradient is the sum over dZ: not zero here.
    expect(Array.from(got['features.0.bias_grad']!.data as Float32Array).some((v) => Math.abs(v) > 1e-4)).toBe(true);
  });

  test('the baseline build (no AVX2) gives the same within float rounding', async () => {
    process.env.DEEPVISION_NATIVE_ISA = 'baseline';
    try {
      const { expected, got, names } = await bothPaths(40, 2);
      expect(worstDifference(expected, got, names).relative).toBeLessThan(1e-5);
    } finally {
      delete process.env.DEEPVISION_NATIVE_ISA;
    }
  });

  test('the addon refuses wrong arrays with an exception, not a crash', () => {
    const lib = addon as Exclude<typeof addon, string>;
    const [n, c, h, w, m] = [2, 3, 4, 4, 2];
    const geometry = Int32Array.of(n, c, h, w, m, 3, 3, 1, 1, 1, 1);
    const cells = n * m * h * w;
    const floats = () => [n * c * h * w, m * c * 9, m, m, m, m, m, cells, cells / 4, m, m, m, m].map((k) => new Float32Array(k));
    const settings = Float32Array.of(1e-5, 0.9, 1);
    expect(() => lib.stemForward(floats(), new Uint8Array(cells / 4), geometry, settings, 1)).not.toThrow();
    const short = floats();
    short[1] = new Float32Array(5);
    expect(() => lib.stemForward(short, new Uint8Array(cells / 4), geometry, settings, 1)).toThrow('stemForward: floats[1] has 5 values, the geometry needs 54');
    expect(() => lib.stemForward(floats().slice(1), new Uint8Array(cells / 4), geometry, settings, 1)).toThrow('not an array of 13 Float32Arrays');
    expect(() => lib.stemForward(floats(), new Uint8Array(3), geometry, settings, 1)).toThrow('ties is not a Uint8Array of 16 values');
    expect(() => lib.stemForward(floats(), new Uint8Array(cells / 4), Int32Array.of(n, c, 5, w, m, 3, 3, 1, 1, 1, 1), settings, 1)).toThrow('odd convolution output');
    const shared = floats();
    shared[8] = shared[7]!.subarray(0, cells / 4);
    expect(() => lib.stemForward(shared, new Uint8Array(cells / 4), geometry, settings, 1)).toThrow('floats[7] shares memory with another array');
    const back = [n * c * h * w, cells, cells / 4, cells / 4, m, m, m, m * c * 9, m, m].map((k) => new Float32Array(k));
    expect(() => lib.stemBackward(back, new Uint8Array(cells / 4), geometry, Float32Array.of(1), 1)).not.toThrow();
    back[3] = new Float32Array(1);
    expect(() => lib.stemBackward(back, new Uint8Array(cells / 4), geometry, Float32Array.of(1), 1)).toThrow('stemBackward: floats[3] has 1 values, the geometry needs 16');
  });
});
