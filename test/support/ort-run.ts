import * as ort from 'onnxruntime-node';
import { BuildMode, GraphBuilder } from '../../src/dsl/builder';
import type { Tensor } from '../../src/dsl/builder';
import type { DType } from '../../src/ir/dtype';
import { encodeModel } from '../../src/onnx/write';
import type { Arr } from './reference';

export interface Feed {
  name: string;
  dtype?: DType;
  value: Arr;
}

/**
 * Builds a one-off graph whose inputs are the feeds, runs it in onnxruntime-node (CPU) and returns its outputs as
 * reference arrays.
 */
export async function runDsl(feeds: Feed[], body: (...inputs: Tensor[]) => Tensor | Tensor[], mode: BuildMode = 'eval'): Promise<Arr[]> {
  const { bytes, outputs } = buildDsl(feeds, body, mode);
  return runModelBytes(bytes, feeds, outputs);
}

/** The encoded one-off model of `runDsl`, with outputs named out0, out1, ... */
export function buildDsl(feeds: Feed[], body: (...inputs: Tensor[]) => Tensor | Tensor[], mode: BuildMode = 'eval'): { bytes: Uint8Array; outputs: number } {
  const b = new GraphBuilder('test', mode);
  const inputs = feeds.map((f) => b.input(f.name, f.dtype ?? 'float32', f.value.shape));
  const result = b.run(() => body(...inputs));
  const outs = Array.isArray(result) ? result : [result];
  outs.forEach((t, i) => b.output(`out${i}`, t));
  return { bytes: encodeModel(b.toModel()), outputs: outs.length };
}

export async function runModelBytes(bytes: Uint8Array, feeds: Feed[], outputs: number): Promise<Arr[]> {
  const session = await ort.InferenceSession.create(bytes);
  const ortFeeds: Record<string, ort.Tensor> = {};
  for (const f of feeds) ortFeeds[f.name] = toOrt(f.dtype ?? 'float32', f.value);
  const result = await session.run(ortFeeds);
  await session.release();
  return [...Array(outputs).keys()].map((i) => {
    const t = result[`out${i}`]!;
    return { shape: [...t.dims], data: Array.from(t.data as ArrayLike<number | bigint | boolean>, (v) => Number(v)) };
  });
}

function toOrt(dtype: DType, a: Arr): ort.Tensor {
  switch (dtype) {
    case 'float32': return new ort.Tensor('float32', Float32Array.from(a.data), a.shape);
    case 'float64': return new ort.Tensor('float64', Float64Array.from(a.data), a.shape);
    case 'int64': return new ort.Tensor('int64', BigInt64Array.from(a.data.map((v) => BigInt(v))), a.shape);
    case 'int32': return new ort.Tensor('int32', Int32Array.from(a.data), a.shape);
    case 'bool': return new ort.Tensor('bool', Uint8Array.from(a.data), a.shape);
    default: throw new Error(`test feeds of type ${dtype} are not supported`);
  }
}

export function maxAbsDiff(a: Arr, b: Arr): number {
  if (a.shape.join() !== b.shape.join()) throw new Error(`shapes differ: [${a.shape}] vs [${b.shape}]`);
  let m = 0;
  a.data.forEach((v, i) => (m = Math.max(m, Math.abs(v - b.data[i]!))));
  return m;
}
