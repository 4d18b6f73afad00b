import type { DType } from '../ir/dtype';
import { Init } from './init';

/**
 * A tensor owned by a module: its shape and how to initialize it. Its full name (`features.0.weight`) is given
 * when the model is built, from where it sits in the module tree, like a PyTorch state_dict key.
 */
export class Parameter {
  /** Set when the module tree is named; stable across builds of the same definition. */
  name = '';

  constructor(
    readonly shape: readonly number[],
    readonly init: Init,
    readonly options: { trainable?: boolean; dtype?: DType } = {},
  ) {
    if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new Error(`parameter shape [${shape}] must be non-negative integers`);
  }

  get trainable(): boolean {
    return this.options.trainable ?? true;
  }

  get dtype(): DType {
    return this.options.dtype ?? 'float32';
  }

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
}

/**
 * State that is not trained by gradients but changes in training (batch-norm running statistics). Not counted
 * as a parameter; a training graph outputs its new value.
 */
export class Buffer extends Parameter {
  constructor(shape: readonly number[], init: Init, dtype: DType = 'float32') {
    super(shape, init, { trainable: false, dtype });
  }
}
