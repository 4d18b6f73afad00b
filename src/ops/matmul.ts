import { unbroadcast } from '../autodiff/helpers';
import * as F from '../dsl/functional';
import type { Tensor } from '../dsl/builder';
import { floatAttr } from '../ir/attribute';
import { dimsCompatible, Dim } from '../ir/shape';
import { broadcastOrFail, requireFloat, requireSameDType } from './common';
import { describe } from './infer-context';
import type { OpRule } from './types';

/** Numpy matmul: 1-D operands are promoted and the added axis removed; leading (batch) axes broadcast. */
export const MatMul: OpRule = {
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
  grad: (ctx) => {
    const a = ctx.input(0);
    const b = ctx.input(1);
    // Promote 1-D operands as the forward did, so the matrix formulas apply; the gradient is reshaped back.
    const a2 = a.rank === 1 ? F.unsqueeze(a, [0]) : a;
    const b2 = b.rank === 1 ? F.unsqueeze(b, [1]) : b;
    let g = ctx.outputGrad();
    if (a.rank === 1) g = F.unsqueeze(g, [g.rank - 1]);
    if (b.rank === 1) g = F.unsqueeze(g, [g.rank]);
    return [
      () => {
        const ga = unbroadcast(F.matmul(g, swapLast(b2)), a2);
        return a.rank === 1 ? F.reshape(ga, [-1]) : ga;
      },
      () => {
        if (b.rank === 2 && a2.rank >= 2) {
          // All batch rows contribute to one weight: a single GEMM over the flattened rows.
          const k = a2.shape[a2.rank - 1]!;
          const n = g.shape[g.rank - 1]!;
          const rows = (t: Tensor, cols: Dim) => (t.rank === 2 ? t : F.reshape(t, [-1, Number(cols)]));
          return a.builder.op('Gemm', [rows(a2, k), rows(g, n)], { transA: 1 }, 'matmul');
        }
        const gb = unbroadcast(F.matmul(swapLast(a2), g), b2);
        return b.rank === 1 ? F.reshape(gb, [-1]) : gb;
      },
    ];
  },
};

function swapLast(t: Tensor): Tensor {
  const perm = [...Array(t.rank).keys()];
  [perm[t.rank - 2], perm[t.rank - 1]] = [perm[t.rank - 1]!, perm[t.rank - 2]!];
  return F.transpose(t, perm);
}

/** Y = alpha * op(A) @ op(B) + beta * C on matrices; C broadcasts to [M, N]. */
export const Gemm: OpRule = {
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
  // Y = alpha op(A) op(B) + beta C. Each input gradient is one Gemm with the right transposition flags.
  grad: (ctx) => {
    const transA = ctx.int('transA', 0);
    const transB = ctx.int('transB', 0);
    const alpha = floatAttr(ctx.float('alpha', 1));
    const gemm = (x: Tensor, y: Tensor, tA: number, tB: number) => x.builder.op('Gemm', [x, y], { transA: tA, transB: tB, alpha }, 'linear');
    const g = () => ctx.outputGrad();
    return [
      () => (transA ? gemm(ctx.input(1), g(), transB, 1) : gemm(g(), ctx.input(1), 0, 1 - transB)),
      () => (transB ? gemm(g(), ctx.input(0), 1, transA) : gemm(ctx.input(0), g(), 1 - transA, 0)),
      () => {
        const beta = ctx.float('beta', 1);
        const gc = unbroadcast(g(), ctx.input(2));
        return beta === 1 ? gc : F.mul(gc, beta);
      },
    ];
  },
};
