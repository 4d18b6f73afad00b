import { Dim, UNKNOWN_DIM } from '../ir/shape';
import type { InferContext } from './types';

/** Window geometry shared by Conv and the pooling ops: kernel, strides, pads (begin..., end...), dilations. */
export interface Window {
  kernel: number[];
  strides: number[];
  pads: number[];
  dilations: number[];
  ceilMode: boolean;
}

export function readWindow(ctx: InferContext, kernel: number[], spatialRank: number): Window {
  const strides = ctx.ints('strides') ?? kernel.map(() => 1);
  const dilations = ctx.ints('dilations') ?? kernel.map(() => 1);
  const pads = ctx.ints('pads') ?? new Array<number>(2 * spatialRank).fill(0);
  if (kernel.length !== spatialRank) ctx.fail(`kernel_shape has ${kernel.length} dims, the input has ${spatialRank} spatial dims`);
  if (strides.length !== spatialRank || dilations.length !== spatialRank || pads.length !== 2 * spatialRank) {
    ctx.fail(`strides, dilations and pads must have ${spatialRank}, ${spatialRank} and ${2 * spatialRank} values`);
  }
  if ([...kernel, ...strides, ...dilations].some((v) => v < 1)) ctx.fail('kernel sizes, strides and dilations must be positive');
  if (pads.some((p) => p < 0)) ctx.fail('pads must not be negative');
  return { kernel, strides, pads, dilations, ceilMode: ctx.int('ceil_mode', 0) === 1 };
}

/**
 * Output size along each spatial axis (ONNX's formula, with auto_pad). Fails with the input and window sizes when
 * the window does not fit.
 */
export function windowOutput(ctx: InferContext, spatial: readonly Dim[], w: Window): Dim[] {
  const autoPad = ctx.string('auto_pad', 'NOTSET');
  return spatial.map((size, i) => {
    const k = w.kernel[i]!;
    const s = w.strides[i]!;
    const effective = w.dilations[i]! * (k - 1) + 1;
    if (typeof size !== 'number') return autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER' ? (s === 1 ? size : UNKNOWN_DIM) : UNKNOWN_DIM;
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return Math.ceil(size / s);
    const padded = autoPad === 'VALID' ? size : size + w.pads[i]! + w.pads[i + spatial.length]!;
    if (padded < effective) {
      ctx.fail(`spatial size ${size} (padded to ${padded}) is smaller than the ${effective}-wide window on axis ${i + 2}`);
    }
    const steps = (padded - effective) / s;
    return (w.ceilMode ? Math.ceil(steps) : Math.floor(steps)) + 1;
  });
}
