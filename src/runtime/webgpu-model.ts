import type { Model } from '../ir/model';
import { limitSplitOutputs } from '../passes/limit-split-outputs';
import { lowerLogSoftmax } from '../passes/lower-log-softmax';
import { rewrittenBytes } from './rewritten-model';

/**
 * The bytes of a model for a WebGPU session, rewritten where the WebGPU provider falls short: ops it lacks, which
 * would send tensors to the host and back in mid-graph (LogSoftmax), and Splits into more parts than a shader may
 * bind buffers (unrolled sequence models). A copy is rewritten; `model` is left as it is, and so are the artifacts
 * on disk.
 */
export function modelForWebGpu(model: Model): Uint8Array {
  return rewrittenBytes(model, (copy) => lowerLogSoftmax(copy) + limitSplitOutputs(copy)).bytes;
}
