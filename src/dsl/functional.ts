/**
 * The DSL's functional ops. Each adds ONNX nodes to the graph being built and returns the result; operands may
 * be tensors, module parameters or plain numbers (scalars of the other operand's type).
 */
import { floatAttr } from '../ir/attribute';
import { DType, dtypeCode } from '../ir/dtype';
import { TensorData } from '../ir/tensor';
import { activeBuilder, Bindable, GraphBuilder } from './builder';
import { Tensor } from './builder';

export type TensorLike = Tensor | Bindable | number;

function builderOf(...xs: unknown[]): GraphBuilder {
  for (const x of xs) if (x instanceof Tensor) return x.builder;
  return activeBuilder();
}

/** Resolves a parameter to the tensor bound to it, and a number to a scalar of `dtype`. */
export function asTensor(x: TensorLike, b: GraphBuilder = builderOf(x), dtype: DType = 'float32'): Tensor {
  if (x instanceof Tensor) return x;
  if (typeof x === 'number') return b.scalar(x, dtype);
  const t = b.bound(x);
  if (t === undefined) throw new Error(`parameter '${x.name || '(unnamed)'}' is not part of the model being built; assign its module to a property of the model`);
  return t;
}

/** Both operands as tensors; a number takes the type of the other operand. */
function operands(a: TensorLike, bIn: TensorLike): [Tensor, Tensor, GraphBuilder] {
  const b = builderOf(a, bIn);
  const dtype = a instanceof Tensor ? a.dtype : bIn instanceof Tensor ? bIn.dtype : 'float32';
  return [asTensor(a, b, dtype), asTensor(bIn, b, dtype), b];
}

function binaryOp(opType: 'Add' | 'Sub' | 'Mul' | 'Div' | 'Pow' | 'Max' | 'Min' | 'Equal' | 'Less' | 'Greater', name: string) {
  return (a: TensorLike, b: TensorLike): Tensor => {
    const [x, y, builder] = operands(a, b);
    return builder.op(opType, [x, y], {}, name);
  };
}

function unaryOp(opType: 'Relu' | 'Sigmoid' | 'Tanh' | 'Neg' | 'Exp' | 'Log' | 'Sqrt' | 'Abs' | 'Identity' | 'Reciprocal' | 'Erf' | 'Sign', name: string) {
  return (x: TensorLike): Tensor => {
    const t = asTensor(x);
    return t.builder.op(opType, [t], {}, name);
  };
}

export const add = binaryOp('Add', 'add');
export const sub = binaryOp('Sub', 'sub');
export const mul = binaryOp('Mul', 'mul');
export const div = binaryOp('Div', 'div');
export const pow = binaryOp('Pow', 'pow');
export const maximum = binaryOp('Max', 'maximum');
export const minimum = binaryOp('Min', 'minimum');
export const equal = binaryOp('Equal', 'equal');
export const less = binaryOp('Less', 'less');
export const greater = binaryOp('Greater', 'greater');

export const relu = unaryOp('Relu', 'relu');
export const sigmoid = unaryOp('Sigmoid', 'sigmoid');
export const tanh = unaryOp('Tanh', 'tanh');
export const neg = unaryOp('Neg', 'neg');
export const exp = unaryOp('Exp', 'exp');
export const log = unaryOp('Log', 'log');
export const sqrt = unaryOp('Sqrt', 'sqrt');
export const abs = unaryOp('Abs', 'abs');
export const reciprocal = unaryOp('Reciprocal', 'reciprocal');
export const erf = unaryOp('Erf', 'erf');
export const identity = unaryOp('Identity', 'identity');
/** -1, 0 or 1 by the sign of each element. */
export const sign = unaryOp('Sign', 'sign');

export function leakyRelu(x: TensorLike, negativeSlope = 0.01): Tensor {
  const t = asTensor(x);
  return t.builder.op('LeakyRelu', [t], { alpha: floatAttr(negativeSlope) }, 'leakyRelu');
}

export function softmax(x: TensorLike, axis = -1): Tensor {
  const t = asTensor(x);
  return t.builder.op('Softmax', [t], { axis }, 'softmax');
}

export function logSoftmax(x: TensorLike, axis = -1): Tensor {
  const t = asTensor(x);
  return t.builder.op('LogSoftmax', [t], { axis }, 'logSoftmax');
}

export function matmul(a: TensorLike, b: TensorLike): Tensor {
  const [x, y, builder] = operands(a, b);
  return builder.op('MatMul', [x, y], {}, 'matmul');
}

/**
 * y = x @ W^T + b with W [out, in], as PyTorch's Linear. A matrix input becomes one Gemm (which ONNX Runtime
 * runs as a single GEMM with the bias fused); higher ranks use MatMul over the last axis.
 */
export function linear(x: TensorLike, weight: TensorLike, bias?: TensorLike): Tensor {
  const t = asTensor(x);
  const b = t.builder;
  const w = asTensor(weight, b);
  if (t.rank === 2) return b.op('Gemm', [t, w, bias === undefined ? undefined : asTensor(bias, b)], { transB: 1 }, 'linear');
  const y = b.op('MatMul', [t, b.op('Transpose', [w], { perm: [1, 0] }, 'linear')], {}, 'linear');
  return bias === undefined ? y : b.op('Add', [y, asTensor(bias, b)], {}, 'linear');
}

type Pair = number | [number, number];
const pair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : v);

export interface Conv2dOptions {
  stride?: Pair;
  /** Zero padding on each side: one number, [h, w], or [top, left, bottom, right]. */
  padding?: Pair | [number, number, number, number];
  dilation?: Pair;
  groups?: number;
}

function pads4(padding: Pair | [number, number, number, number] | undefined): number[] {
  if (padding === undefined) return [0, 0, 0, 0];
  if (Array.isArray(padding) && padding.length === 4) return padding;
  const [h, w] = pair(padding as Pair);
  return [h, w, h, w];
}

/** 2-D convolution: x [N, C, H, W], weight [M, C/groups, kH, kW], bias [M]. */
export function conv2d(x: TensorLike, weight: TensorLike, bias?: TensorLike, options: Conv2dOptions = {}): Tensor {
  const t = asTensor(x);
  const b = t.builder;
  const w = asTensor(weight, b);
  if (t.rank !== 4) throw b.error('conv2d', `input must be [N, C, H, W], got ${t.dtype}[${t.shape.join(', ')}]`);
  if (w.rank !== 4) throw b.error('conv2d', `weight must be [M, C/groups, kH, kW], got [${w.shape.join(', ')}]`);
  return b.op('Conv', [t, w, bias === undefined ? undefined : asTensor(bias, b)], {
    kernel_shape: w.shape.slice(2) as number[],
    strides: pair(options.stride ?? 1),
    pads: pads4(options.padding),
    dilations: pair(options.dilation ?? 1),
    group: options.groups ?? 1,
  }, 'conv2d');
}

export interface Pool2dOptions {
  stride?: Pair;
  padding?: Pair | [number, number, number, number];
  ceilMode?: boolean;
}

function pool2d(opType: 'MaxPool' | 'AveragePool', name: string, x: TensorLike, kernel: Pair, options: Pool2dOptions & { countIncludePad?: boolean }): Tensor {
  const t = asTensor(x);
  if (t.rank !== 4) throw t.builder.error(name, `input must be [N, C, H, W], got ${t.dtype}[${t.shape.join(', ')}]`);
  return t.builder.op(opType, [t], {
    kernel_shape: pair(kernel),
    strides: pair(options.stride ?? kernel),
    pads: pads4(options.padding),
    ceil_mode: options.ceilMode ? 1 : undefined,
    count_include_pad: opType === 'AveragePool' && options.countIncludePad ? 1 : undefined,
  }, name);
}

/** Max pooling; the stride defaults to the kernel size, as in PyTorch. */
export function maxPool2d(x: TensorLike, kernel: Pair, options: Pool2dOptions = {}): Tensor {
  return pool2d('MaxPool', 'maxPool2d', x, kernel, options);
}

/** Average pooling; padded cells are left out of the average unless countIncludePad. */
export function avgPool2d(x: TensorLike, kernel: Pair, options: Pool2dOptions & { countIncludePad?: boolean } = {}): Tensor {
  return pool2d('AveragePool', 'avgPool2d', x, kernel, options);
}

/** Mean over all spatial positions: [N, C, H, W] -> [N, C, 1, 1]. */
export function globalAvgPool(x: TensorLike): Tensor {
  const t = asTensor(x);
  return t.builder.op('GlobalAveragePool', [t], {}, 'globalAvgPool');
}

export interface BatchNormOptions {
  weight: TensorLike;
  bias: TensorLike;
  runningMean: TensorLike;
  runningVar: TensorLike;
  eps?: number;
  /** PyTorch's convention: running = (1 - momentum) * running + momentum * batch statistic. */
  momentum?: number;
}

/**
 * Batch normalization over axis 1. Eval graphs use the running statistics; training graphs use the batch's
 * and, when the running statistics are module buffers, record their new values as state updates.
 */
export function batchNorm(x: TensorLike, options: BatchNormOptions): Tensor {
  const t = asTensor(x);
  const b = t.builder;
  const inputs = [t, ...[options.weight, options.bias, options.runningMean, options.runningVar].map((p) => asTensor(p, b))];
  const eps = floatAttr(options.eps ?? 1e-5);
  if (!b.training) return b.op('BatchNormalization', inputs, { epsilon: eps }, 'batchNorm');
  // ONNX's momentum weighs the old running value, PyTorch's the new batch statistic.
  const momentum = floatAttr(1 - (options.momentum ?? 0.1));
  const [y, mean, variance] = b.emit('BatchNormalization', inputs, { epsilon: eps, momentum, training_mode: 1 }, { op: 'batchNorm', outputs: 3 });
  const isBuffer = (p: TensorLike): p is Bindable => typeof p === 'object' && !(p instanceof Tensor);
  if (isBuffer(options.runningMean)) b.stateUpdates.set(options.runningMean.name, mean!);
  if (isBuffer(options.runningVar)) b.stateUpdates.set(options.runningVar.name, variance!);
  return y!;
}

/** The graph-input name prefix of the uniform noise a training graph's dropout masks are drawn from. */
export const DROPOUT_NOISE = 'dropout_noise.';

/**
 * Dropout: in training graphs zeroes elements with probability p and scales the rest by 1/(1-p); identity in eval.
 * The mask comes from a graph input of uniform noise in [0, 1) (`dropout_noise.<k>`, the shape of x) that the
 * trainer fills from its seeded, checkpointed generator: runs and resumed runs are reproducible on every provider,
 * which ONNX's Dropout (onnxruntime's own generator, restarted with each session) would not give.
 */
export function dropout(x: TensorLike, p = 0.5): Tensor {
  const t = asTensor(x);
  const b = t.builder;
  if (!(p >= 0 && p < 1)) throw b.error('dropout', `probability must be in [0, 1), got ${p}`);
  if (!b.training || p === 0) return t;
  const index = b.graph.inputs.filter((v) => v.name.startsWith(DROPOUT_NOISE)).length;
  const noise = b.input(`${DROPOUT_NOISE}${index}`, t.dtype, t.shape);
  return where(greater(noise, p), mul(t, 1 / (1 - p)), 0);
}

export function flatten(x: TensorLike, axis = 1): Tensor {
  const t = asTensor(x);
  return t.builder.op('Flatten', [t], { axis }, 'flatten');
}

/** Reshape to `shape`; 0 keeps the input's dim at that position, -1 takes the rest. */
export function reshape(x: TensorLike, shape: readonly number[]): Tensor {
  const t = asTensor(x);
  return t.builder.op('Reshape', [t, t.builder.ints(shape)], {}, 'reshape');
}

export function transpose(x: TensorLike, perm?: readonly number[]): Tensor {
  const t = asTensor(x);
  return t.builder.op('Transpose', [t], { perm: perm === undefined ? undefined : [...perm] }, 'transpose');
}

export function concat(xs: readonly TensorLike[], axis = 0): Tensor {
  if (xs.length === 0) throw new Error('concat needs at least one tensor');
  const b = builderOf(...xs);
  const ts = xs.map((x) => asTensor(x, b));
  return b.op('Concat', ts, { axis }, 'concat');
}

/** Splits along an axis into the given sizes, or into `parts` equal parts when a number is given. */
export function split(x: TensorLike, sizesOrParts: number | readonly number[], axis = 0): Tensor[] {
  const t = asTensor(x);
  const b = t.builder;
  const sizes = typeof sizesOrParts === 'number' ? undefined : b.ints(sizesOrParts);
  const outputs = typeof sizesOrParts === 'number' ? sizesOrParts : sizesOrParts.length;
  return b.emit('Split', [t, sizes], { axis }, { op: 'split', outputs });
}

/** Numpy-style slicing along the given axes (all leading axes by default); ends beyond the size clamp. */
export function slice(x: TensorLike, starts: readonly number[], ends: readonly number[], axes?: readonly number[], steps?: readonly number[]): Tensor {
  const t = asTensor(x);
  const b = t.builder;
  return b.op('Slice', [t, b.ints(starts), b.ints(ends), axes && b.ints(axes), steps && b.ints(steps)], {}, 'slice');
}

/** Picks entries along an axis by integer indices (embedding lookup with axis 0). */
export function gather(x: TensorLike, indices: Tensor, axis = 0): Tensor {
  const t = asTensor(x, indices.builder);
  return t.builder.op('Gather', [t, indices], { axis }, 'gather');
}

/** Mean over axes (all when omitted). */
export function reduceMean(x: TensorLike, axes?: readonly number[], keepdims = true): Tensor {
  const t = asTensor(x);
  return t.builder.op('ReduceMean', [t], { axes: axes && [...axes], keepdims: keepdims ? 1 : 0 }, 'reduceMean');
}

/** Sum over axes (all when omitted). */
export function reduceSum(x: TensorLike, axes?: readonly number[], keepdims = true): Tensor {
  const t = asTensor(x);
  return t.builder.op('ReduceSum', [t, axes && t.builder.ints(axes)], { keepdims: keepdims ? 1 : 0 }, 'reduceSum');
}

export function reduceMax(x: TensorLike, axes?: readonly number[], keepdims = true): Tensor {
  const t = asTensor(x);
  return t.builder.op('ReduceMax', [t], { axes: axes && [...axes], keepdims: keepdims ? 1 : 0 }, 'reduceMax');
}

/** Limits values to [min, max]; either bound may be left out. */
export function clip(x: TensorLike, min?: number, max?: number): Tensor {
  const t = asTensor(x);
  const b = t.builder;
  return b.op('Clip', [t, min === undefined ? undefined : b.scalar(min, t.dtype), max === undefined ? undefined : b.scalar(max, t.dtype)], {}, 'clip');
}

export function cast(x: TensorLike, dtype: DType): Tensor {
  const t = asTensor(x);
  return t.builder.op('Cast', [t], { to: dtypeCode(dtype) }, 'cast');
}

/** Elementwise choice: a where condition holds, else b. */
export function where(condition: Tensor, a: TensorLike, b: TensorLike): Tensor {
  const [x, y, builder] = operands(a, b);
  return builder.op('Where', [condition, x, y], {}, 'where');
}

export function unsqueeze(x: TensorLike, axes: readonly number[]): Tensor {
  const t = asTensor(x);
  return t.builder.op('Unsqueeze', [t, t.builder.ints(axes)], {}, 'unsqueeze');
}

export function squeeze(x: TensorLike, axes?: readonly number[]): Tensor {
  const t = asTensor(x);
  return t.builder.op('Squeeze', [t, axes && t.builder.ints(axes)], {}, 'squeeze');
}

export function expand(x: TensorLike, shape: readonly number[]): Tensor {
  const t = asTensor(x);
  return t.builder.op('Expand', [t, t.builder.ints(shape)], {}, 'expand');
}
