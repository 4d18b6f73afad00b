import { dimsCompatible, Dim } from '../ir/shape';
import { broadcastOrFail, requireFloat, requireSameDType } from './common';
import { describe } from './infer-context';
import type { ShapeRule } from './types';

/** Numpy matmul: 1-D operands are promoted and the added axis removed; leading (batch) axes broadcast. */
export const MatMul: ShapeRule = {
  infer(ctx) {
    const a = ctx.input(0, 'left operand');
    const b = ctx.input(1, 'right operand');
    requireSameDType(ctx, [a, b], ['left operand', 'right operand']);
    if (a.shape.length === 0 || b.shape.length === 0) ctx.fail(`operands must have rank >= 1, got ${describe(a)} and ${describe(b)}`);
    const as = a.shape.length === 1 ? [1, a.shape[0]!] : [...a.shape];
    const bs = b.shape.length === 1 ? [b.shape[0]!, 1] : [...b.shape];
    const k1 = as[as.length - 1]!;
    const k2 = bs[bs.length - 2]!;
    if (!dimsCompatible(k1, k2)) {
      ctx.fail(`inner dimensions differ: ${describe(a)} @ ${describe(b)} (${k1} vs ${k2})`);
    }
    const batch = broadcastOrFail(ctx, [as.slice(0, -2), bs.slice(0, -2)]);
    const out: Dim[] = [...batch];
    if (a.shape.length > 1) out.push(as[as.length - 2]!);
    if (b.shape.length > 1) out.push(bs[bs.length - 1]!);
    return [{ dtype: a.dtype, shape: out }];
  },
};

/** Y = alpha * op(A) @ op(B) + beta * C on matrices; C broadcasts to [M, N]. */
export const Gemm: ShapeRule = {
  infer(ctx) {
    const a = ctx.input(0, 'A');
    const b = ctx.input(1, 'B');
    requireFloat(ctx, a, 'A');
    requireSameDType(ctx, [a, b], ['A', 'B']);
    if (a.shape.length !== 2 || b.shape.length !== 2) ctx.fail(`A and B must be matrices, got ${describe(a)} and ${describe(b)}`);
    const [m, ka] = ctx.int('transA', 0) ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
    const [kb, n] = ctx.int('transB', 0) ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
    if (!dimsCompatible(ka, kb)) ctx.fail(`input has ${ka} features, weight expects ${kb}`);
    const c = ctx.optionalInput(2);
    if (c !== undefined) {
      requireSameDType(ctx, [a, c], ['A', 'C']);
      const r = broadcastOrFail(ctx, [[m, n], c.shape]);
      if (r.length !== 2 || !dimsCompatible(r[0]!, m) || !dimsCompatible(r[1]!, n)) ctx.fail(`C ${describe(c)} does not broadcast to [${m}, ${n}]`);
    }
    return [{ dtype: a.dtype, shape: [m, n] }];
  },
};
