import * as F from '../../dsl/functional';
import type { Tensor } from '../../dsl/builder';
import { isFloatingDType } from '../../ir/dtype';
import type { GradRule } from '../gradient-rule';
import type { TensorData } from '../../ir/tensor';
import { once, unbroadcast } from '../helpers';

/** dx = dy * f'(x, y), for unary ops whose derivative is written in terms of the input and the output. */
function pointwise(derivative: (x: () => Tensor, y: () => Tensor, g: Tensor) => Tensor): GradRule {
  return (ctx) => [() => derivative(() => ctx.input(0), () => ctx.output(0), ctx.outputGrad())];
}

export const Identity = pointwise((_x, _y, g) => g);
export const Neg = pointwise((_x, _y, g) => F.neg(g));
export const Abs = pointwise((x, _y, g) => F.where(F.less(x(), 0), F.neg(g), g));
// The mask comes from the output: the forward Relu can then still fuse into the Conv/Gemm before it.
export const Relu = pointwise((_x, y, g) => F.where(F.greater(y(), 0), g, 0));
export const Sigmoid = pointwise((_x, y, g) => F.mul(g, F.mul(y(), F.sub(1, y()))));
export const Tanh = pointwise((_x, y, g) => F.mul(g, F.sub(1, F.mul(y(), y()))));
export const Exp = pointwise((_x, y, g) => F.mul(g, y()));
export const Log = pointwise((x, _y, g) => F.div(g, x()));
export const Sqrt = pointwise((_x, y, g) => F.div(F.mul(g, 0.5), y()));
export const Reciprocal = pointwise((_x, y, g) => F.neg(F.mul(g, F.mul(y(), y()))));
export const Erf = pointwise((x, _y, g) => F.mul(g, F.mul(2 / Math.sqrt(Math.PI), F.exp(F.neg(F.mul(x(), x()))))));

export const LeakyRelu: GradRule = (ctx) => [
  () => F.where(F.greater(ctx.input(0), 0), ctx.outputGrad(), F.mul(ctx.outputGrad(), ctx.float('alpha', 0.01))),
];

export const Add: GradRule = (ctx) => [
  () => unbroadcast(ctx.outputGrad(), ctx.input(0)),
  () => unbroadcast(ctx.outputGrad(), ctx.input(1)),
];

export const Sub: GradRule = (ctx) => [
  () => unbroadcast(ctx.outputGrad(), ctx.input(0)),
  () => unbroadcast(F.neg(ctx.outputGrad()), ctx.input(1)),
];

export const Mul: GradRule = (ctx) => [
  () => unbroadcast(F.mul(ctx.outputGrad(), ctx.input(1)), ctx.input(0)),
  () => unbroadcast(F.mul(ctx.outputGrad(), ctx.input(0)), ctx.input(1)),
];

export const Div: GradRule = (ctx) => {
  const gOverB = once(() => F.div(ctx.outputGrad(), ctx.input(1)));
  return [
    () => unbroadcast(gOverB(), ctx.input(0)),
    // d(a/b)/db = -(a/b)/b: reuse the forward output.
    () => unbroadcast(F.neg(F.mul(gOverB(), ctx.output(0))), ctx.input(1)),
  ];
};

export const Pow: GradRule = (ctx) => [
  () => {
    const [a, p] = [ctx.input(0), ctx.input(1)];
    return unbroadcast(F.mul(ctx.outputGrad(), F.mul(p, F.pow(a, F.sub(p, 1)))), a);
  },
  () => unbroadcast(F.mul(ctx.outputGrad(), F.mul(ctx.output(0), F.log(ctx.input(0)))), ctx.input(1)),
];

/** Max/Min: the gradient goes to the chosen operand (to the first on ties). */
function select(firstWins: (a: Tensor, b: Tensor) => Tensor): GradRule {
  return (ctx) => {
    const mask = once(() => firstWins(ctx.input(0), ctx.input(1)));
    return [
      () => unbroadcast(F.where(mask(), ctx.outputGrad(), 0), ctx.input(0)),
      () => unbroadcast(F.where(mask(), 0, ctx.outputGrad()), ctx.input(1)),
    ];
  };
}
export const Max = select((a, b) => a.builder.op('Not', [F.less(a, b)], {}, 'maximum'));
export const Min = select((a, b) => a.builder.op('Not', [F.greater(a, b)], {}, 'minimum'));

export const Where: GradRule = (ctx) => [
  undefined,
  () => unbroadcast(F.where(ctx.input(0), ctx.outputGrad(), 0), ctx.input(1)),
  () => unbroadcast(F.where(ctx.input(0), 0, ctx.outputGrad()), ctx.input(2)),
];

/**
 * With both bounds constant (ReLU6 and the like), the gradient passes where min < y < max, y the output: as
 * Relu's rule (and PyTorch's ReLU6 and hardtanh), and since y lies strictly inside exactly where x does, the same
 * mask as one from the input. It reads the output only, so the Conv before the Clip can compute the Clip in its
 * own kernel and nothing keeps x (src/passes/lower-conv-nchwc.ts). Otherwise, as PyTorch's clamp: where
 * min <= x <= max.
 */
export const Clip: GradRule = (ctx) => [() => {
  const x = ctx.input(0);
  const g = ctx.outputGrad();
  // The mask as 0/1 floats multiplied in: onnxruntime's CPU Where with a scalar branch is 4x the cost of a compare,
  // and MobileNetV2 has 35 Clips (the two Wheres each took 18 % of its fine-tuning step).
  const [low, high] = [ctx.node.inputs[1] ? ctx.input(1) : undefined, ctx.node.inputs[2] ? ctx.input(2) : undefined];
  if (low === undefined && high === undefined) return g;
  const keep = (outside: Tensor) => F.cast(x.builder.op('Not', [outside], {}, 'clip'), x.dtype);
  if (low === undefined || high === undefined) return F.mul(g, keep(low !== undefined ? F.less(x, low) : F.greater(x, high!)));
  const [lo, hi] = [ctx.constant(1), ctx.constant(2)];
  const inside = strictlyInside(lo, hi, x.dtype);
  if (inside !== undefined) {
    // One Clip to the nearest floats inside the bounds, one Equal of two floats, one Cast: these passes are
    // memory-bound (the Casts alone once took 11 % of MobileNetV2's fine-tuning step).
    const y = ctx.output(0);
    return F.mul(g, F.cast(F.equal(y, F.clip(y, inside[0], inside[1])), x.dtype));
  }
  // Other constant bounds, low <= high (float16, equal bounds): inside exactly where the clipped value equals x.
  if (lo !== undefined && hi !== undefined && lo.size === 1 && hi.size === 1 && lo.typed()[0]! <= hi.typed()[0]!) {
    return F.mul(g, F.cast(F.equal(x, ctx.output(0)), x.dtype));
  }
  return F.mul(g, F.mul(keep(F.less(x, low)), keep(F.greater(x, high))));
}];

/** The smallest normal number of each floating type the rule below moves bounds in. */
const MIN_NORMAL: Partial<Record<string, number>> = { float32: 2 ** -126, float64: 2 ** -1022 };

/**
 * The neighbours just inside constant scalar bounds lo < hi (float32 or float64), so that lo < v < hi exactly where
 * clip(v, in[0], in[1]) = v; undefined where that cannot be said with normal numbers. A neighbour of zero is the
 * smallest normal number rather than the smallest subnormal: GPUs may flush subnormals to zero, which would turn
 * the bound back into zero (an output between zero and 1.2e-38 then gets no gradient).
 */
function strictlyInside(lo: TensorData | undefined, hi: TensorData | undefined, dtype: string): [number, number] | undefined {
  const minNormal = MIN_NORMAL[dtype];
  if (minNormal === undefined || lo === undefined || hi === undefined || lo.size !== 1 || hi.size !== 1) return undefined;
  const [a, b] = [Number(lo.typed()[0]), Number(hi.typed()[0])];
  if (!Number.isFinite(a) || !Number.isFinite(b) || !(a < b)) return undefined;
  const inside = [nextFloat(a, 1, dtype, minNormal), nextFloat(b, -1, dtype, minNormal)] as [number, number];
  const normal = (v: number) => v === 0 || Math.abs(v) >= minNormal;
  return inside[0] <= inside[1] && inside.every(normal) && [a, b].every(normal) ? inside : undefined;
}

/** The number of `dtype` next to v (itself one) towards +infinity (direction 1) or -infinity (-1); zero's is the smallest normal. */
function nextFloat(v: number, direction: 1 | -1, dtype: string, minNormal: number): number {
  if (v === 0) return direction * minNormal;
  const away = (v > 0) === (direction > 0);
  if (dtype === 'float32') {
    const bits = new Int32Array(new Float32Array([v]).buffer);
    bits[0]! += away ? 1 : -1;
    return new Float32Array(bits.buffer)[0]!;
  }
  const bits = new BigInt64Array(new Float64Array([v]).buffer);
  bits[0]! += away ? 1n : -1n;
  return new Float64Array(bits.buffer)[0]!;
}

/** Only casts between floating types carry a gradient; it is cast back to the input's type. */
export const Cast: GradRule = (ctx) => [isFloatingDType(ctx.input(0).dtype) && isFloatingDType(ctx.output(0).dtype)
  ? () => F.cast(ctx.outputGrad(), ctx.input(0).dtype)
  : undefined];

/** dx = y * (g - sum(g * y)) along the axis. */
export const Softmax: GradRule = (ctx) => [() => {
  const y = ctx.output(0);
  const g = ctx.outputGrad();
  return F.mul(y, F.sub(g, F.reduceSum(F.mul(g, y), [ctx.int('axis', -1)])));
}];

/** dx = g - softmax(x) * sum(g) along the axis, with softmax(x) = exp(y). */
export const LogSoftmax: GradRule = (ctx) => [() => {
  const g = ctx.outputGrad();
  return F.sub(g, F.mul(F.exp(ctx.output(0)), F.reduceSum(g, [ctx.int('axis', -1)])));
}];
