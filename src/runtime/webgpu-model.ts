import type { Model } from '../ir/model';
import { decodeModel } from '../onnx/read';
import { encodeModel } from '../onnx/write';
import { lowerLogSoftmax } from '../passes/lower-log-softmax';

/**
 * The bytes of a model for a WebGPU session: ops that the WebGPU provider lacks, and that would send tensors to
 * the host and back in mid-graph, rewritten into ones it has (LogSoftmax). A copy is rewritten; `model` is left
 * as it is, and so are the artifacts on disk.
 */
export function modelForWebGpu(model: Model): Uint8Array {
  const bytes = encodeModel(model);
  const copy = decodeModel(bytes);
  return lowerLogSoftmax(copy) > 0 ? encodeModel(copy) : bytes;
}
