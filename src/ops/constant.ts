import type { ShapeRule } from './types';

/** Constant: the `value` tensor attribute (the DSL writes constants as initializers, but files may use nodes). */
export const Constant: ShapeRule = {
  infer(ctx) {
    const t = ctx.tensor('value');
    if (t !== undefined) return [{ dtype: t.dtype, shape: t.dims }];
    const f = ctx.float('value_float', NaN);
    if (!Number.isNaN(f)) return [{ dtype: 'float32', shape: [] }];
    const i = ctx.optionalInt('value_int');
    if (i !== undefined) return [{ dtype: 'int64', shape: [] }];
    const ints = ctx.ints('value_ints');
    if (ints !== undefined) return [{ dtype: 'int64', shape: [ints.length] }];
    return ctx.fail('only value, value_float, value_int and value_ints constants are supported');
  },
};
