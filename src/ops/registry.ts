import { Constant } from './constant';
import { Conv } from './conv';
import { binary, Cast, Clip, SoftmaxFamily, unary, Where } from './elementwise';
import { Gemm, MatMul } from './matmul';
import { BatchNormalization, Dropout } from './normalization';
import { GlobalPool, Pool } from './pool';
import { reduce } from './reduce';
import {
  Concat, Expand, Flatten, Gather, Reshape, Shape_, Slice, Split, Squeeze, Transpose, Unsqueeze,
} from './reshape';
import type { OpRule } from './types';

/**
 * Every ONNX op (default domain, opset 17) the DSL can emit, with its rules. The table is typed so that code
 * asking for an op's rules names only ops listed here; adding an op means adding its row here and its rules
 * beside the others of its family.
 */
export const OPS = {
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
  Softmax: SoftmaxFamily,
  LogSoftmax: SoftmaxFamily,
  Add: binary(),
  Sub: binary(),
  Mul: binary(),
  Div: binary(),
  Pow: binary(undefined, false),
  Max: binary(),
  Min: binary(),
  Equal: binary('bool'),
  Less: binary('bool'),
  Greater: binary('bool'),
  Where,
  Clip,
  Cast,
  // linear algebra and convolution
  MatMul,
  Gemm,
  Conv,
  MaxPool: Pool,
  AveragePool: Pool,
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
  Shape: Shape_,
  Constant,
  // reductions
  ReduceSum: reduce('input'),
  ReduceMean: reduce('attribute'),
  ReduceMax: reduce('attribute'),
} satisfies Record<string, OpRule>;

export type OpType = keyof typeof OPS;

export function isKnownOp(opType: string): opType is OpType {
  return Object.prototype.hasOwnProperty.call(OPS, opType);
}
