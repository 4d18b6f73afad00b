import { dimsCompatible } from '../ir/shape';
import { requireFloat } from './common';
import { describe } from './infer-context';
import type { ShapeRule } from './types';

/**
 * BatchNormalization (opset 15): X [N, C, ...] with per-channel scale, bias, mean, var. In training mode it also
 * outputs the updated running mean and variance.
 */
export const BatchNormalization: ShapeRule = {
  infer(ctx) {
    const x = ctx.input(0, 'input');
    requireFloat(ctx, x, 'input');
    if (x.shape.length < 2) ctx.fail(`input must be [N, C, ...], got ${describe(x)}`);
    const c = x.shape[1]!;
    const roles = ['scale', 'bias', 'running mean', 'running variance'];
    roles.forEach((role, i) => {
      const t = ctx.input(i + 1, role);
      if (t.shape.length !== 1 || !dimsCompatible(t.shape[0]!, c)) ctx.fail(`input has ${c} channels, ${role} is ${describe(t)}`);
    });
    const training = ctx.int('training_mode', 0) === 1;
    const stat = { dtype: x.dtype, shape: [c] };
    if (!training && ctx.outputCount > 1) ctx.fail('running statistics are outputs only in training mode');
    return training ? [x, stat, stat].slice(0, Math.max(1, ctx.outputCount)) : [x];
  },
};

/** Dropout (opset 13): data, optional ratio and training_mode -> output and optional bool mask. */
export const Dropout: ShapeRule = {
  infer(ctx) {
    const x = ctx.input(0, 'input');
    requireFloat(ctx, x, 'input');
    const ratio = ctx.constant(1);
    if (ratio !== undefined) {
      const r = ratio.toNumbers()[0]!;
      if (!(r >= 0 && r < 1)) ctx.fail(`ratio must be in [0, 1), got ${r}`);
    }
    const training = ctx.optionalInput(2);
    if (training !== undefined && training.dtype !== 'bool') ctx.fail(`training_mode must be bool, got ${training.dtype}`);
    return ctx.outputCount > 1 ? [x, { dtype: 'bool', shape: x.shape }] : [x];
  },
};
