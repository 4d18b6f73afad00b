import { DType, dtypeFromCode } from '../ir/dtype';
import { broadcastOrFail, requireFloat, requireSameDType } from './common';
import { describe } from './infer-context';
import type { InferContext, ShapeRule } from './types';

/** y = f(x), same shape and type; float-only for the transcendental ops. */
export function unary(floatOnly: boolean): ShapeRule {
  return {
    infer(ctx) {
      const x = ctx.input(0, 'input');
      if (floatOnly) requireFloat(ctx, x, 'input');
      return [x];
    },
  };
}

/**
 * Numpy-broadcasting binary op; `resultType` overrides the output element type (comparisons give bool), and
 * `sameTypes` false lets the operands differ in type (Pow's exponent).
 */
export function binary(resultType?: DType, sameTypes = true): ShapeRule {
  return {
    infer(ctx) {
      const a = ctx.input(0, 'first operand');
      const b = ctx.input(1, 'second operand');
      if (sameTypes) requireSameDType(ctx, [a, b], ['first operand', 'second operand']);
      return [{ dtype: resultType ?? a.dtype, shape: broadcastOrFail(ctx, [a.shape, b.shape]) }];
    },
  };
}

export const Where: ShapeRule = {
  infer(ctx) {
    const cond = ctx.input(0, 'condition');
    const x = ctx.input(1, 'x');
    const y = ctx.input(2, 'y');
    if (cond.dtype !== 'bool') ctx.fail(`condition must be bool, got ${cond.dtype}`);
    requireSameDType(ctx, [x, y], ['x', 'y']);
    return [{ dtype: x.dtype, shape: broadcastOrFail(ctx, [cond.shape, x.shape, y.shape]) }];
  },
};

export const Clip: ShapeRule = {
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
};

export const Cast: ShapeRule = {
  infer(ctx) {
    const x = ctx.input(0, 'input');
    const to = ctx.optionalInt('to');
    if (to === undefined) ctx.fail('attribute to (the target type) is required');
    return [{ dtype: dtypeOfCode(ctx, to!), shape: x.shape }];
  },
};

/** Softmax and LogSoftmax over one axis (opset 13 semantics). */
export const Softmax: ShapeRule = {
  infer(ctx) {
    const x = ctx.input(0, 'input');
    requireFloat(ctx, x, 'input');
    const axis = ctx.int('axis', -1);
    if (axis < -x.shape.length || axis >= x.shape.length) ctx.fail(`axis ${axis} is out of range for input ${describe(x)}`);
    return [x];
  },
};

/** Logical ops (bool in, bool out). */
export const Not: ShapeRule = {
  infer(ctx) {
    const x = ctx.input(0, 'input');
    if (x.dtype !== 'bool') ctx.fail(`input must be bool, got ${x.dtype}`);
    return [x];
  },
};

function dtypeOfCode(ctx: InferContext, code: number): DType {
  try {
    return dtypeFromCode(code);
  } catch {
    return ctx.fail(`unknown target type ${code}`);
  }
}
