import { axisOrFail, constantInts } from './common';
import type { ShapeRule } from './types';

/**
 * Reductions. `axesFrom` says where opset 17 keeps the axes: ReduceSum takes them as an input (since opset 13),
 * the others still as an attribute (until opset 18).
 */
export function reduce(axesFrom: 'input' | 'attribute'): ShapeRule {
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
  };
}
