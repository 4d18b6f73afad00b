import { once, unbroadcast } from '../autodiff/helpers';
import * as F from '../dsl/functional';
import type { Tensor } from '../dsl/builder';
import { DType, dtypeFromCode, isFloatingDType } from '../ir/dtype';
import { broadcastOrFail, requireFloat, requireSameDType } from './common';
import { describe } from './infer-context';
import { GradRule, InferContext, NO_GRADIENT, OpRule } from './types';

/** y = f(x), same shape and type; float-only for the transcendental ops. */
export function unary(floatOnly: boolean, grad: GradRule | typeof NO_GRADIENT): OpRule {
  return {
    infer(ctx) {
      const x = ctx.input(0, 'input');
      if (floatOnly) requireFloat(ctx, x, 'input');
      return [x];
    },
    grad,
  };
}

/** Numpy-broadcasting binary op; `resultType` overrides the output element type (comparisons give bool). */
export function binary(grad: GradRule | typeof NO_GRADIENT, resultType?: DType, sameTypes = true): OpRule {
  return {
    infer(ctx) {
      const a = ctx.input(0, 'first operand');
      const b = ctx.input(1, 'second operand');
      if (sameTypes) requireSameDType(ctx, [a, b], ['first operand', 'second operand']);
      return [{ dtype: resultType ?? a.dtype, shape: broadcastOrFail(ctx, [a.shape, b.shape]) }];
    },
    grad,
  };
}

/** dx = dy * f'(x, y), for unary ops whose derivative is written in terms of the input and the output. */
function pointwise(derivative: (x: () => Tensor, y: () => Tensor, g: Tensor) => Tensor): GradRule {
  return (ctx) => [() => derivative(() => ctx.input(0), () => ctx.output(0), ctx.outputGrad())];
}

export const GRADS = {
  Identity: pointwise((_x, _y, g) => g),
  Neg: pointwise((_x, _y, g) => F.neg(g)),
  Abs: pointwise((x, _y, g) => F.where(F.less(x(), 0), F.neg(g), g)),
  // The mask comes from the output: the forward Relu can then still fuse into the Conv/Gemm before it.
  Relu: pointwise((_x, y, g) => F.where(F.greater(y(), 0), g, 0)),
  Sigmoid: pointwise((_x, y, g) => F.mul(g, F.mul(y(), F.sub(1, y())))),
  Tanh: pointwise((_x, y, g) => F.mul(g, F.sub(1, F.mul(y(), y())))),
  Exp: pointwise((_x, y, g) => F.mul(g, y())),
  Log: pointwise((x, _y, g) => F.div(g, x())),
  Sqrt: pointwise((_x, y, g) => F.div(F.mul(g, 0.5), y())),
  Reciprocal: pointwise((_x, y, g) => F.neg(F.mul(g, F.mul(y(), y())))),
  Erf: pointwise((x, _y, g) => F.mul(g, F.mul(2 / Math.sqrt(Math.PI), F.exp(F.neg(F.mul(x(), x())))))),
} satisfies Record<string, GradRule>;

export const LeakyRelu: OpRule = {
  ...unary(true, NO_GRADIENT),
  grad: (ctx) => [() => F.where(F.greater(ctx.input(0), 0), ctx.outputGrad(), F.mul(ctx.outputGrad(), ctx.float('alpha', 0.01)))],
};

export const Add = binary((ctx) => [
  () => unbroadcast(ctx.outputGrad(), ctx.input(0)),
  () => unbroadcast(ctx.outputGrad(), ctx.input(1)),
]);

export const Sub = binary((ctx) => [
  () => unbroadcast(ctx.outputGrad(), ctx.input(0)),
  () => unbroadcast(F.neg(ctx.outputGrad()), ctx.input(1)),
]);

export const Mul = binary((ctx) => [
  () => unbroadcast(F.mul(ctx.outputGrad(), ctx.input(1)), ctx.input(0)),
  () => unbroadcast(F.mul(ctx.outputGrad(), ctx.input(0)), ctx.input(1)),
]);

export const Div = binary((ctx) => {
  const gOverB = once(() => F.div(ctx.outputGrad(), ctx.input(1)));
  return [
    () => unbroadcast(gOverB(), ctx.input(0)),
    // d(a/b)/db = -(a/b)/b: reuse the forward output.
    () => unbroadcast(F.neg(F.mul(gOverB(), ctx.output(0))), ctx.input(1)),
  ];
});

export const Pow = binary((ctx) => [
  () => {
    const [a, p] = [ctx.input(0), ctx.input(1)];
    return unbroadcast(F.mul(ctx.outputGrad(), F.mul(p, F.pow(a, F.sub(p, 1)))), a);
  },
  () => unbroadcast(F.mul(ctx.outputGrad(), F.mul(ctx.output(0), F.log(ctx.input(0)))), ctx.input(1)),
], undefined, false);

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
export const Max = binary(select((a, b) => a.builder.op('Not', [F.less(a, b)], {}, 'maximum')));
export const Min = binary(select((a, b) => a.builder.op('Not', [F.greater(a, b)], {}, 'minimum')));

export const Where: OpRule = {
  infer(ctx) {
    const cond = ctx.input(0, 'condition');
    const x = ctx.input(1, 'x');
    const y = ctx.input(2, 'y');
    if (cond.dtype !== 'bool') ctx.fail(`condition must be bool, got ${cond.dtype}`);
    requireSameDType(ctx, [x, y], ['x', 'y']);
    return [{ dtype: x.dtype, shape: broadcastOrFail(ctx, [cond.shape, x.shape, y.shape]) }];
  },
  grad: (ctx) => [
    undefined,
    () => unbroadcast(F.where(ctx.input(0), ctx.outputGrad(), 0), ctx.input(1)),
    () => unbroadcast(F.where(ctx.input(0), 0, ctx.outputGrad()), ctx.input(2)),
  ],
};

export const Clip: OpRule = {
  infer(ctx) {
    const x = ctx.input(0, 'input');
    for (const [i, role] of [[1, 'min'], [2, 'max']] as const) {
      const bound = ctx.optionalInput(i);
      if (bound === undefined) continue;
      if (bound.shape.length !== 0) ctx.fail(`${role} must be a scalar, got ${describe(bound)}`);
      if (bound.dtype !== x.dtype) ctx.fail(`${role} is ${bound.dtype} but the input is ${x.dtype}`);
    }
    return [x];
  },
  // As PyTorch's clamp: the gradient passes where min <= x <= max.
  grad: (ctx) => [() => {
    const x = ctx.input(0);
    let g = ctx.outputGrad();
    if (ctx.node.inputs[1]) g = F.where(F.less(x, ctx.input(1)), 0, g);
    if (ctx.node.inputs[2]) g = F.where(F.greater(x, ctx.input(2)), 0, g);
    return g;
  }],
};

export const Cast: OpRule = {
  infer(ctx) {
    const x = ctx.input(0, 'input');
    const to = ctx.optionalInt('to');
    if (to === undefined) ctx.fail('attribute to (the target type) is required');
    return [{ dtype: dtypeOfCode(ctx, to!), shape: x.shape }];
  },
  // Only casts between floating types carry a gradient; it is cast back to the input's type.
  grad: (ctx) => [isFloatingDType(ctx.input(0).dtype) && isFloatingDType(ctx.output(0).dtype)
    ? () => F.cast(ctx.outputGrad(), ctx.input(0).dtype)
    : undefined],
};

/** Softmax and LogSoftmax over one axis (opset 13 semantics). */
function softmaxFamily(grad: GradRule): OpRule {
  return {
    infer(ctx) {
      const x = ctx.input(0, 'input');
      requireFloat(ctx, x, 'input');
      const axis = ctx.int('axis', -1);
      if (axis < -x.shape.length || axis >= x.shape.length) ctx.fail(`axis ${axis} is out of range for input ${describe(x)}`);
      return [x];
    },
    grad,
  };
}

/** dx = y * (g - sum(g * y)) along the axis. */
export const Softmax = softmaxFamily((ctx) => [() => {
  const y = ctx.output(0);
  const g = ctx.outputGrad();
  return F.mul(y, F.sub(g, F.reduceSum(F.mul(g, y), [ctx.int('axis', -1)])));
}]);

/** dx = g - softmax(x) * sum(g) along the axis, with softmax(x) = exp(y). */
export const LogSoftmax = softmaxFamily((ctx) => [() => {
  const g = ctx.outputGrad();
  return F.sub(g, F.mul(F.exp(ctx.output(0)), F.reduceSum(g, [ctx.int('axis', -1)])));
}]);

/** Logical ops (bool in, bool out); no gradient. */
export const Not: OpRule = {
  infer(ctx) {
    const x = ctx.input(0, 'input');
    if (x.dtype !== 'bool') ctx.fail(`input must be bool, got ${x.dtype}`);
    return [x];
  },
  grad: NO_GRADIENT,
};

function dtypeOfCode(ctx: InferContext, code: number): DType {
  try {
    return dtypeFromCode(code);
  } catch {
    return ctx.fail(`unknown target type ${code}`);
  }
}

