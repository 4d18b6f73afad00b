import type { InferenceSession, Tensor } from 'onnxruntime-common';

/**
 * Output `name` of a session run. A model written elsewhere (a file, an older export) may lack an output the caller
 * relies on: that is one clear error naming the output and what the run has, not a TypeError further on. Shared by
 * Node and the page (onnxruntime-common types only).
 */
export function outputOf(outputs: InferenceSession.OnnxValueMapType, name: string, what = 'the model'): Tensor {
  const value = outputs[name];
  if (value === undefined) throw new Error(`${what} has no output '${name}' (it gave ${Object.keys(outputs).map((k) => `'${k}'`).join(', ') || 'none'})`);
  return value as Tensor;
}
