/**
 * Plain TypeScript reference implementations of the DSL's ops, written from the ONNX operator definitions
 * (row-major, float64) and independent of deepvision's code. Small inputs only.
 */
export interface Arr {
  shape: number[];
  data: number[];
}

export const arr = (shape: number[], data: number[]): Arr => ({ shape, data });
export const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function strides(shape: number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1]! * shape[i + 1]!;
  return s;
}

function unravel(index: number, shape: number[]): number[] {
  const out: number[] = [];
  for (let i = shape.length - 1; i >= 0; i--) {
    out.unshift(index % shape[i]!);
    index = Math.floor(index / shape[i]!);
  }
  return out;
}

function at(a: Arr, idx: number[]): number {
  // Row-major offset without allocating (the numeric reference gradients call this millions of times).
  let o = 0;
  for (let i = 0; i < idx.length; i++) o = o * a.shape[i]! + idx[i]!;
  return a.data[o]!;
}

export function map(a: Arr, f: (v: number) => number): Arr {
  return { shape: [...a.shape], data: a.data.map(f) };
}

export function broadcastShape(...shapes: number[][]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  return [...Array(rank).keys()].map((i) => Math.max(...shapes.map((s) => s[s.length - rank + i] ?? 1)));
}

/** Reads `a` at an index of the broadcast result shape. */
function atBroadcast(a: Arr, idx: number[]): number {
  const off = idx.length - a.shape.length;
  return at(a, a.shape.map((d, i) => (d === 1 ? 0 : idx[i + off]!)));
}

export function zipWith(arrays: Arr[], f: (...v: number[]) => number): Arr {
  const shape = broadcastShape(...arrays.map((a) => a.shape));
  const data = [...Array(size(shape)).keys()].map((i) => {
    const idx = unravel(i, shape);
    return f(...arrays.map((a) => atBroadcast(a, idx)));
  });
  return { shape, data };
}

export function matmul(a: Arr, b: Arr): Arr {
  const as = a.shape.length === 1 ? [1, a.shape[0]!] : a.shape;
  const bs = b.shape.length === 1 ? [b.shape[0]!, 1] : b.shape;
  const [m, k] = as.slice(-2) as [number, number];
  const n = bs[bs.length - 1]!;
  const batch = broadcastShape(as.slice(0, -2), bs.slice(0, -2));
  const A = { shape: as, data: a.data };
  const B = { shape: bs, data: b.data };
  const data: number[] = [];
  for (let bi = 0; bi < size(batch); bi++) {
    const bidx = unravel(bi, batch);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += atBroadcast(A, [...bidx, i, p]) * atBroadcast(B, [...bidx, p, j]);
      data.push(s);
    }
  }
  const shape = [...batch, ...(a.shape.length > 1 ? [m] : []), ...(b.shape.length > 1 ? [n] : [])];
  return { shape, data };
}

export function transpose(a: Arr, perm = [...a.shape.keys()].reverse()): Arr {
  const shape = perm.map((p) => a.shape[p]!);
  const data = [...Array(size(shape)).keys()].map((i) => {
    const idx = unravel(i, shape);
    const src = new Array<number>(a.shape.length);
    perm.forEach((p, k) => (src[p] = idx[k]!));
    return at(a, src);
  });
  return { shape, data };
}

export function conv2d(x: Arr, w: Arr, b: Arr | undefined, o: { stride: [number, number]; pads: number[]; dilation: [number, number]; groups: number }): Arr {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [M, Cg, KH, KW] = w.shape as [number, number, number, number];
  const [sh, sw] = o.stride;
  const [dh, dw] = o.dilation;
  const [pt, pl, pb, pr] = o.pads as [number, number, number, number];
  const OH = Math.floor((H + pt + pb - dh * (KH - 1) - 1) / sh) + 1;
  const OW = Math.floor((W + pl + pr - dw * (KW - 1) - 1) / sw) + 1;
  const Mg = M / o.groups;
  const data: number[] = [];
  for (let n = 0; n < N; n++) for (let m = 0; m < M; m++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) {
    const g = Math.floor(m / Mg);
    let s = b ? b.data[m]! : 0;
    for (let c = 0; c < Cg; c++) for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) {
      const ih = oh * sh - pt + kh * dh;
      const iw = ow * sw - pl + kw * dw;
      if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
      s += at(x, [n, g * Cg + c, ih, iw]) * at(w, [m, c, kh, kw]);
    }
    data.push(s);
  }
  void C;
  return { shape: [N, M, OH, OW], data };
}

/** MaxPool / AveragePool; an average divides by the window's elements inside the input unless `countIncludePad`. */
export function pool2d(x: Arr, kind: 'max' | 'avg', k: [number, number], stride: [number, number], pads: number[], ceil = false, countIncludePad = false): Arr {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [pt, pl, pb, pr] = pads as [number, number, number, number];
  const out = (size: number, p: number, kk: number, s: number) => {
    const steps = (size + p - kk) / s;
    return (ceil ? Math.ceil(steps) : Math.floor(steps)) + 1;
  };
  const OH = out(H, pt + pb, k[0], stride[0]);
  const OW = out(W, pl + pr, k[1], stride[1]);
  const data: number[] = [];
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) {
    let best = -Infinity;
    let sum = 0;
    let count = 0;
    for (let kh = 0; kh < k[0]; kh++) for (let kw = 0; kw < k[1]; kw++) {
      const ih = oh * stride[0] - pt + kh;
      const iw = ow * stride[1] - pl + kw;
      if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
      const v = at(x, [n, c, ih, iw]);
      best = Math.max(best, v);
      sum += v;
      count++;
    }
    data.push(kind === 'max' ? best : sum / (countIncludePad ? k[0] * k[1] : count));
  }
  return { shape: [N, C, OH, OW], data };
}

/** Reduces over `axes` (all when empty). */
export function reduce(x: Arr, axes: number[], keepdims: boolean, kind: 'sum' | 'mean' | 'max'): Arr {
  const all = axes.length === 0 ? [...x.shape.keys()] : axes.map((a) => (a < 0 ? a + x.shape.length : a));
  const keptShape = x.shape.map((d, i) => (all.includes(i) ? 1 : d));
  const acc = new Array<number>(size(keptShape)).fill(kind === 'max' ? -Infinity : 0);
  const count = size(all.map((a) => x.shape[a]!));
  const ks = strides(keptShape);
  x.data.forEach((v, i) => {
    const idx = unravel(i, x.shape);
    const o = idx.reduce((off, d, k) => off + (all.includes(k) ? 0 : d) * ks[k]!, 0);
    acc[o] = kind === 'max' ? Math.max(acc[o]!, v) : acc[o]! + v;
  });
  const data = kind === 'mean' ? acc.map((v) => v / count) : acc;
  return { shape: keepdims ? keptShape : x.shape.filter((_, i) => !all.includes(i)), data };
}

export function softmax(x: Arr, axis: number, log = false): Arr {
  const ax = axis < 0 ? axis + x.shape.length : axis;
  const max = reduce(x, [ax], true, 'max');
  const e = zipWith([x, max], (v, m) => Math.exp(v - m));
  const s = reduce(e, [ax], true, 'sum');
  return log ? zipWith([x, max, s], (v, m, t) => v - m - Math.log(t)) : zipWith([e, s], (v, t) => v / t);
}

export function batchNorm(x: Arr, scale: Arr, bias: Arr, mean: Arr, variance: Arr, eps: number): Arr {
  const C = x.shape[1]!;
  const per = size(x.shape.slice(2));
  return { shape: [...x.shape], data: x.data.map((v, i) => {
    const c = Math.floor(i / per) % C;
    return ((v - mean.data[c]!) / Math.sqrt(variance.data[c]! + eps)) * scale.data[c]! + bias.data[c]!;
  }) };
}

/** Per-channel batch mean and biased variance over N and the spatial axes. */
export function channelStats(x: Arr): { mean: Arr; variance: Arr } {
  const axes = [0, ...x.shape.keys()].filter((a, i) => i === 0 || a >= 2);
  const uniqueAxes = [...new Set(axes)];
  const mean = reduce(x, uniqueAxes, false, 'mean');
  const sq = reduce(map(x, (v) => v * v), uniqueAxes, false, 'mean');
  return { mean, variance: zipWith([sq, mean], (s, m) => s - m * m) };
}

export function concat(xs: Arr[], axis: number): Arr {
  const shape = [...xs[0]!.shape];
  shape[axis] = xs.reduce((n, x) => n + x.shape[axis]!, 0);
  const data = [...Array(size(shape)).keys()].map((i) => {
    const idx = unravel(i, shape);
    let k = idx[axis]!;
    for (const x of xs) {
      if (k < x.shape[axis]!) return at(x, idx.map((v, d) => (d === axis ? k : v)));
      k -= x.shape[axis]!;
    }
    throw new Error('unreachable');
  });
  return { shape, data };
}

/** Numpy-style slice with clamping (positive or negative steps). */
export function slice(x: Arr, starts: number[], ends: number[], axes: number[], steps: number[]): Arr {
  const ranges = x.shape.map((d) => [...Array(d).keys()]);
  axes.forEach((a, i) => {
    const d = x.shape[a]!;
    const step = steps[i]!;
    const norm = (v: number) => (v < 0 ? v + d : v);
    const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
    const s = step > 0 ? clamp(norm(starts[i]!), 0, d) : clamp(norm(starts[i]!), -1, d - 1);
    const e = step > 0 ? clamp(norm(ends[i]!), 0, d) : clamp(norm(ends[i]!), -1, d - 1);
    const r: number[] = [];
    for (let v = s; step > 0 ? v < e : v > e; v += step) r.push(v);
    ranges[a] = r;
  });
  const shape = ranges.map((r) => r.length);
  const data = [...Array(size(shape)).keys()].map((i) => at(x, unravel(i, shape).map((v, d) => ranges[d]![v]!)));
  return { shape, data };
}

export function gather(x: Arr, indices: Arr, axis: number): Arr {
  const shape = [...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis + 1)];
  const q = indices.shape.length;
  const data = [...Array(size(shape)).keys()].map((i) => {
    const idx = unravel(i, shape);
    const which = at(indices, idx.slice(axis, axis + q));
    const k = which < 0 ? which + x.shape[axis]! : which;
    return at(x, [...idx.slice(0, axis), k, ...idx.slice(axis + q)]);
  });
  return { shape, data };
}

/** erf to ~1e-13 for |x| <= 3 (Maclaurin series: its terms stay below ~1e3 there, so cancellation costs little). */
export function erf(x: number): number {
  if (!(Math.abs(x) <= 3)) throw new Error(`reference erf: |x| <= 3 only, got ${x}`);
  let term = x;
  let sum = x;
  for (let n = 1; Math.abs(term) > 1e-17; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

/**
 * d/d inputs of sum(f(inputs) * upstream), by central differences of the float64 reference `f`: the gradient an
 * op's rule must produce for the upstream gradient `upstream`. For the ops it is used on (linear, piecewise linear
 * or smooth) with a step of 1e-6 its error is ~1e-10 relative, far below float32 rounding; a max is only off where
 * another element of its window lies within the step of the maximum (random data: never).
 */
export function numericGradients(f: (...a: Arr[]) => Arr, inputs: Arr[], upstream: Arr, wrt: number[], eps = 1e-6): Arr[] {
  const loss = (args: Arr[]) => {
    const y = f(...args);
    if (y.shape.join() !== upstream.shape.join()) throw new Error(`reference output [${y.shape}] vs upstream [${upstream.shape}]`);
    return y.data.reduce((acc, v, i) => acc + v * upstream.data[i]!, 0);
  };
  return wrt.map((k) => {
    const x = inputs[k]!;
    const data = x.data.map((v, i) => {
      const h = eps * Math.max(1, Math.abs(v));
      const shifted = (d: number) => loss(inputs.map((a, j) => (j === k ? { shape: a.shape, data: a.data.map((u, e) => (e === i ? u + d : u)) } : a)));
      return (shifted(h) - shifted(-h)) / (2 * h);
    });
    return { shape: [...x.shape], data };
  });
}
