/** Building blocks shared by gradient rules. Shapes are folded to constants whenever they are static. */
import type { GraphBuilder } from '../dsl/builder';
import * as F from '../dsl/functional';
import type { Tensor } from '../dsl/builder';
import { isStatic } from '../ir/shape';
import { TensorData } from '../ir/tensor';

/** The shape of `t` as an int64 tensor: a constant when static, else a Shape node. */
export function shapeOf(t: Tensor): Tensor {
  const b = t.builder;
  return isStatic(t.shape) ? b.ints(t.shape) : b.op('Shape', [t], {}, 'shape');
}

/** Reshapes `g` to the shape of `like` (same element count). */
export function reshapeLike(g: Tensor, like: Tensor): Tensor {
  if (sameShape(g, like)) return g;
  return g.builder.op('Reshape', [g, shapeOf(like)], {}, 'reshape');
}

function sameShape(a: Tensor, b: Tensor): boolean {
  return a.rank === b.rank && a.shape.every((d, i) => d === b.shape[i]);
}

/**
 * Undoes numpy broadcasting: sums `g` over the axes along which `target` was broadcast, so that the result has
 * target's shape. The axes are found at build time from the (possibly symbolic) shapes.
 */
export function unbroadcast(g: Tensor, target: Tensor): Tensor {
  if (sameShape(g, target)) return g;
  const lead = g.rank - target.rank;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead) axes.push(i);
    else if (target.shape[i - lead] === 1 && g.shape[i] !== 1) axes.push(i);
  }
  let out = axes.length > 0 ? F.reduceSum(g, axes, true) : g;
  if (lead > 0) out = F.squeeze(out, [...Array(lead).keys()]);
  return out;
}

/** Zeros with the shape and type of `t`, made at run time (nothing stored in the model). */
export function zerosLike(t: Tensor): Tensor {
  const b = t.builder;
  return b.op('ConstantOfShape', [shapeOf(t)], { value: TensorData.fromArray(t.dtype, [1], [0]) }, 'zeros');
}

/** A per-channel vector [C] shaped to broadcast against [N, C, ...] of the given rank. */
export function perChannel(v: Tensor, rank: number): Tensor {
  return F.reshape(v, [1, -1, ...new Array<number>(rank - 2).fill(1)]);
}

/** The axes other than the channel axis 1: what batch norm and bias gradients reduce over. */
export function nonChannelAxes(rank: number): number[] {
  return [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
}

/** Element count of `t` over `axes` as a scalar of t's type: a constant when static, else computed from Shape. */
export function countOver(t: Tensor, axes: readonly number[]): Tensor {
  const b: GraphBuilder = t.builder;
  const dims = axes.map((a) => t.shape[a < 0 ? a + t.rank : a]!);
  if (dims.every((d) => typeof d === 'number')) return b.scalar((dims as number[]).reduce((x, y) => x * y, 1), t.dtype);
  const picked = F.gather(b.op('Shape', [t], {}, 'shape'), b.ints(axes.map((a) => (a < 0 ? a + t.rank : a))));
  return F.cast(b.op('ReduceProd', [picked], { keepdims: 0 }, 'count'), t.dtype);
}

/** Memoizes a thunk, for intermediate results that several input gradients share. */
export function once<T>(make: () => T): () => T {
  let value: T | undefined;
  let made = false;
  return () => {
    if (!made) {
      value = make();
      made = true;
    }
    return value as T;
  };
}

/**
 * Per-channel batch statistics of [N, C, ...]: mean and biased variance as [1, C, 1, ...] (variance from one
 * ReduceSumSquare pass, E[x^2] - E[x]^2, clamped at 0), 1/sqrt(var + eps), and the normalized input on demand (one
 * inference-mode BatchNormalization pass). The forward lowering of training-mode batch norm and its gradient rule
 * both call this, so they emit identical nodes, which onnxruntime's common-subexpression elimination merges.
 */
export function batchStatistics(x: Tensor, eps: number) {
  const b = x.builder;
  const axes = nonChannelAxes(x.rank);
  const mean = F.reduceMean(x, axes);
  const meanSquare = F.div(b.op('ReduceSumSquare', [x], { axes, keepdims: 1 }, 'batchNorm'), countOver(x, axes));
  const variance = F.relu(F.sub(meanSquare, F.mul(mean, mean)));
  const invstd = once(() => F.reciprocal(F.sqrt(F.add(variance, eps))));
  const xhat = once(() => {
    const channels = x.dim(1);
    if (typeof channels !== 'number') throw new Error('batch norm needs a static channel count');
    const constant = (v: number) => b.constant(TensorData.fromArray(x.dtype, [channels], new Array<number>(channels).fill(v)));
    return b.op('BatchNormalization', [x, constant(1), constant(0), F.reshape(mean, [-1]), F.reshape(variance, [-1])], { epsilon: { type: 'float', value: eps } }, 'batchNorm');
  });
  return { mean, variance, invstd, xhat, axes };
}
