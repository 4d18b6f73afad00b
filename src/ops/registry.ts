/**
 * The shape table: every ONNX op (default domain, opset 17) the DSL and the gradient builder can emit, with its
 * shape rule. This layer knows shapes only; gradients live above the DSL, in src/autodiff.
 *
 * Adding an op (Elu, say) is four edits (the rules themselves aside, one line each). GRADIENT_RULES and PER_IMAGE_OPS
 * are keyed by OpType, so the compiler refuses a row missing there, and the DSL can only emit ops of this table:
 *   1. its row here: a shape rule from its family file in src/ops, or a shared one such as unary(true);
 *   2. its row in GRADIENT_RULES (src/autodiff/gradient-rules.ts): its rule, written in
 *      src/autodiff/rules/<family>.ts, or NO_GRADIENT;
 *   3. its row in PER_IMAGE_OPS (src/ops/per-image.ts): whether it computes each image's result from that image
 *      alone;
 *   4. its DSL function in src/dsl/functional.ts (F.elu), which emits it.
 */
import { Constant } from './constant';
import { Conv, ConvTranspose } from './conv';
import { binary, Cast, Clip, Not, Softmax, unary, Where } from './elementwise';
import { Gemm, MatMul } from './matmul';
import { BatchNormalization, Dropout } from './normalization';
import { GlobalPool, WindowPool } from './pool';
import { reduce } from './reduce';
import {
  Concat, ConstantOfShape, Expand, Flatten, Gather, Pad, Reshape, Resize, Scatter, Shape_, Slice, Split, Squeeze,
  Transpose, Unsqueeze,
} from './reshape';
import type { ShapeRule } from './types';

export const SHAPE_RULES = {
  // element-wise
  Identity: unary(false),
  Neg: unary(false),
  Abs: unary(false),
  Relu: unary(true),
  LeakyRelu: unary(true),
  Sigmoid: unary(true),
  Tanh: unary(true),
  Exp: unary(true),
  Log: unary(true),
  Sqrt: unary(true),
  Reciprocal: unary(true),
  Erf: unary(true),
  Sign: unary(false),
  Softmax,
  LogSoftmax: Softmax,
  Add: binary(),
  Sub: binary(),
  Mul: binary(),
  Div: binary(),
  // The exponent may have another type than the base.
  Pow: binary(undefined, false),
  Max: binary(),
  Min: binary(),
  Equal: binary('bool'),
  Less: binary('bool'),
  Greater: binary('bool'),
  Not,
  Where,
  Clip,
  Cast,
  // linear algebra, convolution, pooling, normalization
  MatMul,
  Gemm,
  Conv,
  ConvTranspose,
  MaxPool: WindowPool,
  AveragePool: WindowPool,
  GlobalAveragePool: GlobalPool,
  GlobalMaxPool: GlobalPool,
  BatchNormalization,
  Dropout,
  // shapes and indexing
  Flatten,
  Reshape,
  Transpose,
  Concat,
  Split,
  Slice,
  Gather,
  Unsqueeze,
  Squeeze,
  Expand,
  Pad,
  Resize,
  ScatterND: Scatter,
  ScatterElements: Scatter,
  Shape: Shape_,
  Constant,
  ConstantOfShape,
  // reductions: ReduceSum takes its axes as an input (opset 13), the others as an attribute (until opset 18)
  ReduceSum: reduce('input'),
  ReduceMean: reduce('attribute'),
  ReduceMax: reduce('attribute'),
  ReduceProd: reduce('attribute'),
  ReduceSumSquare: reduce('attribute'),
} satisfies Record<string, ShapeRule>;

export type OpType = keyof typeof SHAPE_RULES;

export function isKnownOp(opType: string): opType is OpType {
  return Object.prototype.hasOwnProperty.call(SHAPE_RULES, opType);
}
