import type { DType } from '../ir/dtype';
import type { Dim, Shape } from '../ir/shape';
import type { TensorData } from '../ir/tensor';

/** What shape inference knows of a value. */
export interface TypeInfo {
  dtype: DType;
  shape: Shape;
}

/** Raised by a shape rule; the builder adds the DSL op and module path to the message. */
export class ShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShapeError';
  }
}

/** What a shape rule sees of a node: its input types, attributes, and the values of inputs known at build time. */
export interface InferContext {
  readonly opType: string;
  readonly inputs: readonly (TypeInfo | undefined)[];
  readonly outputCount: number;
  input(index: number, role: string): TypeInfo;
  optionalInput(index: number): TypeInfo | undefined;
  /** The value of an input when it is a constant (initializer or Constant node), else undefined. */
  constant(index: number): TensorData | undefined;
  /**
   * The value of a 1-D int64 input that holds a shape, as dims: from a constant, or symbolically when the input is
   * the output of a Shape node (`[batch, 3, 64, 64]`). Undefined when not known at build time.
   */
  shapeValue(index: number): Dim[] | undefined;
  int(name: string, fallback: number): number;
  optionalInt(name: string): number | undefined;
  float(name: string, fallback: number): number;
  string(name: string, fallback: string): string;
  ints(name: string): number[] | undefined;
  tensor(name: string): TensorData | undefined;
  fail(message: string): never;
}

/**
 * The shape rule of one ONNX op: the types of its outputs from those of its inputs and its attributes, run by the
 * builder as each node is emitted. A rule rejects its inputs with ctx.fail (a ShapeError, which the builder
 * completes with the DSL op and module path).
 */
export interface ShapeRule {
  infer(ctx: InferContext): TypeInfo[];
}
