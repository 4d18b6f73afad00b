import type { DType } from '../ir/dtype';
import type { Shape } from '../ir/shape';
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
  int(name: string, fallback: number): number;
  optionalInt(name: string): number | undefined;
  float(name: string, fallback: number): number;
  string(name: string, fallback: string): string;
  ints(name: string): number[] | undefined;
  tensor(name: string): TensorData | undefined;
  fail(message: string): never;
}

/**
 * Everything deepvision knows about one ONNX op. The shape rule runs at build time; the gradient rule (added by
 * the autodiff work) sits in the same object, so adding an op touches one place.
 */
export interface OpRule {
  infer(ctx: InferContext): TypeInfo[];
}
