import { dimsCompatible, isStatic } from '../ir/shape';
import { requireFloat, requireSameDType } from './common';
import { describe } from './infer-context';
import { readWindow, windowOutput } from './spatial';
import type { ShapeRule } from './types';

/** Conv: X [N, C, *spatial], W [M, C/group, *kernel], B [M] -> [N, M, *out]. */
export const Conv: ShapeRule = {
  infer(ctx) {
    const x = ctx.input(0, 'input');
    const w = ctx.input(1, 'weight');
    requireFloat(ctx, x, 'input');
    requireSameDType(ctx, [x, w], ['input', 'weight']);
    if (x.shape.length < 3) ctx.fail(`input must be [N, C, ...spatial], got ${describe(x)}`);
    if (w.shape.length !== x.shape.length) ctx.fail(`weight ${describe(w)} must have the input's rank ${x.shape.length}`);
    const group = ctx.int('group', 1);
    const channels = x.shape[1]!;
    const perGroup = w.shape[1]!;
    const outChannels = w.shape[0]!;
    if (typeof perGroup === 'number' && typeof channels === 'number' && channels !== perGroup * group) {
      ctx.fail(`input has ${channels} channels, weight expects ${perGroup * group}${group > 1 ? ` (${perGroup} per group x ${group} groups)` : ''}`);
    }
    if (typeof outChannels === 'number' && outChannels % group !== 0) ctx.fail(`${outChannels} output channels do not split into ${group} groups`);
    const b = ctx.optionalInput(2);
    if (b !== undefined && (b.shape.length !== 1 || !dimsCompatible(b.shape[0]!, outChannels))) {
      ctx.fail(`bias ${describe(b)} must be [${outChannels}]`);
    }
    const kernelDims = w.shape.slice(2);
    if (!isStatic(kernelDims)) ctx.fail(`weight ${describe(w)} must have a static kernel size`);
    const kernel = ctx.ints('kernel_shape') ?? (kernelDims as number[]);
    if (kernel.join() !== kernelDims.join()) ctx.fail(`kernel_shape [${kernel}] differs from the weight's [${kernelDims}]`);
    const window = readWindow(ctx, kernel, x.shape.length - 2);
    return [{ dtype: x.dtype, shape: [x.shape[0]!, outChannels, ...windowOutput(ctx, x.shape.slice(2), window)] }];
  },
};

/** ConvTranspose (used by gradients): X [N, Cin, ...], W [Cin, Cout/group, *kernel] -> [N, Cout, *out]. */
export const ConvTranspose: ShapeRule = {
  infer(ctx) {
    const x = ctx.input(0, 'input');
    const w = ctx.input(1, 'weight');
    requireSameDType(ctx, [x, w], ['input', 'weight']);
    if (x.shape.length < 3 || w.shape.length !== x.shape.length) ctx.fail(`input ${describe(x)} and weight ${describe(w)} ranks do not fit`);
    if (!dimsCompatible(x.shape[1]!, w.shape[0]!)) ctx.fail(`input has ${x.shape[1]} channels, weight expects ${w.shape[0]}`);
    const group = ctx.int('group', 1);
    const kernel = w.shape.slice(2) as number[];
    const window = readWindow(ctx, kernel, kernel.length);
    const outputPadding = ctx.ints('output_padding') ?? kernel.map(() => 0);
    const spatial = x.shape.slice(2).map((d, i) => {
      if (typeof d !== 'number') return '?';
      return window.strides[i]! * (d - 1) + outputPadding[i]! + window.dilations[i]! * (kernel[i]! - 1) + 1
        - window.pads[i]! - window.pads[i + kernel.length]!;
    });
    const channels = typeof w.shape[1] === 'number' ? w.shape[1] * group : '?';
    return [{ dtype: x.dtype, shape: [x.shape[0]!, channels, ...spatial] }];
  },
};
