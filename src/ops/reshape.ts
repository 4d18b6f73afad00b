import { Dim, dimProduct, dimsCompatible, formatShape, Shape, UNKNOWN_DIM } from '../ir/shape';
import { axisOrFail, broadcastOrFail, constantInts } from './common';
import { describe } from './infer-context';
import type { InferContext, ShapeRule } from './types';

/** Flatten: [d0..dk-1, dk..] -> [prod(d0..dk-1), prod(dk..)]. */
export const Flatten: ShapeRule = {
  infer(ctx) {
    const x = ctx.input(0, 'input');
    const rank = x.shape.length;
    const axis = ctx.int('axis', 1);
    const a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a > rank) ctx.fail(`axis ${axis} is out of range for input ${describe(x)}`);
    return [{ dtype: x.dtype, shape: [dimProduct(x.shape.slice(0, a)), dimProduct(x.shape.slice(a))] }];
  },
};

/** Reshape with a shape known at build time: 0 copies the input dim, -1 takes what is left. */
export const Reshape: ShapeRule = {
  infer(ctx) {
    const x = ctx.input(0, 'input');
    const target = constantInts(ctx, 1);
    const symbolic = target === undefined ? ctx.shapeValue(1) : undefined;
    if (symbolic !== undefined) return [{ dtype: x.dtype, shape: symbolic }];
    if (target === undefined) {
      const s = ctx.input(1, 'shape');
      const n = s.shape[0];
      return [{ dtype: x.dtype, shape: typeof n === 'number' ? new Array<Dim>(n).fill(UNKNOWN_DIM) : [] }];
    }
    return [{ dtype: x.dtype, shape: reshapeDims(ctx, x.shape, target, ctx.int('allowzero', 0) === 1) }];
  },
};

function reshapeDims(ctx: InferContext, input: Shape, target: number[], allowZero: boolean): Dim[] {
  if (target.filter((d) => d === -1).length > 1) ctx.fail(`shape [${target}] has more than one -1`);
  const out: Dim[] = target.map((d, i) => {
    if (d === 0 && !allowZero) {
      if (i >= input.length) ctx.fail(`shape [${target}] copies dim ${i} (0), but the input ${formatShape(input)} has rank ${input.length}`);
      return input[i]!;
    }
    if (d < -1) ctx.fail(`shape [${target}] has invalid dim ${d}`);
    return d;
  });
  const wildcard = out.indexOf(-1);
  // Cancel symbolic factors shared by input and output, then divide the numeric parts. Products dimProduct wrote
  // ('batch*4') count as their factors, so that [batch*4, 9] -> [-1, 4, 9] gives batch.
  const inputFactors = input.flatMap(factorsOf);
  const remaining = inputFactors.filter((d): d is string => typeof d === 'string');
  const inputNumeric = inputFactors.reduce<number>((p, d) => (typeof d === 'number' ? p * d : p), 1);
  let outputNumeric = 1;
  let unresolved = false;
  for (const [i, dim] of out.entries()) {
    if (i === wildcard) continue;
    for (const d of factorsOf(dim)) {
      if (typeof d === 'number') outputNumeric *= d;
      else {
        const k = remaining.indexOf(d);
        if (k >= 0) remaining.splice(k, 1);
        else unresolved = true;
      }
    }
  }
  if (wildcard >= 0) {
    if (unresolved || remaining.includes(UNKNOWN_DIM)) out[wildcard] = UNKNOWN_DIM;
    else if (outputNumeric === 0 || inputNumeric % outputNumeric !== 0) {
      ctx.fail(`cannot reshape ${formatShape(input)} to [${target}]: ${dimProduct(input)} elements do not divide into ${outputNumeric}`);
    } else out[wildcard] = dimProduct([...remaining, inputNumeric / outputNumeric]);
  } else if (!unresolved && remaining.length === 0) {
    if (inputNumeric !== outputNumeric) {
      ctx.fail(`cannot reshape ${formatShape(input)} (${inputNumeric} elements) to [${target}] (${outputNumeric} elements)`);
    }
  }
  return out;
}

/** A symbolic product's factors ('batch*4' -> ['batch', 4]); any other dim stays whole. */
function factorsOf(d: Dim): Dim[] {
  if (typeof d === 'number' || !d.includes('*') || /[()+]/.test(d)) return [d];
  return d.split('*').map((f) => (/^\d+$/.test(f) ? Number(f) : f));
}

export const Transpose: ShapeRule = {
  infer(ctx) {
    const x = ctx.input(0, 'input');
    const rank = x.shape.length;
    const perm = ctx.ints('perm') ?? [...Array(rank).keys()].reverse();
    const sorted = [...perm].sort((a, b) => a - b);
    if (perm.length !== rank || sorted.some((p, i) => p !== i)) ctx.fail(`perm [${perm}] is not a permutation of the ${rank} axes of ${describe(x)}`);
    return [{ dtype: x.dtype, shape: perm.map((p) => x.shape[p]!) }];
  },
};

export const Concat: ShapeRule = {
  infer(ctx) {
    const parts = ctx.inputs.map((_, i) => ctx.input(i, `input ${i}`));
    if (parts.length === 0) ctx.fail('needs at least one input');
    const first = parts[0]!;
    const axis = axisOrFail(ctx, ctx.int('axis', 0), first.shape.length);
    parts.forEach((p, i) => {
      if (p.dtype !== first.dtype) ctx.fail(`input ${i} is ${p.dtype}, input 0 is ${first.dtype}`);
      if (p.shape.length !== first.shape.length) ctx.fail(`input ${i} ${describe(p)} has another rank than input 0 ${describe(first)}`);
      p.shape.forEach((d, k) => {
        if (k !== axis && !dimsCompatible(d, first.shape[k]!)) ctx.fail(`inputs differ outside the concat axis ${axis}: ${describe(first)} and ${describe(p)}`);
      });
    });
    const sizes = parts.map((p) => p.shape[axis]!);
    const total: Dim = sizes.every((s) => typeof s === 'number') ? (sizes as number[]).reduce((a, b) => a + b, 0) : sizes.join('+');
    const shape = [...first.shape];
    shape[axis] = total;
    return [{ dtype: first.dtype, shape }];
  },
};

/** Split (opset 13): sizes from the optional `split` input, else equal parts, one per output. */
export const Split: ShapeRule = {
  infer(ctx) {
    const x = ctx.input(0, 'input');
    const axis = axisOrFail(ctx, ctx.int('axis', 0), x.shape.length);
    const size = x.shape[axis]!;
    let sizes: Dim[];
    const given = ctx.optionalInput(1) === undefined ? undefined : constantInts(ctx, 1);
    if (given !== undefined) {
      if (given.length !== ctx.outputCount) ctx.fail(`split has ${given.length} sizes for ${ctx.outputCount} outputs`);
      if (typeof size === 'number' && given.reduce((a, b) => a + b, 0) !== size) ctx.fail(`split sizes [${given}] do not add up to ${size}`);
      sizes = given;
    } else if (typeof size === 'number') {
      if (size % ctx.outputCount !== 0) ctx.fail(`axis ${axis} of size ${size} does not split into ${ctx.outputCount} equal parts`);
      sizes = new Array<Dim>(ctx.outputCount).fill(size / ctx.outputCount);
    } else sizes = new Array<Dim>(ctx.outputCount).fill(UNKNOWN_DIM);
    return sizes.map((s) => {
      const shape = [...x.shape];
      shape[axis] = s;
      return { dtype: x.dtype, shape };
    });
  },
};

/** Slice (opset 13) with starts/ends/axes/steps known at build time; indices clamp as in numpy. */
export const Slice: ShapeRule = {
  infer(ctx) {
    const x = ctx.input(0, 'input');
    const rank = x.shape.length;
    const starts = constantInts(ctx, 1);
    const ends = constantInts(ctx, 2);
    if (starts === undefined || ends === undefined) return [{ dtype: x.dtype, shape: x.shape.map(() => UNKNOWN_DIM) }];
    const axes = (ctx.optionalInput(3) && constantInts(ctx, 3)) ?? starts.map((_, i) => i);
    const steps = (ctx.optionalInput(4) && constantInts(ctx, 4)) ?? starts.map(() => 1);
    if (ends.length !== starts.length || axes.length !== starts.length || steps.length !== starts.length) {
      ctx.fail('starts, ends, axes and steps must have the same length');
    }
    const shape = [...x.shape];
    axes.forEach((rawAxis, i) => {
      const axis = axisOrFail(ctx, rawAxis, rank);
      const step = steps[i]!;
      if (step === 0) ctx.fail('steps must not be 0');
      const dim = x.shape[axis]!;
      if (typeof dim !== 'number') {
        const wholeAxis = starts[i] === 0 && step === 1 && ends[i]! >= 2 ** 31;
        shape[axis] = wholeAxis ? dim : UNKNOWN_DIM;
        return;
      }
      const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
      const resolve = (v: number) => (v < 0 ? v + dim : v);
      const [lo, hi] = step > 0 ? [0, dim] : [-1, dim - 1];
      const s = clamp(resolve(starts[i]!), lo, hi);
      const e = clamp(resolve(ends[i]!), lo, hi);
      shape[axis] = Math.max(0, Math.ceil((e - s) / step));
    });
    return [{ dtype: x.dtype, shape }];
  },
};

/** Gather along an axis: data.shape[:axis] + indices.shape + data.shape[axis+1:]. */
export const Gather: ShapeRule = {
  infer(ctx) {
    const data = ctx.input(0, 'data');
    const indices = ctx.input(1, 'indices');
    if (indices.dtype !== 'int64' && indices.dtype !== 'int32') ctx.fail(`indices must be int64 or int32, got ${indices.dtype}`);
    const axis = axisOrFail(ctx, ctx.int('axis', 0), data.shape.length);
    return [{ dtype: data.dtype, shape: [...data.shape.slice(0, axis), ...indices.shape, ...data.shape.slice(axis + 1)] }];
  },
};

/** Unsqueeze (opset 13): axes input, counted in the output's rank. */
export const Unsqueeze: ShapeRule = {
  infer(ctx) {
    const x = ctx.input(0, 'input');
    const axes = constantInts(ctx, 1);
    if (axes === undefined) ctx.fail('axes must be known at build time');
    const rank = x.shape.length + axes!.length;
    const normalized = axes!.map((a) => axisOrFail(ctx, a, rank));
    if (new Set(normalized).size !== normalized.length) ctx.fail(`axes [${axes}] repeat an axis`);
    const rest = [...x.shape];
    return [{ dtype: x.dtype, shape: [...Array(rank).keys()].map((i) => (normalized.includes(i) ? 1 : rest.shift()!)) }];
  },
};

/** Squeeze (opset 13): removes the given size-1 axes, or all size-1 axes when none are given. */
export const Squeeze: ShapeRule = {
  infer(ctx) {
    const x = ctx.input(0, 'input');
    const given = ctx.optionalInput(1) === undefined ? undefined : constantInts(ctx, 1);
    const axes = given?.map((a) => axisOrFail(ctx, a, x.shape.length)) ?? x.shape.flatMap((d, i) => (d === 1 ? [i] : []));
    for (const a of axes) if (typeof x.shape[a] === 'number' && x.shape[a] !== 1) ctx.fail(`axis ${a} of ${describe(x)} has size ${x.shape[a]}, not 1`);
    return [{ dtype: x.dtype, shape: x.shape.filter((_, i) => !axes.includes(i)) }];
  },
};

/** Expand: broadcasts the input to a shape given as an input. */
export const Expand: ShapeRule = {
  infer(ctx) {
    const x = ctx.input(0, 'input');
    const target = ctx.shapeValue(1);
    if (target === undefined) ctx.fail('shape must be known at build time (a constant or the output of Shape)');
    return [{ dtype: x.dtype, shape: broadcastOrFail(ctx, [x.shape, target!]) }];
  },
};

export const Shape_: ShapeRule = {
  infer(ctx) {
    const x = ctx.input(0, 'input');
    const rank = x.shape.length;
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
    const start = clamp(ctx.int('start', 0));
    const end = clamp(ctx.optionalInt('end') ?? rank);
    return [{ dtype: 'int64', shape: [Math.max(0, end - start)] }];
  },
};

/** Pad (opset 13, used by gradients): pads input [begin..., end...], optional constant value. */
export const Pad: ShapeRule = {
  infer(ctx) {
    const x = ctx.input(0, 'input');
    const pads = constantInts(ctx, 1);
    if (pads === undefined) ctx.fail('pads must be known at build time');
    if (pads!.length !== 2 * x.shape.length) ctx.fail(`pads has ${pads!.length} values for a rank-${x.shape.length} input`);
    return [{ dtype: x.dtype, shape: x.shape.map((d, i) => (typeof d === 'number' ? d + pads![i]! + pads![i + x.shape.length]! : pads![i] === 0 && pads![i + x.shape.length] === 0 ? d : UNKNOWN_DIM)) }];
  },
};

/** ScatterND / ScatterElements (used by gradients): the output has the data's shape. */
export const Scatter: ShapeRule = {
  infer(ctx) {
    const data = ctx.input(0, 'data');
    const updates = ctx.input(2, 'updates');
    if (updates.dtype !== data.dtype) ctx.fail(`updates are ${updates.dtype}, data is ${data.dtype}`);
    return [data];
  },
};

/** ConstantOfShape: a tensor of the given (int64) shape filled with `value`. */
export const ConstantOfShape: ShapeRule = {
  infer(ctx) {
    const dims = ctx.shapeValue(0);
    const value = ctx.tensor('value');
    const dtype = value?.dtype ?? 'float32';
    if (dims !== undefined) return [{ dtype, shape: dims }];
    const n = ctx.input(0, 'shape').shape[0];
    return [{ dtype, shape: typeof n === 'number' ? new Array<Dim>(n).fill(UNKNOWN_DIM) : [] }];
  },
};

/** Resize (used by gradients for nearest upsampling): output = floor(input * scales). */
export const Resize: ShapeRule = {
  infer(ctx) {
    const x = ctx.input(0, 'input');
    const scales = ctx.constant(2);
    if (scales === undefined) ctx.fail('scales must be known at build time');
    const factors = scales!.toNumbers();
    if (factors.length !== x.shape.length) ctx.fail(`scales has ${factors.length} values for a rank-${x.shape.length} input`);
    return [{ dtype: x.dtype, shape: x.shape.map((d, i) => (factors[i] === 1 ? d : typeof d === 'number' ? Math.floor(d * factors[i]!) : UNKNOWN_DIM)) }];
  },
};
