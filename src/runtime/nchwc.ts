import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../dsl/builder';
import * as F from '../dsl/functional';
import type { Model } from '../ir/model';
import { decodeModel } from '../onnx/read';
import { encodeModel } from '../onnx/write';
import { lowerConvToNchwc } from '../passes/lower-conv-nchwc';
import { Rng } from '../util/rng';
import { rewrittenBytes } from './rewritten-model';

let probed: Promise<number | undefined> | undefined;

/**
 * The channel block size of onnxruntime's NCHWc CPU kernels on this machine (16 with AVX-512, 8 with AVX2), or
 * undefined where they are missing or disagree with the standard Conv. Found by running a small convolution both
 * ways for each candidate: the block size is a property of the CPU that ORT does not expose. Probed once per process.
 */
export function nchwcBlockSize(): Promise<number | undefined> {
  probed ??= (async () => {
    for (const candidate of [16, 8, 4]) if (await agrees(candidate)) return candidate;
    return undefined;
  })();
  return probed;
}

async function agrees(blockSize: number): Promise<boolean> {
  const channels = 2 * blockSize;
  const b = new GraphBuilder('nchwc_probe');
  const x = b.input('x', 'float32', [1, channels, 5, 5]);
  const w = b.input('w', 'float32', [channels, channels, 3, 3]);
  const dy = b.input('dy', 'float32', [1, channels, 5, 5]);
  b.output('y', b.run(() => F.relu(F.conv2d(x, w, undefined, { padding: 1 }))));
  b.output('dx', b.op('ConvTranspose', [dy, w], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, 'convT'));
  const reference = b.toModel();
  const lowered = decodeModel(encodeModel(reference));
  if (lowerConvToNchwc(lowered, blockSize) !== 2) return false;
  const rng = new Rng(`nchwc/${blockSize}`);
  const tensor = (dims: number[]) => new ort.Tensor('float32', Float32Array.from({ length: dims.reduce((p, q) => p * q, 1) }, () => rng.normal()), dims);
  const feeds = { x: tensor([1, channels, 5, 5]), w: tensor([channels, channels, 3, 3]), dy: tensor([1, channels, 5, 5]) };
  try {
    const options: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], graphOptimizationLevel: 'extended', logSeverityLevel: 3 };
    const [expected, actual] = await Promise.all([reference, lowered].map(async (model) => {
      const session = await ort.InferenceSession.create(encodeModel(model), options);
      try {
        return await session.run(feeds);
      } finally {
        await session.release();
      }
    }));
    return ['y', 'dx'].every((name) => {
      const e = expected![name]!.data as Float32Array;
      const a = actual![name]!.data as Float32Array;
      return e.every((v, i) => Math.abs(v - a[i]!) <= 1e-4 * (1 + Math.abs(v)));
    });
  } catch {
    return false;
  }
}

/**
 * The bytes of a model for a CPU session: convolutions lowered to the blocked kernels where this machine has them
 * (a copy is lowered; `model` is left as it is). Reports how many layers were lowered.
 */
export async function modelForCpu(model: Model): Promise<{ bytes: Uint8Array; lowered: number }> {
  const blockSize = await nchwcBlockSize();
  if (blockSize === undefined) return { bytes: encodeModel(model), lowered: 0 };
  const { bytes, rewritten } = rewrittenBytes(model, (copy) => lowerConvToNchwc(copy, blockSize));
  return { bytes, lowered: rewritten };
}
