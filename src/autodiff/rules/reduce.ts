import * as F from '../../dsl/functional';
import type { Tensor } from '../../dsl/builder';
import type { GradContext, GradRule } from '../gradient-rule';
import { countOver, shapeOf } from '../helpers';

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

export const ReduceSum: GradRule = (ctx) => [() => spread(ctx, keptGrad(ctx, ctx.outputGrad())), undefined];

export const ReduceMean: GradRule = (ctx) => [
  () => spread(ctx, F.div(keptGrad(ctx, ctx.outputGrad()), countOver(ctx.input(0), reducedAxes(ctx)))),
];

/** The maximum's gradient goes to the cells equal to it, shared equally among ties. */
export const ReduceMax: GradRule = (ctx) => [() => {
  const x = ctx.input(0);
  const mask = F.cast(F.equal(x, keptGrad(ctx, ctx.output(0))), x.dtype);
  return F.mul(mask, F.div(keptGrad(ctx, ctx.outputGrad()), F.reduceSum(mask, reducedAxes(ctx))));
}];

/** d/dx sum(x^2) = 2x. */
export const ReduceSumSquare: GradRule = (ctx) => [
  () => F.mul(F.mul(ctx.input(0), 2), spread(ctx, keptGrad(ctx, ctx.outputGrad()))),
];
