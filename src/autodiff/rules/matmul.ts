import * as F from '../../dsl/functional';
import type { Tensor } from '../../dsl/builder';
import { floatAttr } from '../../ir/attribute';
import type { Dim } from '../../ir/shape';
import type { GradRule } from '../gradient-rule';
import { unbroadcast } from '../helpers';

export const MatMul: GradRule = (ctx) => {
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
};

function swapLast(t: Tensor): Tensor {
  const perm = [...Array(t.rank).keys()];
  [perm[t.rank - 2], perm[t.rank - 1]] = [perm[t.rank - 1]!, perm[t.rank - 2]!];
  return F.transpose(t, perm);
}

/** Y = alpha op(A) op(B) + beta C. Each input gradient is one Gemm with the right transposition flags. */
export const Gemm: GradRule = (ctx) => {
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
};
