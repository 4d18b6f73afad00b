import type { Tensor } from 'onnxruntime-common';

/**
 * What builds tensors in the caller's runtime, `new ort.Tensor(type, data, dims)`: code shared by Node and the page
 * takes it as a parameter, so that it imports only onnxruntime-common's types.
 */
export type TensorClass = new (type: 'int64' | 'float32', data: BigInt64Array | Float32Array, dims: readonly number[]) => Tensor;
