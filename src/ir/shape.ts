/**
 * Tensor shapes. A dimension is a number, or a name for a size known only at run time (`batch`), as ONNX's
 * dim_value / dim_param. Dimensions computed from symbolic ones are written as expressions (`batch*3`), and a
 * size nothing is known about is '?'.
 */
export type Dim = number | string;
export type Shape = readonly Dim[];

export const UNKNOWN_DIM = '?';

export function isStatic(shape: Shape): shape is readonly number[] {
  return shape.every((d) => typeof d === 'number');
}

export function formatShape(shape: Shape | undefined): string {
  return shape === undefined ? '[?]' : `[${shape.join(', ')}]`;
}

export function numElements(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The product of dimensions: a number when all are known, else an expression over the symbolic ones. */
export function dimProduct(dims: readonly Dim[]): Dim {
  let known = 1;
  const symbols: string[] = [];
  for (const d of dims) {
    if (typeof d === 'number') known *= d;
    else symbols.push(d.includes('*') || d.includes('+') ? `(${d})` : d);
  }
  if (symbols.length === 0) return known;
  if (known === 0) return 0;
  if (symbols.includes(UNKNOWN_DIM)) return UNKNOWN_DIM;
  return known === 1 ? symbols.join('*') : `${symbols.join('*')}*${known}`;
}

/** Whether two dimensions can be the same size at run time. */
export function dimsCompatible(a: Dim, b: Dim): boolean {
  return typeof a !== 'number' || typeof b !== 'number' || a === b;
}

/** Numpy broadcasting of several shapes, or a message saying which dimensions clash. */
export function broadcastShapes(shapes: readonly Shape[]): { shape: Dim[] } | { error: string } {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let dim: Dim = 1;
    for (const s of shapes) {
      const d = s[s.length - rank + i];
      if (d === undefined || d === 1) continue;
      if (dim === 1) dim = d;
      else if (typeof dim === 'number' && typeof d === 'number' && dim !== d) {
        return { error: `dimension ${i - rank} is ${dim} in one operand and ${d} in another` };
      } else if (typeof dim !== 'number' && typeof d === 'number') dim = d;
    }
    out.push(dim);
  }
  return { shape: out };
}

/** Normalizes a possibly negative axis for a tensor of the given rank, or returns undefined when out of range. */
export function normalizeAxis(axis: number, rank: number): number | undefined {
  const a = axis < 0 ? axis + rank : axis;
  return a >= 0 && a < rank ? a : undefined;
}
