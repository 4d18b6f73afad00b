import * as F from '../../dsl/functional';
import type { Tensor } from '../../dsl/builder';
import type { Shape } from '../../ir/shape';
import { TensorData } from '../../ir/tensor';
import type { GradContext, GradRule } from '../gradient-rule';
import { zerosLike } from '../helpers';

/** The window of a 2-D convolution with explicit pads: what its backward formulations need besides tensors. */
export interface Conv2dGeometry {
  kernel: [number, number];
  strides: [number, number];
  pads: [number, number, number, number];
  dilations: [number, number];
  group: number;
}

/** Conv: dX (convBackpropInput), dW (convBackpropFilter), dB (dY summed over batch and space; see biasCancels). */
export const Conv: GradRule = (ctx) => [
  () => convBackpropInput(ctx.input(0).shape, ctx.outputGrad(), ctx.input(1), convGeometry(ctx)),
  () => convBackpropFilter(ctx.input(0), ctx.outputGrad(), ctx.input(1).shape, convGeometry(ctx)),
  () => (biasCancels(ctx) ? zerosLike(ctx.input(2)) : F.reduceSum(ctx.outputGrad(), [0, 2, 3], false)),
];

/**
 * Whether only training-mode batch norms read the convolution's output: they subtract the batch mean per channel,
 * so the bias does not change the loss and its gradient is exactly zero. The sum over dY would give rounding noise
 * instead, which Adam scales to steps of the full learning rate, differently on every path that sums in another
 * order (the native trainer's kernels, the page, PyTorch).
 */
function biasCancels(ctx: GradContext): boolean {
  const y = ctx.node.outputs[0];
  const readers = ctx.forwardReaders(0);
  return readers.length > 0 && readers.every((n) => n.opType === 'BatchNormalization' && n.domain === '' && n.attr('training_mode', 'int') === 1
    && n.inputs.lastIndexOf(y) === 0);
}

/** The geometry of a Conv node; the gradients are implemented for 2-D convolutions with explicit pads. */
function convGeometry(ctx: GradContext): Conv2dGeometry {
  const w = ctx.input(1);
  if (ctx.input(0).rank !== 4) throw new Error('Conv gradients are implemented for 2-D convolutions');
  if (ctx.string('auto_pad', 'NOTSET') !== 'NOTSET') throw new Error('Conv gradients need explicit pads (auto_pad NOTSET)');
  return {
    kernel: w.shape.slice(2) as [number, number],
    strides: (ctx.ints('strides') ?? [1, 1]) as [number, number],
    pads: (ctx.ints('pads') ?? [0, 0, 0, 0]) as [number, number, number, number],
    dilations: (ctx.ints('dilations') ?? [1, 1]) as [number, number],
    group: ctx.int('group', 1),
  };
}

/**
 * dX of a 2-D convolution with input shape `inputShape` [N, C, H, W]. With stride and dilation 1 (the depthwise and
 * 3x3 layers of MobileNetV2 and of the CNNs), a Conv of dY with the kernel flipped in space and its channel axes
 * swapped, padded by kernel - 1 - pad: the same sums as the adjoint, on the provider's forward kernels, which
 * onnxruntime's CPU provider runs 2-3x faster than its ConvTranspose (measured in isolation, 2 threads: depthwise
 * 3x3 [16, 144, 56, 56] 36-44 ms against 72-120 ms; dense 3x3 64 -> 64 on [64, 64, 16, 16] 24-35 ms against 87-95
 * ms). Otherwise (strides, dilations, grouped but not depthwise, pads wider than the kernel) ONE ConvTranspose of
 * dY with the forward weights, its output_padding / end pads making the result exactly the input's size.
 * @public named backward building block, as tfjs-core names its own: for formulations beyond the rules
 */
export function convBackpropInput(inputShape: Shape, dy: Tensor, weight: Tensor, geo: Conv2dGeometry): Tensor {
  const flipped = flippedKernel(weight, geo);
  if (flipped !== undefined) {
    const [kh, kw] = geo.kernel;
    const [top, left, bottom, right] = geo.pads;
    return dy.builder.op('Conv', [dy, flipped], {
      kernel_shape: geo.kernel, pads: [kh - 1 - top, kw - 1 - left, kh - 1 - bottom, kw - 1 - right], group: geo.group,
    }, 'conv2d');
  }
  const { pads, outputPadding } = transposedPadding(inputShape.slice(2) as number[], dy.shape.slice(2) as number[], geo);
  return dy.builder.op('ConvTranspose', [dy, weight], {
    kernel_shape: geo.kernel, strides: geo.strides, dilations: geo.dilations, group: geo.group, pads, output_padding: outputPadding,
  }, 'conv2d');
}

/**
 * The kernel of the convolution that computes dX as a forward Conv, or undefined where that does not apply: W
 * [M, C, kH, kW] as [C, M, kH, kW] (depthwise W [C, 1, kH, kW] stays as it is), reversed along both spatial axes.
 */
function flippedKernel(weight: Tensor, geo: Conv2dGeometry): Tensor | undefined {
  const [m, perGroup] = weight.shape;
  const unit = geo.strides.every((s) => s === 1) && geo.dilations.every((d) => d === 1);
  const padsFit = geo.pads.every((p, i) => p >= 0 && p <= geo.kernel[i % 2]! - 1);
  const depthwise = perGroup === 1 && m === geo.group;
  if (!unit || !padsFit || (geo.group !== 1 && !depthwise)) return undefined;
  const [kh, kw] = geo.kernel;
  const swapped = geo.group === 1 ? F.transpose(weight, [1, 0, 2, 3]) : weight;
  return F.slice(swapped, [-1, -1], [-(kh + 1), -(kw + 1)], [2, 3], [-1, -1]);
}

/** Pads and output_padding of a ConvTranspose that maps an [OH, OW] grid back onto the [H, W] input. */
export function transposedPadding(input: number[], output: number[], geo: Omit<Conv2dGeometry, 'group'>): { pads: number[]; outputPadding: number[] } {
  const begin = [geo.pads[0], geo.pads[1]];
  const end = [0, 0];
  const outputPadding = [0, 0];
  for (let i = 0; i < 2; i++) {
    if (typeof input[i] !== 'number' || typeof output[i] !== 'number') throw new Error('Conv/pool gradients need static spatial sizes');
    const covered = geo.strides[i]! * (output[i]! - 1) + geo.dilations[i]! * (geo.kernel[i]! - 1) + 1;
    const extra = input[i]! + begin[i]! - covered;
    if (extra >= 0) outputPadding[i] = extra;
    else end[i] = -extra;
  }
  return { pads: [...begin, ...end], outputPadding };
}

/**
 * dW of a 2-D convolution of x with a filter of shape `filterShape` [M, C/group, kH, kW]: emits ONE GEMM over a
 * channel-major im2col: the columns [C*kH*kW, N*OH*OW] (see im2colByConv) times dY transposed to [M, N*OH*OW]
 * (K = N*OH*OW, large enough for the GEMM to run near peak). Measured in onnxruntime 1.30 (2 threads, batch 64, the
 * reference CNN's layers): 2.4 / 7.2 / 5.9 ms against 4.4 / 7.2 / 7.8 ms for one small GEMM per image and offset,
 * before the im2col became a convolution. Grouped convolutions use the same im2col with one GEMM per group
 * (MobileNetV2's depthwise layers: 3.3x faster than one strided Slice per offset).
 * @public named backward building block, as tfjs-core names its own: for formulations beyond the rules
 */
export function convBackpropFilter(x: Tensor, dy: Tensor, filterShape: Shape, geo: Conv2dGeometry): Tensor {
  const [oh, ow] = dy.shape.slice(2) as [number, number];
  const [m, cPerGroup, kh, kw] = filterShape as [number, number, number, number];
  if (typeof oh !== 'number' || typeof ow !== 'number') throw new Error('Conv gradients need static spatial sizes');
  if (geo.group === 1 && isPointwise(geo, kh, kw) && oh * ow >= POINTWISE_BATCHED_MIN_POSITIONS) {
    // A 1x1 convolution over a large grid: one GEMM per image, dY [M, HW] times x^T [HW, C], summed over the batch.
    // No im2col and no transposed copies of x and dY (the transpose of x folds into the GEMM); see the constant.
    const perImage = F.matmul(F.reshape(dy, [-1, m, oh * ow]), F.transpose(F.reshape(x, [-1, cPerGroup, oh * ow]), [0, 2, 1]));
    return F.reshape(F.reduceSum(perImage, [0], false), [m, cPerGroup, 1, 1]);
  }
  if (geo.group === 1) {
    const cols = im2colByConv(x, geo, kh, kw);
    const gRows = F.reshape(F.transpose(dy, [1, 0, 2, 3]), [m, -1]);
    // dW^T = cols dY^T rather than dY cols^T: the GEMM packs its right operand, and dY^T is the smaller one
    // (4 MB instead of 19 MB on the reference CNN's second layer; -1 ms per step).
    const dwT = F.matmul(cols, F.transpose(gRows, [1, 0]));
    return F.transpose(F.reshape(dwT, [cPerGroup, kh, kw, m]), [3, 0, 1, 2]);
  }
  if (cPerGroup === 1 && m === geo.group) return depthwiseBackpropFilter(x, dy, geo, kh, kw);
  // Grouped: the same im2col, one GEMM per group over its rows.
  const groups = geo.group;
  const cols = F.reshape(im2colByConv(x, geo, kh, kw), [groups, cPerGroup * kh * kw, -1]);
  const gRows = F.reshape(F.transpose(dy, [1, 0, 2, 3]), [groups, m / groups, -1]);
  const dwT = F.matmul(cols, F.transpose(gRows, [0, 2, 1]));
  return F.reshape(F.transpose(dwT, [0, 2, 1]), [m, cPerGroup, kh, kw]);
}

/**
 * dW of a depthwise convolution (one input and one output channel per group) without transposing x or dY: the
 * im2col of every (image, channel) plane at once, as a batch of N*C single-channel images convolved with a constant
 * one-hot kernel [kH*kW, 1, kH, kW] -> [N*C, kH*kW, OH*OW], then one small product per plane with its dY
 * [N*C, OH*OW, 1], summed over the images. The channel-major im2col transposed x and dY to [C, N, ...] first (two
 * full copies each step); measured in isolation in onnxruntime 1.30 on 2 threads, batch 32 (MobileNetV2's layers):
 * 62 / 56 / 59 / 22 / 26 ms instead of 101 / 94 / 96 / 32 / 44 ms at 96x112x112 stride 2, 144x56x56,
 * 32x112x112, 192x28x28, 144x56x56 stride 2, and the same at 7x7.
 */
function depthwiseBackpropFilter(x: Tensor, dy: Tensor, geo: Conv2dGeometry, kh: number, kw: number): Tensor {
  const [c, h, w] = x.shape.slice(1) as [number, number, number];
  const [oh, ow] = dy.shape.slice(2) as [number, number];
  if (![c, h, w].every((d) => typeof d === 'number')) throw new Error('Conv gradients need static channel and spatial sizes');
  const offsets = kh * kw;
  const cols = x.builder.op('Conv', [F.reshape(x, [-1, 1, h, w]), oneHotKernel(x, [offsets, 1, kh, kw])], {
    kernel_shape: [kh, kw], pads: geo.pads, strides: geo.strides, dilations: geo.dilations,
  }, 'im2col');
  const perPlane = F.matmul(F.reshape(cols, [-1, offsets, oh * ow]), F.reshape(dy, [-1, oh * ow, 1]));
  return F.reshape(F.reduceSum(F.reshape(perPlane, [-1, c, offsets]), [0], false), [c, 1, kh, kw]);
}

/**
 * From how many output positions per image a 1x1 convolution's dW is one GEMM per image instead of one GEMM over the
 * im2col: measured in isolation in onnxruntime 1.30 on 2 threads (MobileNetV2's shapes, batch 16), per image is 2-3x
 * faster at 28x28 and above (16 -> 96 channels at 112x112: 10-12 ms against 25-32 ms) and slower at 7x7 (960 -> 160:
 * 10-24 ms against 6-8 ms), where K = 49 is too short a GEMM.
 */
const POINTWISE_BATCHED_MIN_POSITIONS = 28 * 28;

function isPointwise(geo: Conv2dGeometry, kh: number, kw: number): boolean {
  return kh === 1 && kw === 1 && geo.strides.every((s) => s === 1) && geo.dilations.every((d) => d === 1) && geo.pads.every((p) => p === 0);
}

/**
 * The im2col [C*kH*kW, N*OH*OW] of x (rows: channel, then kernel offset), built by one 3-D convolution of x as a
 * batch of C single-channel volumes [C, 1, N, H, W] with a constant one-hot kernel [kH*kW, 1, 1, kH, kW] (exact:
 * each output is one input value times 1). Measured in onnxruntime 1.30: on the CPU the Conv's own multi-threaded
 * im2col replaces a Pad, one strided Slice per offset (which copied rows of OW floats one at a time: 20 % of the
 * reference step) and a Concat: reference CNN update 37-41 ms instead of 40-51 ms, in alternation. On WebGPU
 * (H200) the two formulations train at the same speed.
 */
function im2colByConv(x: Tensor, geo: Conv2dGeometry, kh: number, kw: number): Tensor {
  const [c, h, w] = x.shape.slice(1) as [number, number, number];
  if (![c, h, w].every((d) => typeof d === 'number')) throw new Error('Conv gradients need static channel and spatial sizes');
  const offsets = kh * kw;
  const b = x.builder;
  const kernel = oneHotKernel(x, [offsets, 1, 1, kh, kw]);
  const volumes = F.reshape(F.transpose(x, [1, 0, 2, 3]), [c, 1, -1, h, w]);
  const [top, left, bottom, right] = geo.pads;
  const cols = b.op('Conv', [volumes, kernel], {
    kernel_shape: [1, kh, kw], pads: [0, top, left, 0, bottom, right], strides: [1, ...geo.strides], dilations: [1, ...geo.dilations],
  }, 'im2col');
  return F.reshape(cols, [c * offsets, -1]);
}

/**
 * The constant kernel of an im2col convolution: output channel k copies kernel offset k ([kH*kW, 1, ..., kH, kW],
 * one 1 per output channel), so each output is one input value times 1.
 */
function oneHotKernel(x: Tensor, dims: number[]): Tensor {
  const offsets = dims[0]!;
  const onehot = new Float32Array(offsets * offsets);
  for (let k = 0; k < offsets; k++) onehot[k * offsets + k] = 1;
  return x.builder.constant(TensorData.fromArray(x.dtype, dims, onehot));
}

/** One strided view [N, C, OH, OW] of the padded input per kernel offset, in (kh, kw) order. */
export function im2colViews(padded: Tensor, geo: Omit<Conv2dGeometry, 'group' | 'pads'>, oh: number, ow: number): Tensor[] {
  const views: Tensor[] = [];
  for (let i = 0; i < geo.kernel[0]; i++) {
    for (let j = 0; j < geo.kernel[1]; j++) {
      const h0 = i * geo.dilations[0];
      const w0 = j * geo.dilations[1];
      views.push(F.slice(padded, [h0, w0], [h0 + geo.strides[0] * (oh - 1) + 1, w0 + geo.strides[1] * (ow - 1) + 1], [2, 3], geo.strides));
    }
  }
  return views;
}
