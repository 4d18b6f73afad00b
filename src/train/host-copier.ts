import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../dsl/builder';
import * as F from '../dsl/functional';
import { encodeModel } from '../onnx/write';

/** Copies named state tensors to the host; release() frees its session. */
export type HostCopier = ((tensors: Map<string, ort.Tensor>) => Promise<Map<string, ort.Tensor>>) & { release(): Promise<void> };

/**
 * A session of Identity nodes that brings GPU-resident state back to the host (for checkpoints): onnxruntime-node
 * 1.30 aborts the process when getData() downloads a WebGPU tensor, while outputs placed on the CPU work.
 */
export async function hostCopier(
  names: string[], shapeOf: (name: string) => readonly number[], options: ort.InferenceSession.SessionOptions,
): Promise<HostCopier> {
  const b = new GraphBuilder('download');
  const safe = (name: string) => `t${names.indexOf(name)}`;
  for (const name of names) b.output(`${safe(name)}_host`, b.run(() => F.identity(b.input(safe(name), 'float32', shapeOf(name)))));
  const session = await ort.InferenceSession.create(encodeModel(b.toModel()), { ...options, preferredOutputLocation: 'cpu' });
  const copy = async (tensors: Map<string, ort.Tensor>) => {
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of names) feeds[safe(name)] = tensors.get(name)!;
    const out = await session.run(feeds);
    return new Map(names.map((name) => [name, out[`${safe(name)}_host`]!]));
  };
  return Object.assign(copy, { release: () => session.release() });
}
