/**
 * The native depthwise weight gradient of the Node trainer's fast path (src/passes/external-depthwise-grads.ts takes
 * it out of the training session, src/native/depthwise-weight-grad.cc computes it) against the standard ONNX
 * formulation the artifacts keep. Skipped where the addon is not built, except in CI (as test/fused-optimizer.test.ts).
 */
import * as ort from 'onnxruntime-node';
import { defineModel, nn } from '../src/index';
import type { Tensor } from '../src/dsl/builder';
import { buildTrainingGraph } from '../src/model/training-graph';
import { NativeDepthwiseGrads } from '../src/native/depthwise-grads';
import { nativeAddon } from '../src/native/native-addon';
import { decodeModel } from '../src/onnx/read';
import { encodeModel } from '../src/onnx/write';
import { externalizeDepthwiseGrads, hasDepthwiseGrads } from '../src/passes/external-depthwise-grads';
import { Rng } from '../src/util/rng';

const addon = nativeAddon();
if (typeof addon === 'string' && (process.env.CI !== undefined || process.env.DEEPVISION_NATIVE_ADDON !== undefined) && process.env.DEEPVISION_NATIVE !== 'off') {
  throw new Error(`CI builds the native fast path, but it is not available: ${addon}`);
}
const native = typeof addon === 'string' ? describe.skip : describe;

interface Geometry { kernel: number; stride: number; padding: number; dilation: number; size: number }

/** A stem convolution, then the depthwise one under test, pooled into a linear classifier. */
const model = (g: Geometry) => defineModel({
  name: 'depthwise-test',
  defaults: { numClasses: 4 },
  inputs: () => [{ name: 'input', shape: ['batch', 3, g.size, g.size] }],
  create: () => {
    class Net extends nn.Module {
      readonly stem = new nn.Conv2d(3, 6, 3, { padding: 1 });
      readonly dw = new nn.Conv2d(6, 6, g.kernel, { stride: g.stride, padding: g.padding, dilation: g.dilation, groups: 6 });
      readonly fc = new nn.Linear(6, 4);
      forward(x: Tensor): Tensor {
        return this.fc.forward(new nn.Flatten().forward(new nn.GlobalAvgPool().forward(this.dw.forward(new nn.ReLU().forward(this.stem.forward(x))))));
      }
    }
    return new Net();
  },
});

/** The gradients of one batch from the standard graph, and from the rewritten one completed natively. */
async function bothWays(g: Geometry, threads = 2) {
  const graph = buildTrainingGraph(model(g));
  const rng = new Rng(`depthwise-${JSON.stringify(g)}`);
  const batch = 5;
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
  const recipes = externalizeDepthwiseGrads(copy);
  const grads = NativeDepthwiseGrads.create(recipes, ort.Tensor, threads) as NativeDepthwiseGrads;
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

native('native depthwise weight gradients', () => {
  test.each([
    ['3x3, stride 1, padding 1', { kernel: 3, stride: 1, padding: 1, dilation: 1, size: 12 }],
    ['3x3, stride 2, padding 1 (MobileNetV2 downsampling)', { kernel: 3, stride: 2, padding: 1, dilation: 1, size: 13 }],
    ['5x5, stride 2, padding 2', { kernel: 5, stride: 2, padding: 2, dilation: 1, size: 11 }],
    ['3x3, dilation 2, padding 2', { kernel: 3, stride: 1, padding: 2, dilation: 2, size: 10 }],
    ['3x3, no padding, rows of more than 8 columns', { kernel: 3, stride: 1, padding: 0, dilation: 1, size: 21 }],
    // 40 rows of 42: the kernel's float lanes go into double several times within each plane.
    ['3x3, stride 1, a plane longer than one flush of the lanes', { kernel: 3, stride: 1, padding: 1, dilation: 1, size: 40 }],
    ['3x3, padding 3 (wider than the kernel)', { kernel: 3, stride: 2, padding: 3, dilation: 1, size: 9 }],
    // One column: the second column phase of a stride-2 layer holds no pixel of the image at all.
    ['1x1, stride 2, a 1x1 image', { kernel: 1, stride: 2, padding: 0, dilation: 1, size: 1 }],
  ])('%s: the same gradients as the standard graph', async (_, g) => {
    const { standard, fast, recipes, outputs } = await bothWays(g);
    expect(recipes.map((r) => r.param)).toEqual(['dw.weight']);
    expect(relativeDifference(standard['dw.weight_grad']!, fast['dw.weight_grad']!)).toBeLessThan(1e-5);
    // Every other output is computed by the same nodes as before.
    for (const name of outputs.filter((n) => n !== 'dw.weight_grad')) expect(fast[name]!.data).toEqual(standard[name]!.data);
    // x and dY leave the outputs once used, so that the step does not keep them alive until a garbage collection.
    expect(Object.keys(fast).sort()).toEqual([...outputs].sort());
  });

  test('the result does not depend on the number of threads', async () => {
    const g = { kernel: 3, stride: 2, padding: 1, dilation: 1, size: 13 };
    const [one, three] = [await bothWays(g, 1), await bothWays(g, 3)];
    expect(three.fast['dw.weight_grad']!.data).toEqual(one.fast['dw.weight_grad']!.data);
  });

  test('graphs without a depthwise convolution are left alone', () => {
    const graph = buildTrainingGraph(defineModel({
      name: 'plain', defaults: {}, inputs: () => [{ name: 'input', shape: ['batch', 3, 8, 8] }],
      create: () => new nn.Sequential(new nn.Conv2d(3, 4, 3, { padding: 1, groups: 1 }), new nn.Flatten(), new nn.Linear(256, 3)),
    }));
    expect(hasDepthwiseGrads(graph.model)).toBe(false);
    const before = encodeModel(graph.model);
    expect(externalizeDepthwiseGrads(graph.model)).toEqual([]);
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
});
