import { countOver, shapeOf } from '../autodiff/helpers';
import * as F from '../dsl/functional';
import type { Tensor } from '../dsl/builder';
import { axisOrFail, constantInts } from './common';
import { GradContext, GradRule, NO_GRADIENT, OpRule } from './types';

/**
 * Reductions. `axesFrom` says where opset 17 keeps the axes: ReduceSum takes them as an input (since opset 13),
 * the others still as an attribute (until opset 18).
 */
export function reduce(axesFrom: 'input' | 'attribute', grad: GradRule | typeof NO_GRADIENT): OpRule {
  return {
    infer(ctx) {
      const x = ctx.input(0, 'input');
      const rank = x.shape.length;
      const raw = axesFrom === 'input' ? (ctx.optionalInput(1) === undefined ? undefined : constantInts(ctx, 1)) : ctx.ints('axes');
      if (axesFrom === 'input' && ctx.optionalInput(1) !== undefined && raw === undefined) ctx.fail('axes must be known at build time');
      const noopWhenEmpty = ctx.int('noop_with_empty_axes', 0) === 1;
      if ((raw === undefined || raw.length === 0) && noopWhenEmpty) return [x];
      const axes = raw === undefined || raw.length === 0 ? [...Array(rank).keys()] : raw.map((a) => axisOrFail(ctx, a, rank));
      const keep = ctx.int('keepdims', 1) === 1;
      const shape = keep ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
      return [{ dtype: x.dtype, shape }];
    },
    grad,
  };
}

/** The reduced axes of a reduction node, normalized; all axes when none are given. */
function reducedAxes(ctx: GradContext): number[] {
  const rank = ctx.input(0).rank;
  const raw = ctx.node.opType === 'ReduceSum' ? (ctx.node.inputs[1] ? ctx.requireConstant(1, 'axes').toNumbers() : undefined) : ctx.ints('axes');
  if (raw === undefined || raw.length === 0) return [...Array(rank).keys()];
  return raw.map((a) => (a < 0 ? a + rank : a));
}

/** The output gradient with the reduced axes restored (as size 1), ready to broadcast against the input. */
function keptGrad(ctx: GradContext, t: Tensor): Tensor {
  return ctx.int('keepdims', 1) === 1 ? t : F.unsqueeze(t, reducedAxes(ctx));
}

function spread(ctx: GradContext, g: Tensor): Tensor {
  return g.builder.op('Expand', [g, shapeOf(ctx.input(0))], {}, 'reduce');
}

export const ReduceSum = reduce('input', (ctx) => [() => spread(ctx, keptGrad(ctx, ctx.outputGrad())), undefined]);

export const ReduceMean = reduce('attribute', (ctx) => [
  () => spread(ctx, F.div(keptGrad(ctx, ctx.outputGrad()), countOver(ctx.input(0), reducedAxes(ctx)))),
]);

/** The maximum's gradient goes to the cells equal to it, shared equally among ties. */
export const ReduceMax = reduce('attribute', (ctx) => [() => {
  const x = ctx.input(0);
  const mask = F.cast(F.equal(x, keptGrad(ctx, ctx.output(0))), x.dtype);
  return F.mul(mask, F.div(keptGrad(ctx, ctx.outputGrad()), F.reduceSum(mask, reducedAxes(ctx))));
}]);

export const ReduceProd = reduce('attribute', NO_GRADIENT);

/** d/dx sum(x^2) = 2x. */
export const ReduceSumSquare = reduce('attribute', (ctx) => [
  () => F.mul(F.mul(ctx.input(0), 2), spread(ctx, keptGrad(ctx, ctx.outputGrad()))),
]);
