import type { Model } from '../ir/model';
import { lowerLogSoftmax } from '../passes/lower-log-softmax';
import { rewrittenBytes } from './rewritten-model';

/**
 * The bytes of a model for a WebGPU session: ops that the WebGPU provider lacks, and that would send tensors to
 * the host and back in mid-graph, rewritten into ones it has (LogSoftmax). A copy is rewritten; `model` is left
 * as it is, and so are the artifacts on disk.
 */
export function modelForWebGpu(model: Model): Uint8Array {
  return rewrittenBytes(model, lowerLogSoftmax).bytes;
}
