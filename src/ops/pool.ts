import { requireFloat } from './common';
import { describe } from './infer-context';
import { readWindow, windowOutput } from './spatial';
import type { ShapeRule } from './types';

/** MaxPool and AveragePool: a window over the spatial axes; MaxPool may also output flat Indices. */
export const WindowPool: ShapeRule = {
  infer(ctx) {
    const x = ctx.input(0, 'input');
    requireFloat(ctx, x, 'input');
    if (x.shape.length < 3) ctx.fail(`input must be [N, C, ...spatial], got ${describe(x)}`);
    const kernel = ctx.ints('kernel_shape');
    if (kernel === undefined) ctx.fail('attribute kernel_shape is required');
    const window = readWindow(ctx, kernel!, x.shape.length - 2);
    for (let i = 0; i < kernel!.length; i++) {
      if (window.pads[i]! >= kernel![i]! || window.pads[i + kernel!.length]! >= kernel![i]!) {
        ctx.fail(`padding ${window.pads[i]} must be smaller than the kernel size ${kernel![i]}`);
      }
    }
    const out = { dtype: x.dtype, shape: [x.shape[0]!, x.shape[1]!, ...windowOutput(ctx, x.shape.slice(2), window)] };
    return ctx.outputCount > 1 ? [out, { dtype: 'int64', shape: out.shape }] : [out];
  },
};

/** GlobalAveragePool / GlobalMaxPool: [N, C, *spatial] -> [N, C, 1, ...]. */
export const GlobalPool: ShapeRule = {
  infer(ctx) {
    const x = ctx.input(0, 'input');
    requireFloat(ctx, x, 'input');
    if (x.shape.length < 3) ctx.fail(`input must be [N, C, ...spatial], got ${describe(x)}`);
    return [{ dtype: x.dtype, shape: [x.shape[0]!, x.shape[1]!, ...x.shape.slice(2).map(() => 1)] }];
  },
};
