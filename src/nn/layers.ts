import * as F from '../dsl/functional';
import type { Tensor } from '../dsl/builder';
import { biasUniform, fans, Init, kaimingUniform, normal, ones, zeros } from './init';
import { Module } from './module';
import { Buffer, Parameter } from './parameter';

type Pair = number | [number, number];
const pair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : v);

/** y = x W^T + b. Weight [out, in]; PyTorch's default init (Kaiming uniform with a = sqrt(5), bias uniform 1/sqrt(in)). */
export class Linear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | undefined;

  constructor(readonly inFeatures: number, readonly outFeatures: number, options: { bias?: boolean; weightInit?: Init } = {}) {
    super();
    this.weight = new Parameter([outFeatures, inFeatures], options.weightInit ?? kaimingUniform());
    this.bias = options.bias === false ? undefined : new Parameter([outFeatures], biasUniform(inFeatures));
  }

  forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias);
  }
}

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
  weightInit?: Init;
}

/** 2-D convolution. Weight [out, in/groups, kH, kW]; PyTorch's default init. */
export class Conv2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | undefined;

  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: Pair, readonly options: Conv2dOptions = {}) {
    super();
    const groups = options.groups ?? 1;
    if (inChannels % groups !== 0 || outChannels % groups !== 0) {
      throw new Error(`Conv2d(${inChannels}, ${outChannels}): channels must be divisible by groups=${groups}`);
    }
    const shape = [outChannels, inChannels / groups, ...pair(kernelSize)];
    this.weight = new Parameter(shape, options.weightInit ?? kaimingUniform());
    this.bias = options.bias === false ? undefined : new Parameter([outChannels], biasUniform(fans(shape).fanIn));
  }

  forward(x: Tensor): Tensor {
    const { stride, padding, dilation, groups } = this.options;
    return F.conv2d(x, this.weight, this.bias, { stride, padding, dilation, groups });
  }
}

/** Batch normalization over channels, with running statistics as buffers (PyTorch's momentum convention). */
export class BatchNorm2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  readonly running_mean: Buffer;
  readonly running_var: Buffer;

  constructor(readonly numFeatures: number, readonly options: { eps?: number; momentum?: number } = {}) {
    super();
    this.weight = new Parameter([numFeatures], ones());
    this.bias = new Parameter([numFeatures], zeros());
    this.running_mean = new Buffer([numFeatures], zeros());
    this.running_var = new Buffer([numFeatures], ones());
  }

  forward(x: Tensor): Tensor {
    return F.batchNorm(x, {
      weight: this.weight, bias: this.bias, runningMean: this.running_mean, runningVar: this.running_var,
      eps: this.options.eps, momentum: this.options.momentum,
    });
  }
}

export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
    if (!(p >= 0 && p < 1)) throw new Error(`Dropout: probability must be in [0, 1), got ${p}`);
  }

  forward(x: Tensor): Tensor {
    return F.dropout(x, this.p);
  }
}

export class MaxPool2d extends Module {
  constructor(readonly kernelSize: Pair, readonly options: F.Pool2dOptions = {}) {
    super();
  }

  forward(x: Tensor): Tensor {
    return F.maxPool2d(x, this.kernelSize, this.options);
  }
}

export class AvgPool2d extends Module {
  constructor(readonly kernelSize: Pair, readonly options: F.Pool2dOptions & { countIncludePad?: boolean } = {}) {
    super();
  }

  forward(x: Tensor): Tensor {
    return F.avgPool2d(x, this.kernelSize, this.options);
  }
}

/** Mean over the spatial positions, flattened: [N, C, H, W] -> [N, C] (PyTorch's AdaptiveAvgPool2d(1) + flatten). */
export class GlobalAvgPool extends Module {
  forward(x: Tensor): Tensor {
    return F.flatten(F.globalAvgPool(x), 1);
  }
}

export class Flatten extends Module {
  constructor(readonly startDim = 1) {
    super();
  }

  forward(x: Tensor): Tensor {
    return F.flatten(x, this.startDim);
  }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return F.relu(x);
  }
}

export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return F.sigmoid(x);
  }
}

export class Tanh extends Module {
  forward(x: Tensor): Tensor {
    return F.tanh(x);
  }
}

export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

/** Lookup table [num, dim], initialized N(0, 1) as in PyTorch; the padding row, if any, starts at zero. */
export class Embedding extends Module {
  readonly weight: Parameter;

  constructor(readonly numEmbeddings: number, readonly embeddingDim: number, options: { paddingIdx?: number } = {}) {
    super();
    const padding = options.paddingIdx;
    const base = normal(0, 1);
    const init: Init = padding === undefined ? base : {
      describe: `${base.describe} with row ${padding} zero`,
      fill(rng, shape) {
        const values = base.fill(rng, shape);
        values.fill(0, padding * embeddingDim, (padding + 1) * embeddingDim);
        return values;
      },
    };
    this.weight = new Parameter([numEmbeddings, embeddingDim], init);
  }

  forward(indices: Tensor): Tensor {
    return F.gather(this.weight, indices, 0);
  }
}

/** Modules applied one after another; children are named 0, 1, 2, ... as in PyTorch. */
export class Sequential extends Module {
  readonly layers: Module[];

  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
  }

  override namedChildren(): [string, Module][] {
    return this.layers.map((m, i) => [String(i), m]);
  }

  forward(x: Tensor): Tensor {
    let y = x;
    for (const layer of this.layers) y = layer.forward(y) as Tensor;
    return y;
  }
}
