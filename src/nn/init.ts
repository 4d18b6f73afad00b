import type { Rng } from '../util/rng';

/** How a parameter's initial values are drawn; `describe` names it in summaries and errors. */
export interface Init {
  describe: string;
  fill(rng: Rng, shape: readonly number[]): Float32Array;
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export function constant(value: number): Init {
  return { describe: `constant(${value})`, fill: (_rng, shape) => new Float32Array(size(shape)).fill(value) };
}

export const zeros = (): Init => constant(0);
export const ones = (): Init => constant(1);

export function uniform(low: number, high: number): Init {
  return {
    describe: `uniform(${low.toPrecision(4)}, ${high.toPrecision(4)})`,
    fill: (rng, shape) => Float32Array.from({ length: size(shape) }, () => rng.uniform(low, high)),
  };
}

export function normal(mean = 0, std = 1): Init {
  return {
    describe: `normal(${mean}, ${std.toPrecision(4)})`,
    fill: (rng, shape) => Float32Array.from({ length: size(shape) }, () => mean + std * rng.normal()),
  };
}

/**
 * Fan-in and fan-out of a weight as PyTorch computes them: dims 1 and 0 times the receptive field
 * (the product of the remaining dims).
 */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length < 2) throw new Error(`fan-in needs a weight of rank >= 2, got [${shape}]`);
  const receptive = size(shape.slice(2));
  return { fanIn: shape[1]! * receptive, fanOut: shape[0]! * receptive };
}

/**
 * Kaiming (He) uniform, PyTorch's `kaiming_uniform_`: bound = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2)).
 * With a = sqrt(5) (the default of Linear and Conv2d) the bound is 1 / sqrt(fan_in).
 */
export function kaimingUniform(a = Math.sqrt(5)): Init {
  return {
    describe: `kaiming_uniform(a=${a.toPrecision(3)})`,
    fill(rng, shape) {
      const gain = Math.sqrt(2 / (1 + a * a));
      const bound = gain * Math.sqrt(3 / fans(shape).fanIn);
      return uniform(-bound, bound).fill(rng, shape);
    },
  };
}

/** Kaiming normal (fan-in mode, ReLU gain): std = sqrt(2 / fan_in). */
export function kaimingNormal(): Init {
  return { describe: 'kaiming_normal', fill: (rng, shape) => normal(0, Math.sqrt(2 / fans(shape).fanIn)).fill(rng, shape) };
}

/** Xavier (Glorot) uniform: bound = gain * sqrt(6 / (fan_in + fan_out)). */
export function xavierUniform(gain = 1): Init {
  return {
    describe: 'xavier_uniform',
    fill(rng, shape) {
      const { fanIn, fanOut } = fans(shape);
      const bound = gain * Math.sqrt(6 / (fanIn + fanOut));
      return uniform(-bound, bound).fill(rng, shape);
    },
  };
}

/** Xavier (Glorot) normal: std = gain * sqrt(2 / (fan_in + fan_out)). */
export function xavierNormal(gain = 1): Init {
  return {
    describe: 'xavier_normal',
    fill(rng, shape) {
      const { fanIn, fanOut } = fans(shape);
      return normal(0, gain * Math.sqrt(2 / (fanIn + fanOut))).fill(rng, shape);
    },
  };
}

/** PyTorch's default bias of Linear and Conv2d: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) of the layer's weight. */
export function biasUniform(fanIn: number): Init {
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  return uniform(-bound, bound);
}
