import * as F from '../../dsl/functional';
import type { Tensor } from '../../dsl/builder';
import { TensorData } from '../../ir/tensor';
import type { GradContext, GradRule } from '../gradient-rule';
import { countOver, reshapeLike, shapeOf } from '../helpers';
import { im2colViews, transposedPadding } from './conv';

/** The window of a 2-D pooling node with explicit pads, and its static input and output grids. * @public named backward building block, as tfjs-core names its own: for formulations beyond the rules
 */
export interface PoolGeometry {
  kernel: [number, number];
  strides: [number, number];
  pads: [number, number, number, number];
  dilations: [number, number];
  input: [number, number];
  output: [number, number];
}

function poolGeometry(ctx: GradContext): PoolGeometry {
  const x = ctx.input(0);
  const y = ctx.output(0);
  if (x.rank !== 4) throw new Error(`${ctx.node.opType} gradients are implemented for 2-D pooling`);
  if (ctx.string('auto_pad', 'NOTSET') !== 'NOTSET') throw new Error(`${ctx.node.opType} gradients need explicit pads (auto_pad NOTSET)`);
  const input = x.shape.slice(2) as [number, number];
  const output = y.shape.slice(2) as [number, number];
  if (![...input, ...output].every((d) => typeof d === 'number')) throw new Error(`${ctx.node.opType} gradients need static spatial sizes`);
  return {
    kernel: ctx.ints('kernel_shape') as [number, number],
    strides: (ctx.ints('strides') ?? [1, 1]) as [number, number],
    pads: (ctx.ints('pads') ?? [0, 0, 0, 0]) as [number, number, number, number],
    dilations: (ctx.ints('dilations') ?? [1, 1]) as [number, number],
    input,
    output,
  };
}

/** Non-overlapping windows that tile the input exactly: gradients are plain nearest-neighbour upsampling. */
function tiles(geo: PoolGeometry): boolean {
  return geo.kernel.every((k, i) => k === geo.strides[i] && geo.input[i] === k * geo.output[i]!)
    && geo.pads.every((p) => p === 0) && geo.dilations.every((d) => d === 1);
}

/**
 * Nearest-neighbour upsampling by integer factors with Resize. Measured in onnxruntime 1.30 on a [64, 64, 64, 64]
 * result: Resize is the fastest formulation (Expand, Concat interleaving and a ones-kernel ConvTranspose are
 * several times slower), provided the session does not run the NCHWc layout pass, which turns it into a slow
 * NCHWc Upsample: training sessions use graph optimization level 'extended'.
 */
function upsample(t: Tensor, factors: [number, number]): Tensor {
  const b = t.builder;
  const scales = b.constant(TensorData.float32([4], [1, 1, factors[0], factors[1]]));
  return b.op('Resize', [t, undefined, scales], {
    mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor',
  }, 'upsample');
}

/**
 * Sums window contributions back onto the input grid (col2im) with a transposed convolution: `stacked` is
 * [N*C, K', OH, OW] and `weight` [K', 1, kH, kW] says where each of the K' planes lands in the window.
 */
function col2im(stacked: Tensor, weight: Tensor, geo: PoolGeometry, like: Tensor): Tensor {
  const { pads, outputPadding } = transposedPadding(geo.input, geo.output, geo);
  const summed = like.builder.op('ConvTranspose', [stacked, weight], {
    kernel_shape: geo.kernel, strides: geo.strides, dilations: geo.dilations, pads, output_padding: outputPadding,
  }, 'col2im');
  return reshapeLike(summed, like);
}

/** Contributions [N, C, OH, OW] per kernel offset, scattered each to its own offset (a one-hot kernel per plane). */
function scatterWindows(contributions: Tensor[], geo: PoolGeometry, like: Tensor): Tensor {
  const [kh, kw] = geo.kernel;
  const k = kh * kw;
  const stacked = F.reshape(F.concat(contributions.map((c) => F.unsqueeze(c, [2])), 2), [-1, k, geo.output[0], geo.output[1]]);
  const oneHot = new Float32Array(k * k);
  for (let i = 0; i < k; i++) oneHot[i * k + i] = 1;
  return col2im(stacked, like.builder.constant(TensorData.fromArray(like.dtype, [k, 1, kh, kw], oneHot)), geo, like);
}

/** The input padded for pooling windows, with `fill` (so that padding never wins a max), including ceil-mode overhang. */
function padForWindows(x: Tensor, geo: PoolGeometry, fill: number): Tensor {
  const b = x.builder;
  const extra = [0, 1].map((i) => Math.max(0, geo.strides[i]! * (geo.output[i]! - 1) + geo.dilations[i]! * (geo.kernel[i]! - 1) + 1
    - (geo.input[i]! + geo.pads[i]! + geo.pads[i + 2]!)));
  const pads = [0, 0, geo.pads[0], geo.pads[1], 0, 0, geo.pads[2] + extra[0]!, geo.pads[3] + extra[1]!];
  if (pads.every((p) => p === 0)) return x;
  return b.op('Pad', [x, b.ints(pads), b.scalar(fill, x.dtype)], {}, 'pad');
}

/** MaxPool without the Indices output: see maxPoolBackprop. */
export const MaxPool: GradRule = (ctx) => [() => maxPoolBackprop(ctx.outputGrad(), ctx.input(0), ctx.output(0), poolGeometry(ctx))];

/**
 * dX of a 2-D max pool of `input` (forward result `output`), from the pooled values alone: the Indices output is not
 * used because ORT's WebGPU provider rejects it. An input cell gets the gradient of each window whose maximum it
 * equals; ties share the gradient equally, so the result is a true subgradient. Emits, for windows that tile the
 * input, an equality mask against the upsampled maxima times the upsampled share (AveragePool counts the ties);
 * otherwise one strided view per kernel offset, its mask and share, summed back onto the input grid by a
 * one-hot ConvTranspose (col2im).
 * @public named backward building block, as tfjs-core names its own: for formulations beyond the rules
 */
export function maxPoolBackprop(dy: Tensor, input: Tensor, output: Tensor, geo: PoolGeometry): Tensor {
  if (tiles(geo)) {
    // passes/fuse-relu-mask.ts recognizes this form to move the mask of a ReLU that feeds the pool onto the pooled grid.
    const mask = F.cast(F.equal(input, upsample(output, geo.kernel)), input.dtype);
    // Window sums of the mask = number of tied maxima; average pooling gives it divided by the window size.
    const ties = input.builder.op('AveragePool', [mask], { kernel_shape: geo.kernel, strides: geo.strides }, 'maxPool2d');
    const share = F.div(F.mul(dy, 1 / (geo.kernel[0] * geo.kernel[1])), ties);
    return F.mul(mask, upsample(share, geo.kernel));
  }
  const views = im2colViews(padForWindows(input, geo, -Infinity), geo, geo.output[0], geo.output[1]);
  const masks = views.map((v) => F.cast(F.equal(v, output), input.dtype));
  const ties = masks.reduce((sum, m) => F.add(sum, m));
  const share = F.div(dy, ties);
  return scatterWindows(masks.map((m) => F.mul(m, share)), geo, input);
}

/** AveragePool: each window's gradient, divided by the number of cells it averaged, spread back over the window. */
export const AveragePool: GradRule = (ctx) => [() => {
  const x = ctx.input(0);
  const g = ctx.outputGrad();
  const geo = poolGeometry(ctx);
  const includePad = ctx.int('count_include_pad', 0) === 1;
  const divisors = new Float32Array(geo.output[0] * geo.output[1]);
  for (let oh = 0; oh < geo.output[0]; oh++) {
    for (let ow = 0; ow < geo.output[1]; ow++) {
      const span = (o: number, i: 0 | 1) => {
        const lo = o * geo.strides[i] - geo.pads[i];
        const hi = lo + geo.kernel[i];
        const [min, max] = includePad ? [-geo.pads[i], geo.input[i] + geo.pads[i + 2]!] : [0, geo.input[i]];
        return Math.min(hi, max) - Math.max(lo, min);
      };
      divisors[oh * geo.output[1] + ow] = 1 / (span(oh, 0) * span(ow, 1));
    }
  }
  const share = F.mul(g, x.builder.constant(TensorData.fromArray(x.dtype, [1, 1, ...geo.output], divisors)));
  if (tiles(geo)) return upsample(share, geo.kernel);
  const ones = x.builder.constant(TensorData.fromArray(x.dtype, [1, 1, ...geo.kernel], new Float32Array(geo.kernel[0] * geo.kernel[1]).fill(1)));
  return col2im(F.reshape(share, [-1, 1, ...geo.output]), ones, geo, x);
}];

export const GlobalAveragePool: GradRule = (ctx) => [() => {
  const x = ctx.input(0);
  const g = ctx.outputGrad();
  const spatial = x.shape.slice(2);
  if (spatial.every((d) => typeof d === 'number')) {
    // A broadcasting multiply by a constant [1, 1, H, W] of 1/(H*W) spreads the gradient (no Expand).
    const n = (spatial as number[]).reduce((a, b) => a * b, 1);
    return F.mul(g, x.builder.constant(TensorData.fromArray(x.dtype, [1, 1, ...(spatial as number[])], new Float32Array(n).fill(1 / n))));
  }
  return x.builder.op('Expand', [F.div(g, countOver(x, spatial.map((_, i) => i + 2))), shapeOf(x)], {}, 'globalAvgPool');
}];

export const GlobalMaxPool: GradRule = (ctx) => [() => {
  const x = ctx.input(0);
  const mask = F.cast(F.equal(x, ctx.output(0)), x.dtype);
  const axes = x.shape.slice(2).map((_, i) => i + 2);
  return F.mul(mask, F.div(ctx.outputGrad(), F.reduceSum(mask, axes)));
}];
