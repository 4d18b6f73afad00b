import { Constant } from './constant';
import { Conv, ConvTranspose } from './conv';
import {
  Add, binary, Cast, Clip, Div, GRADS, LeakyRelu, LogSoftmax, Max, Min, Mul, Not, Pow, Softmax, Sub, unary, Where,
} from './elementwise';
import { Gemm, MatMul } from './matmul';
import { BatchNormalization, Dropout } from './normalization';
import { AveragePool, GlobalAveragePool, GlobalMaxPool, MaxPool } from './pool';
import { ReduceMax, ReduceMean, ReduceProd, ReduceSum, ReduceSumSquare } from './reduce';
import {
  Concat, ConstantOfShape, Expand, Flatten, Gather, Pad, Reshape, Resize, Scatter, Shape_, Slice, Split, Squeeze,
  Transpose, Unsqueeze,
} from './reshape';
import { NO_GRADIENT, OpRule } from './types';

/**
 * Every ONNX op (default domain, opset 17) the DSL and the gradient builder can emit, each with its shape rule and
 * its gradient rule (or NO_GRADIENT). The compiler checks that every row has both; adding an op means adding its
 * row here and its rules beside the others of its family.
 */
export const OPS = {
  // element-wise
  Identity: unary(false, GRADS.Identity),
  Neg: unary(false, GRADS.Neg),
  Abs: unary(false, GRADS.Abs),
  Relu: unary(true, GRADS.Relu),
  LeakyRelu,
  Sigmoid: unary(true, GRADS.Sigmoid),
  Tanh: unary(true, GRADS.Tanh),
  Exp: unary(true, GRADS.Exp),
  Log: unary(true, GRADS.Log),
  Sqrt: unary(true, GRADS.Sqrt),
  Reciprocal: unary(true, GRADS.Reciprocal),
  Erf: unary(true, GRADS.Erf),
  // Piecewise constant: its derivative is 0 wherever it exists.
  Sign: unary(false, NO_GRADIENT),
  Softmax,
  LogSoftmax,
  Add,
  Sub,
  Mul,
  Div,
  Pow,
  Max,
  Min,
  Equal: binary(NO_GRADIENT, 'bool'),
  Less: binary(NO_GRADIENT, 'bool'),
  Greater: binary(NO_GRADIENT, 'bool'),
  Not,
  Where,
  Clip,
  Cast,
  // linear algebra, convolution, pooling, normalization
  MatMul,
  Gemm,
  Conv,
  ConvTranspose,
  MaxPool,
  AveragePool,
  GlobalAveragePool,
  GlobalMaxPool,
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
  // reductions
  ReduceSum,
  ReduceMean,
  ReduceMax,
  ReduceProd,
  ReduceSumSquare,
} satisfies Record<string, OpRule>;

export type OpType = keyof typeof OPS;

export function isKnownOp(opType: string): opType is OpType {
  return Object.prototype.hasOwnProperty.call(OPS, opType);
}
