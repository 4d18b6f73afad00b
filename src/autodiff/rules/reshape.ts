import * as F from '../../dsl/functional';
import type { Tensor } from '../../dsl/builder';
import { isStatic } from '../../ir/shape';
import { TensorData } from '../../ir/tensor';
import type { GradContext, GradRule } from '../gradient-rule';
import { once, reshapeLike, shapeOf, unbroadcast, zerosLike } from '../helpers';

/** Flatten, Reshape, Squeeze and Unsqueeze only rearrange the same elements: the gradient is reshaped back. */
export const reshapeBack: GradRule = (ctx) => [() => reshapeLike(ctx.outputGrad(), ctx.input(0))];

export const Transpose: GradRule = (ctx) => [() => {
  const perm = ctx.ints('perm') ?? [...Array(ctx.input(0).rank).keys()].reverse();
  const inverse = new Array<number>(perm.length);
  perm.forEach((p, i) => (inverse[p] = i));
  return F.transpose(ctx.outputGrad(), inverse);
}];

/** One Split of the gradient serves every input. */
export const Concat: GradRule = (ctx) => {
  const inputs = ctx.node.inputs.map((_, i) => ctx.input(i));
  const axis = ctx.int('axis', 0);
  const pieces = once(() => {
    const sizes = inputs.map((t) => t.dim(axis));
    if (!sizes.every((d) => typeof d === 'number')) throw new Error('the Concat gradient needs static sizes along the concat axis');
    return F.split(ctx.outputGrad(), sizes as number[], axis);
  });
  return inputs.map((_, i) => () => pieces()[i]!);
};

/** Outputs that no gradient reaches contribute zeros. */
export const Split: GradRule = (ctx) => [() => F.concat(ctx.node.outputs.map((_, i) => ctx.gradOutput(i) ?? zerosLike(ctx.output(i))), ctx.int('axis', 0))];

export const Slice: GradRule = (ctx) => [() => sliceGrad(ctx)];

/**
 * dX of a Slice: the gradient placed back where the slice came from, zeros elsewhere. Unit steps are one Pad;
 * other steps scatter along their axis first (positions computed at build time).
 */
function sliceGrad(ctx: GradContext): Tensor {
  const x = ctx.input(0);
  const b = x.builder;
  const starts = ctx.requireConstant(1, 'starts').toNumbers();
  const ends = ctx.requireConstant(2, 'ends').toNumbers();
  const axes = ctx.node.inputs[3] ? ctx.requireConstant(3, 'axes').toNumbers() : starts.map((_, i) => i);
  const steps = ctx.node.inputs[4] ? ctx.requireConstant(4, 'steps').toNumbers() : starts.map(() => 1);
  let g = ctx.outputGrad();
  const padBegin = new Array<number>(x.rank).fill(0);
  const padEnd = new Array<number>(x.rank).fill(0);
  axes.forEach((rawAxis, i) => {
    const axis = rawAxis < 0 ? rawAxis + x.rank : rawAxis;
    const dim = x.dim(axis);
    if (typeof dim !== 'number') throw new Error('the Slice gradient needs static sizes along sliced axes');
    const step = steps[i]!;
    const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
    const resolve = (v: number) => (v < 0 ? v + dim : v);
    const [lo, hi] = step > 0 ? [0, dim] : [-1, dim - 1];
    const start = clamp(resolve(starts[i]!), lo, hi);
    const count = Number(g.dim(axis));
    if (step === 1) {
      padBegin[axis] = start;
      padEnd[axis] = dim - start - count;
      return;
    }
    const positions = Array.from({ length: count }, (_, k) => start + k * step);
    const indexShape = g.shape.map((d, k) => (k === axis ? count : 1));
    const indices = b.op('Expand', [b.constant(TensorData.int64(indexShape, positions)), shapeOf(g)], {}, 'slice');
    const fullShape = g.shape.map((d, k) => (k === axis ? dim : d));
    if (!isStatic(fullShape)) throw new Error('the gradient of a strided Slice needs static shapes');
    const zeros = b.op('ConstantOfShape', [b.ints(fullShape)], { value: TensorData.fromArray(g.dtype, [1], [0]) }, 'slice');
    g = b.op('ScatterElements', [zeros, indices, g], { axis }, 'slice');
  });
  if (padBegin.every((p) => p === 0) && padEnd.every((p) => p === 0)) return g;
  return b.op('Pad', [g, b.ints([...padBegin, ...padEnd])], {}, 'slice');
}

export const Gather: GradRule = (ctx) => [() => gatherGrad(ctx), undefined];

/**
 * dData of a Gather: the gradient rows added into a zero tensor at the gathered indices (ScatterND with
 * reduction 'add', so repeated indices accumulate, as embedding lookups need). Other axes are moved to the front
 * and back with Transposes.
 */
function gatherGrad(ctx: GradContext): Tensor {
  const data = ctx.input(0);
  const b = data.builder;
  const axis = ctx.int('axis', 0) < 0 ? ctx.int('axis', 0) + data.rank : ctx.int('axis', 0);
  const indices = ctx.input(1);
  const q = indices.rank;
  let g = ctx.outputGrad();
  // Negative indices count from the end; ScatterND wants them in range.
  const size = data.dim(axis);
  if (typeof size !== 'number') throw new Error('the Gather gradient needs a static size along the gathered axis');
  let idx = indices.dtype === 'int64' ? indices : F.cast(indices, 'int64');
  idx = F.where(F.less(idx, 0), F.add(idx, size), idx);
  const otherDims = [...data.shape.slice(0, axis), ...data.shape.slice(axis + 1)];
  if (axis !== 0) {
    const perm = [...Array(q).keys()].map((k) => k + axis);
    const rest = [...Array(g.rank).keys()].filter((k) => k < axis || k >= axis + q);
    g = F.transpose(g, [...perm, ...rest]);
  }
  const front = [size, ...otherDims];
  if (!isStatic(front)) throw new Error('the Gather gradient needs a static data shape');
  const zeros = b.op('ConstantOfShape', [b.ints(front)], { value: TensorData.fromArray(g.dtype, [1], [0]) }, 'gather');
  const summed = b.op('ScatterND', [zeros, F.unsqueeze(idx, [q]), g], { reduction: 'add' }, 'gather');
  if (axis === 0) return summed;
  const back = [...Array(data.rank).keys()].map((k) => (k < axis ? k + 1 : k === axis ? 0 : k));
  return F.transpose(summed, back);
}

export const Expand: GradRule = (ctx) => [() => unbroadcast(ctx.outputGrad(), ctx.input(0))];
