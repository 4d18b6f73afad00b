import { Rng } from '../../src/util/rng';
import { Arr, size } from './reference';

/** Seeded normal samples; `transform` reshapes the distribution (e.g. positive values for log). */
export function randn(shape: number[], seed: number, transform: (v: number) => number = (v) => v): Arr {
  const rng = new Rng(seed);
  // Round through float32 so that the reference sees exactly what onnxruntime sees.
  return { shape, data: Array.from({ length: size(shape) }, () => Math.fround(transform(rng.normal()))) };
}

export function ints(shape: number[], values: number[]): Arr {
  return { shape, data: values };
}
