import type { DType } from '../ir/dtype';
import type { Value } from '../ir/graph';
import { Dim, formatShape, Shape } from '../ir/shape';
import type { GraphBuilder } from './builder';

/** A handle on a value of the graph being built: what DSL code passes between ops. */
export class Tensor {
  constructor(readonly builder: GraphBuilder, readonly value: Value) {}

  get name(): string {
    return this.value.name;
  }

  get dtype(): DType {
    return this.value.dtype!;
  }

  get shape(): Shape {
    return this.value.shape!;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** Size of an axis (negative axes count from the end). */
  dim(axis: number): Dim {
    const d = this.shape[axis < 0 ? axis + this.rank : axis];
    if (d === undefined) throw new Error(`axis ${axis} is out of range for ${this.toString()}`);
    return d;
  }

  toString(): string {
    return `Tensor '${this.name}' ${this.dtype}${formatShape(this.shape)}`;
  }
}
