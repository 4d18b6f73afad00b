import type { GraphBuilder, Tensor } from '../dsl/builder';
import type { Node } from '../ir/graph';
import type { TensorData } from '../ir/tensor';

/**
 * What a gradient rule sees: the forward node's inputs and outputs as tensors of the graph being built, the
 * gradients flowing into its outputs, and which inputs need a gradient. Rules emit nodes with the same DSL as
 * forward code (the builder is active while they run).
 */
export interface GradContext {
  readonly builder: GraphBuilder;
  readonly node: Node;
  input(index: number): Tensor;
  /** A forward output (for rules that reuse the forward result, e.g. Sigmoid's y * (1 - y)). */
  output(index: number): Tensor;
  /** The gradient of the loss with respect to output `index`, or undefined when none flows into it. */
  gradOutput(index: number): Tensor | undefined;
  /**
   * The gradient of output `index` (default 0) where a rule relies on one: the gradient builder runs a rule only
   * when a gradient flows into one of its outputs, so for the only output of an op (or the one output of several
   * that reaches a loss) it is there. Throws a GradientError naming the node when it is not.
   */
  outputGrad(index?: number): Tensor;
  needsGrad(index: number): boolean;
  /** The nodes of the forward graph (not the gradient nodes built so far) that read output `index`. */
  forwardReaders(index: number): readonly Node[];
  int(name: string, fallback: number): number;
  float(name: string, fallback: number): number;
  ints(name: string): number[] | undefined;
  string(name: string, fallback: string): string;
  /** The build-time value of input `index`, when it is a constant. */
  constant(index: number): TensorData | undefined;
  /** As `constant`, for a rule that needs the value (Slice's starts): a computed input is an error naming `what`. */
  requireConstant(index: number, what: string): TensorData;
}

/**
 * A gradient rule returns one thunk per input (undefined where the input has no gradient); the gradient builder
 * calls only the thunks of inputs that need a gradient, so unneeded work is never emitted.
 */
export type GradRule = (ctx: GradContext) => readonly ((() => Tensor) | undefined)[];

/** Marks ops through which no gradient flows (comparisons, shapes, constants, backward-only ops). */
export const NO_GRADIENT = 'no gradient' as const;
