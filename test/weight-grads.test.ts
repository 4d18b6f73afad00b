/**
 * The native convolution weight gradients of the Node trainer's fast path (src/passes/external-weight-grads.ts takes
 * them out of the training session, src/native/depthwise-weight-grad.cc and conv-weight-grad.cc compute them)
 * against the standard ONNX formulation the artifacts keep. Skipped where the addon is not built, except in CI (as test/fused-optimizer.test.ts).
 */
import * as ort from 'onnxruntime-node';
import { defineModel, nn } from '../src/index';
import type { Tensor } from '../src/dsl/builder';
import { buildTrainingGraph } from '../src/model/training-graph';
import { NativeWeightGrads } from '../src/native/weight-grads';
import { nativeAddon } from '../src/native/native-addon';
import { decodeModel } from '../src/onnx/read';
import { encodeModel } from '../src/onnx/write';
import { externalizeWeightGrads, hasExternalWeightGrads } from '../src/passes/external-weight-grads';
import { Rng } from '../src/util/rng';

const addon = nativeAddon();
if (typeof addon === 'string' && (process.env.CI !== undefined || process.env.DEEPVISION_NATIVE_ADDON !== undefined) && process.env.DEEPVISION_NATIVE !== 'off') {
  throw new Error(`CI builds the native fast path, but it is not available: ${addon}`);
}
const native = typeof addon === 'string' ? describe.skip : describe;

interface Geometry { kernel: number; stride: number; padding: number; dilation: number; size: number; batch?: number }

/**
 * A stem convolution (dense, 3x3: its gradient is native too), then the convolution under test (depthwise, or dense
 * from 6 to `outputs` channels), pooled into a linear classifier.
 */
const model = (g: Geometry, dense?: { outputs: number }) => defineModel({
  name: 'weight-grads-test',
  defaults: { numClasses: 4 },
  inputs: () => [{ name: 'input', shape: ['batch', 3, g.size, g.size] }],
  create: () => {
    const outputs = dense?.outputs ?? 6;
    class Net extends nn.Module {
      readonly stem = new nn.Conv2d(3, 6, 3, { padding: 1 });
      readonly dw = new nn.Conv2d(6, outputs, g.kernel, { stride: g.stride, padding: g.padding, dilation: g.dilation, groups: dense ? 1 : 6 });
      readonly fc = new nn.Linear(outputs, 4);
      forward(x: Tensor): Tensor {
        return this.fc.forward(new nn.Flatten().forward(new nn.GlobalAvgPool().forward(this.dw.forward(new nn.ReLU().forward(this.stem.forward(x))))));
      }
    }
    return new Net();
  },
});

/** The gradients of one batch from the standard graph, and from the rewritten one completed natively. */
async function bothWays(g: Geometry, threads = 2, dense?: { outputs: number }) {
  const graph = buildTrainingGraph(model(g, dense));
  const rng = new Rng(`weight-grads-${JSON.stringify(g)}`);
  const batch = g.batch ?? 5;
  const feeds: Record<string, ort.Tensor> = {
    input: new ort.Tensor('float32', Float32Array.from({ length: batch * 3 * g.size * g.size }, () => rng.normal()), [batch, 3, g.size, g.size]),
    labels: new ort.Tensor('int64', BigInt64Array.from({ length: batch }, () => BigInt(rng.int(4))), [batch]),
  };
  for (const [name, value] of graph.values) feeds[name] = new ort.Tensor('float32', Float32Array.from(value.typed() as Float32Array), [...value.dims]);
  const run = async (bytes: Uint8Array) => {
    const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 2 });
    try {
      return await session.run(Object.fromEntries(session.inputNames.map((n) => [n, feeds[n]!])));
    } finally {
      await session.release();
    }
  };
  const copy = decodeModel(encodeModel(graph.model));
  // Every dense gradient, whatever its size (the trainer leaves small ones in the session).
  const recipes = externalizeWeightGrads(copy, { minIm2colPerCrossing: 0 });
  const grads = NativeWeightGrads.create(recipes, ort.Tensor, threads) as NativeWeightGrads;
  const fast = await run(encodeModel(copy));
  grads.complete(fast);
  return { standard: await run(encodeModel(graph.model)), fast, recipes, outputs: graph.model.graph.outputs.map((v) => v.name) };
}

function relativeDifference(a: ort.Tensor, b: ort.Tensor): number {
  const x = a.data as Float32Array;
  const y = b.data as Float32Array;
  expect(b.dims).toEqual(a.dims);
  let scale = 0;
  let difference = 0;
  x.forEach((v, i) => {
    scale = Math.max(scale, Math.abs(v));
    difference = Math.max(difference, Math.abs(v - y[i]!));
  });
  return difference / scale;
}

const geometries: [string, Geometry][] = [
  ['3x3, stride 1, padding 1', { kernel: 3, stride: 1, padding: 1, dilation: 1, size: 12 }],
  ['3x3, stride 2, padding 1 (MobileNetV2 downsampling)', { kernel: 3, stride: 2, padding: 1, dilation: 1, size: 13 }],
  ['5x5, stride 2, padding 2', { kernel: 5, stride: 2, padding: 2, dilation: 1, size: 11 }],
  ['3x3, dilation 2, padding 2', { kernel: 3, stride: 1, padding: 2, dilation: 2, size: 10 }],
  ['3x3, no padding, rows of more than 8 columns', { kernel: 3, stride: 1, padding: 0, dilation: 1, size: 21 }],
  // 40 rows of 42: the kernels' float sums go into double several times within each plane.
  ['3x3, stride 1, a plane longer than one flush of the sums', { kernel: 3, stride: 1, padding: 1, dilation: 1, size: 40 }],
  ['3x3, padding 3 (wider than the kernel)', { kernel: 3, stride: 2, padding: 3, dilation: 1, size: 9 }],
  // One column: the second column phase of a stride-2 layer holds no pixel of the image at all.
  ['1x1, stride 2, a 1x1 image', { kernel: 1, stride: 2, padding: 0, dilation: 1, size: 1 }],
];

/** Both native gradients (the stem's dense one and the one under test) within 1e-5 of the graph's, the rest equal. */
async function expectSameGradients(g: Geometry, kinds: string[], dense?: { outputs: number }) {
  const { standard, fast, recipes, outputs } = await bothWays(g, 2, dense);
  expect(recipes.map((r) => `${r.param} ${r.kind}`)).toEqual(['stem.weight dense', `dw.weight ${kinds[1]}`]);
  for (const grad of ['stem.weight_grad', 'dw.weight_grad']) expect(relativeDifference(standard[grad]!, fast[grad]!)).toBeLessThan(1e-5);
  // Every other output is computed by the same nodes as before.
  for (const name of outputs.filter((n) => !['stem.weight_grad', 'dw.weight_grad'].includes(n))) expect(fast[name]!.data).toEqual(standard[name]!.data);
  // x and dY leave the outputs once used, so that the step does not keep them alive until a garbage collection.
  expect(Object.keys(fast).sort()).toEqual([...outputs].sort());
}

native('native depthwise weight gradients', () => {
  test.each(geometries)('%s: the same gradients as the standard graph', async (_, g) => {
    await expectSameGradients(g, ['dense', 'depthwise']);
  });
});

native('native dense weight gradients', () => {
  // 11 output channels: one vector of 16 lanes (AVX2: two of 8), padded.
  test.each(geometries)('%s: the same gradients as the standard graph', async (_, g) => {
    await expectSameGradients(g, ['dense', 'dense'], { outputs: 11 });
  });

  test('70 output channels (a tile of 64, then a narrower one) and 17 images (slices of 2 and 3): the same gradients as the standard graph', async () => {
    await expectSameGradients({ kernel: 3, stride: 1, padding: 1, dilation: 1, size: 7, batch: 17 }, ['dense', 'dense'], { outputs: 70 });
  });

  test('a batch of one image', async () => {
    await expectSameGradients({ kernel: 3, stride: 2, padding: 1, dilation: 1, size: 9, batch: 1 }, ['dense', 'dense'], { outputs: 11 });
  });

  test('the AVX-512 and AVX2 builds give the same bits, the baseline build the same within float rounding', () => {
    const lib = addon as Exclude<typeof addon, string>;
    const rng = new Rng('isa');
    // 7 images of 5 channels 9x9 -> 37 channels (three vectors of 16, the last one padded), 3x3, padding 1.
    const geometry = Int32Array.of(7, 5, 9, 9, 37, 9, 9, 3, 3, 1, 1, 1, 1, 1, 1);
    const x = Float32Array.from({ length: 7 * 5 * 81 }, () => rng.normal());
    const dy = Float32Array.from({ length: 7 * 37 * 81 }, () => rng.normal());
    const withIsa = (isa: string | undefined) => {
      const dw = new Float32Array(37 * 5 * 9);
      if (isa === undefined) delete process.env.DEEPVISION_NATIVE_ISA;
      else process.env.DEEPVISION_NATIVE_ISA = isa;
      try {
        lib.convWeightGrad(x, dy, dw, geometry, 2);
      } finally {
        delete process.env.DEEPVISION_NATIVE_ISA;
      }
      return dw;
    };
    const best = withIsa(undefined);
    expect(withIsa('avx2')).toEqual(best);
    const baseline = withIsa('baseline');
    const scale = Math.max(...best.map(Math.abs));
    expect(Math.max(...best.map((v, i) => Math.abs(v - baseline[i]!))) / scale).toBeLessThan(1e-6);
  });

  test('pointwise convolutions stay in the graph: their product needs no im2col', () => {
    const graph = buildTrainingGraph(model({ kernel: 1, stride: 1, padding: 0, dilation: 1, size: 6 }, { outputs: 5 }));
    expect(externalizeWeightGrads(graph.model, { minIm2colPerCrossing: 0 }).map((r) => r.param)).toEqual(['stem.weight']);
  });

  test('by default, only where the im2col is at least 3 times what x and dY add to the outputs', () => {
    // Per output position: the stem's im2col 27 floats against x's 3 and dY's 6; the layer under test (6 -> 11
    // channels) 54 against 6 + 11 at stride 1, against 6 * 4 + 11 at stride 2.
    const params = (g: Geometry) => externalizeWeightGrads(buildTrainingGraph(model(g, { outputs: 11 })).model).map((r) => r.param);
    expect(params({ kernel: 3, stride: 1, padding: 1, dilation: 1, size: 8 })).toEqual(['stem.weight', 'dw.weight']);
    expect(params({ kernel: 3, stride: 2, padding: 1, dilation: 1, size: 8 })).toEqual(['stem.weight']);
  });
});

native('native weight gradients', () => {
  test.each([
    ['depthwise', undefined],
    ['dense', { outputs: 11 }],
  ])('%s: the result does not depend on the number of threads', async (_, dense) => {
    const g = { kernel: 3, stride: 2, padding: 1, dilation: 1, size: 13, batch: 11 };
    const [one, two, three] = [await bothWays(g, 1, dense), await bothWays(g, 2, dense), await bothWays(g, 3, dense)];
    for (const grad of ['stem.weight_grad', 'dw.weight_grad']) {
      expect(two.fast[grad]!.data).toEqual(one.fast[grad]!.data);
      expect(three.fast[grad]!.data).toEqual(one.fast[grad]!.data);
    }
  });

  test('a dense convolution before a batch norm keeps its gradient in the session', () => {
    const graph = buildTrainingGraph(defineModel({
      name: 'normalized', defaults: {}, inputs: () => [{ name: 'input', shape: ['batch', 3, 8, 8] }],
      create: () => new nn.Sequential(
        new nn.Conv2d(3, 8, 3, { padding: 1 }), new nn.ReLU(), new nn.Conv2d(8, 8, 3, { padding: 1 }), new nn.BatchNorm2d(8), new nn.Flatten(), new nn.Linear(512, 3),
      ),
    }));
    expect(externalizeWeightGrads(graph.model, { minIm2colPerCrossing: 0 }).map((r) => r.param)).toEqual(['0.weight']);
  });

  test('graphs without a depthwise or dense convolution are left alone', () => {
    // A grouped convolution (2 groups of 2 channels) is neither.
    const graph = buildTrainingGraph(defineModel({
      name: 'plain', defaults: {}, inputs: () => [{ name: 'input', shape: ['batch', 4, 8, 8] }],
      create: () => new nn.Sequential(new nn.Conv2d(4, 4, 3, { padding: 1, groups: 2 }), new nn.Flatten(), new nn.Linear(256, 3)),
    }));
    expect(hasExternalWeightGrads(graph.model)).toBe(false);
    const before = encodeModel(graph.model);
    expect(externalizeWeightGrads(graph.model)).toEqual([]);
    expect(Buffer.from(encodeModel(graph.model)).equals(Buffer.from(before))).toBe(true);
  });

  test('the kernel refuses wrong arrays with an exception, not a crash', () => {
    const lib = addon as Exclude<typeof addon, string>;
    const geometry = Int32Array.of(1, 2, 4, 4, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1);
    const x = new Float32Array(32);
    const dy = new Float32Array(32);
    expect(() => lib.depthwiseWeightGrad(x, dy, new Float32Array(17), geometry, 1)).toThrow('dw has 17 values, the geometry needs 18');
    expect(() => lib.depthwiseWeightGrad(x, new Float32Array(31), new Float32Array(18), geometry, 1)).toThrow('dy has 31 values, the geometry needs 32');
    expect(() => lib.depthwiseWeightGrad(x, dy, new Float32Array(18), Int32Array.of(1, 2, 4), 1)).toThrow('geometry is not an Int32Array of 14 values');
    expect(() => lib.depthwiseWeightGrad(x, dy, new Float32Array(18), Int32Array.of(1, 2, 4, 4, 4, 4, 3, 3, 0, 1, 1, 1, 1, 1), 1)).toThrow('geometry has a size, stride or dilation below 1');
    const shared = new Float32Array(64);
    expect(() => lib.depthwiseWeightGrad(shared.subarray(0, 32), dy, shared.subarray(20, 38), geometry, 1)).toThrow('dw shares memory with x or dy');
    const fourArguments = lib.depthwiseWeightGrad as unknown as (...args: unknown[]) => void;
    expect(() => fourArguments(x, dy, new Float32Array(18), geometry)).toThrow('depthwiseWeightGrad takes 5 arguments');
  });

  test('the dense kernel refuses wrong arrays with an exception, not a crash', () => {
    const lib = addon as Exclude<typeof addon, string>;
    // 1 image, 2 channels 4x4 -> 3 channels 4x4, 3x3, padding 1.
    const geometry = Int32Array.of(1, 2, 4, 4, 3, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1);
    const x = new Float32Array(32);
    const dy = new Float32Array(48);
    expect(() => lib.convWeightGrad(x, dy, new Float32Array(53), geometry, 1)).toThrow('dw has 53 values, the geometry needs 54');
    expect(() => lib.convWeightGrad(x, new Float32Array(47), new Float32Array(54), geometry, 1)).toThrow('dy has 47 values, the geometry needs 48');
    expect(() => lib.convWeightGrad(new Float32Array(33), dy, new Float32Array(54), geometry, 1)).toThrow('x has 33 values, the geometry needs 32');
    expect(() => lib.convWeightGrad(x, dy, new Float32Array(54), geometry.subarray(0, 14), 1)).toThrow('geometry is not an Int32Array of 15 values');
    expect(() => lib.convWeightGrad(x, dy, new Float32Array(54), Int32Array.of(1, 2, 4, 4, 0, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1), 1)).toThrow('geometry has a size, stride or dilation below 1');
    expect(() => lib.convWeightGrad(x, dy, new Float32Array(54), Int32Array.of(1, 2, 4, 4, 3, 4, 4, 3, 3, 1, 1, -1, 1, 1, 1), 1)).toThrow('or a negative pad');
    const shared = new Float32Array(128);
    expect(() => lib.convWeightGrad(x, shared.subarray(0, 48), shared.subarray(40, 94), geometry, 1)).toThrow('dw shares memory with x or dy');
    expect(() => lib.convWeightGrad(x, dy, new Float32Array(54), geometry, 'two' as unknown as number)).not.toThrow();
    // An empty batch: dW is zero.
    const empty = Float32Array.from({ length: 54 }, () => 7);
    lib.convWeightGrad(new Float32Array(0), new Float32Array(0), empty, Int32Array.of(0, 2, 4, 4, 3, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1), 2);
    expect(empty.every((v) => v === 0)).toBe(true);
  });
});
