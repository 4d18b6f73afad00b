import { DType, isFloatingDType } from '../ir/dtype';
import { broadcastShapes, formatShape, normalizeAxis, Shape } from '../ir/shape';
import type { InferContext, TypeInfo } from './types';

export function requireFloat(ctx: InferContext, t: TypeInfo, role: string): void {
  if (!isFloatingDType(t.dtype)) ctx.fail(`${role} must be a floating-point tensor, got ${t.dtype}`);
}

export function requireSameDType(ctx: InferContext, types: readonly TypeInfo[], roles: readonly string[]): DType {
  const first = types[0]!;
  types.forEach((t, i) => {
    if (t.dtype !== first.dtype) ctx.fail(`${roles[0]} is ${first.dtype} but ${roles[i]} is ${t.dtype}; cast one of them`);
  });
  return first.dtype;
}

export function broadcastOrFail(ctx: InferContext, shapes: readonly Shape[]): Shape {
  const r = broadcastShapes(shapes);
  if ('error' in r) ctx.fail(`shapes ${shapes.map(formatShape).join(' and ')} do not broadcast: ${r.error}`);
  return (r as { shape: Shape }).shape;
}

export function axisOrFail(ctx: InferContext, axis: number, rank: number, what = 'axis'): number {
  const a = normalizeAxis(axis, rank);
  if (a === undefined) ctx.fail(`${what} ${axis} is out of range for a tensor of rank ${rank}`);
  return a!;
}

/** Integer values of a constant input (shapes, axes, indices), or undefined when not known at build time. */
export function constantInts(ctx: InferContext, index: number): number[] | undefined {
  const c = ctx.constant(index);
  if (c === undefined) return undefined;
  if (c.dtype !== 'int64' && c.dtype !== 'int32') ctx.fail(`input ${index} must be int64, got ${c.dtype}`);
  return c.toNumbers();
}
