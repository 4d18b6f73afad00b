/**
 * The gradient table: for every op of the shape table (SHAPE_RULES in src/ops/registry.ts), its gradient rule or
 * NO_GRADIENT. Typed Record<OpType, ...>, so the compiler refuses an op with a shape rule and no row here, and a row
 * for an op the shape table lacks. The rules are written with the DSL and live in src/autodiff/rules/<family>.ts.
 *
 * Adding an op (Elu, say) is four one-line edits: its shape row in SHAPE_RULES (src/ops/registry.ts), its row here,
 * its row in PER_IMAGE_OPS (src/ops/per-image.ts) and its DSL function (F.elu in src/dsl/functional.ts).
 */
import type { OpType } from '../ops/registry';
import { GradRule, NO_GRADIENT } from './gradient-rule';
import { Conv } from './rules/conv';
import {
  Abs, Add, Cast, Clip, Div, Erf, Exp, Identity, LeakyRelu, Log, LogSoftmax, Max, Min, Mul, Neg, Pow, Reciprocal, Relu,
  Sigmoid, Softmax, Sqrt, Sub, Tanh, Where,
} from './rules/elementwise';
import { Gemm, MatMul } from './rules/matmul';
import { BatchNormalization, Dropout } from './rules/normalization';
import { AveragePool, GlobalAveragePool, GlobalMaxPool, MaxPool } from './rules/pool';
import { ReduceMax, ReduceMean, ReduceSum, ReduceSumSquare } from './rules/reduce';
import { Concat, Expand, Gather, reshapeBack, Slice, Split, Transpose } from './rules/reshape';

export const GRADIENT_RULES: Record<OpType, GradRule | typeof NO_GRADIENT> = {
  // element-wise
  Identity,
  Neg,
  Abs,
  Relu,
  LeakyRelu,
  Sigmoid,
  Tanh,
  Exp,
  Log,
  Sqrt,
  Reciprocal,
  Erf,
  // Piecewise constant: its derivative is 0 wherever it exists.
  Sign: NO_GRADIENT,
  Softmax,
  LogSoftmax,
  Add,
  Sub,
  Mul,
  Div,
  Pow,
  Max,
  Min,
  Equal: NO_GRADIENT,
  Less: NO_GRADIENT,
  Greater: NO_GRADIENT,
  Not: NO_GRADIENT,
  Where,
  Clip,
  Cast,
  // linear algebra, convolution, pooling, normalization
  MatMul,
  Gemm,
  Conv,
  // Emitted by gradient rules (convBackpropInput, col2im); it has no rule of its own.
  ConvTranspose: NO_GRADIENT,
  MaxPool,
  AveragePool,
  GlobalAveragePool,
  GlobalMaxPool,
  BatchNormalization,
  Dropout,
  // shapes and indexing
  Flatten: reshapeBack,
  Reshape: reshapeBack,
  Transpose,
  Concat,
  Split,
  Slice,
  Gather,
  Unsqueeze: reshapeBack,
  Squeeze: reshapeBack,
  Expand,
  Pad: NO_GRADIENT,
  Resize: NO_GRADIENT,
  ScatterND: NO_GRADIENT,
  ScatterElements: NO_GRADIENT,
  Shape: NO_GRADIENT,
  Constant: NO_GRADIENT,
  ConstantOfShape: NO_GRADIENT,
  // reductions
  ReduceSum,
  ReduceMean,
  ReduceMax,
  ReduceProd: NO_GRADIENT,
  ReduceSumSquare,
};
