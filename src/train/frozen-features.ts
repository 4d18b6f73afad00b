import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { defaultCacheDir } from '../data/image-cache';
import { fillBatch, hashImages, ImageDataset, Normalization } from '../data/dataset';
import { Node, replaceAllUsesWith, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import type { TensorData } from '../ir/tensor';
import { decodeModel } from '../onnx/read';
import { encodeModel } from '../onnx/write';
import { eliminateDeadNodes } from '../passes/eliminate-dead-nodes';
import { writeFileAtomic } from '../util/atomic-write';

/**
 * Frozen backbones: when the first part of a model trains nothing (a pretrained backbone with frozen weights), its
 * output for an image never changes, so it is computed once per image and cached, and training runs only the rest
 * on the cached features. This file finds that split in a graph, cuts the graph there, and computes the features.
 */

/** Ops that compute each image's result from that image alone: a frozen part made of them can be cached per image. */
const PER_IMAGE = new Set([
  'Conv', 'Relu', 'Clip', 'LeakyRelu', 'Sigmoid', 'Tanh', 'Add', 'Sub', 'Mul', 'Div', 'Identity', 'MaxPool',
  'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'Flatten', 'Concat', 'BatchNormalization', 'Gemm', 'MatMul',
]);

/** The value where a model's frozen part ends: computed from the image alone, with `perImage` values per image. */
export interface FrozenSplit {
  value: string;
  perImage: number[];
}

/**
 * Where the frozen part of `model` (its `input` through ops of frozen parameters only) ends, when it ends in one value
 * of a fixed size per image that the rest reads; undefined when there is nothing worth caching (the rest reads the
 * image itself, or several frozen values).
 */
export function findFrozenSplit(model: Model, frozenInputs: ReadonlySet<string>): FrozenSplit | undefined {
  const g = model.graph;
  const input = g.values.get('input');
  if (input === undefined) return undefined;
  // Frozen: computed from the image, constants and frozen parameters by per-image ops. fromImage: depends on the image.
  const frozen = new Set<Value>([input, ...g.inputs.filter((v) => frozenInputs.has(v.name))]);
  for (const name of g.initializers.keys()) frozen.add(g.values.get(name)!);
  const fromImage = new Set<Value>([input]);
  for (const node of g.nodes) {
    if (!PER_IMAGE.has(node.opType) || node.domain !== '') continue;
    const ins = node.inputs.filter((v): v is Value => v !== undefined);
    if (!ins.every((v) => frozen.has(v))) continue;
    // Gemm and MatMul mix rows: per image only with the image on the left and constants on the right.
    if ((node.opType === 'Gemm' || node.opType === 'MatMul') && (!fromImage.has(ins[0]!) || ins.slice(1).some((v) => fromImage.has(v)) || node.attr('transA', 'int') === 1)) continue;
    if ((node.opType === 'Concat' || node.opType === 'Flatten') && (node.attr('axis', 'int') ?? 1) === 0) continue;
    for (const v of node.outputs) {
      if (v === undefined) continue;
      frozen.add(v);
      if (ins.some((i) => fromImage.has(i))) fromImage.add(v);
    }
  }
  const boundary = new Set<Value>();
  for (const node of g.nodes) {
    const isFrozen = node.outputs.some((v) => v !== undefined && frozen.has(v));
    if (isFrozen) continue;
    for (const v of node.inputs) if (v !== undefined && fromImage.has(v)) boundary.add(v);
  }
  for (const v of g.outputs) if (fromImage.has(v)) boundary.add(v);
  if (boundary.size !== 1) return undefined;
  const value = [...boundary][0]!;
  const dims = value.shape?.slice(1);
  if (value === input || dims === undefined || !dims.every((d): d is number => typeof d === 'number')) return undefined;
  return { value: value.name, perImage: dims };
}

/** A copy of `model` in which the split value is a graph input named `features`, and the frozen part is gone. */
export function withFeaturesInput(model: Model, split: FrozenSplit): Model {
  const copy = decodeModel(encodeModel(model));
  const g = copy.graph;
  const old = g.values.get(split.value)!;
  const features = g.addValue(new Value('features', 'float32', ['batch', ...split.perImage]));
  replaceAllUsesWith(old, features);
  g.outputs.forEach((v, i) => v === old && (g.outputs[i] = features));
  g.inputs.splice(0, 0, features);
  pruneInputs(copy);
  return copy;
}

/**
 * A copy of `model` that computes only the split value, as output `features`, from the image alone: the frozen
 * parameters it reads become initializers with their `values` (so the model's bytes identify its features).
 */
export function featureModel(model: Model, split: FrozenSplit, values: ReadonlyMap<string, TensorData>): Model {
  const copy = decodeModel(encodeModel(model));
  const g = copy.graph;
  for (const v of [...g.inputs]) {
    const data = values.get(v.name);
    if (data === undefined) continue;
    g.initializers.set(v.name, data);
    g.inputs.splice(g.inputs.indexOf(v), 1);
  }
  const value = g.values.get(split.value)!;
  const out = g.addValue(new Value('features', 'float32', ['batch', ...split.perImage]));
  const identity = new Node('Identity', '/features/Identity');
  identity.addInput(value);
  identity.addOutput(out);
  g.addNode(identity);
  g.outputs.splice(0, g.outputs.length, out);
  pruneInputs(copy);
  return copy;
}

/** Drops nodes and graph inputs nothing uses any more. */
function pruneInputs(model: Model): void {
  const g = model.graph;
  eliminateDeadNodes(g);
  const used = new Set(g.nodes.flatMap((n) => n.inputs.filter((v) => v !== undefined).map((v) => v!.name)));
  for (const v of g.outputs) used.add(v.name);
  const kept = g.inputs.filter((v) => used.has(v.name));
  for (const v of g.inputs) if (!kept.includes(v)) g.values.delete(v.name);
  g.inputs.splice(0, g.inputs.length, ...kept);
}

export interface FeatureOptions {
  normalization: Normalization;
  /** Intra-op threads and providers, as the trainer's sessions. */
  sessionOptions: ort.InferenceSession.SessionOptions;
  /** Folder of the feature cache (default: the image cache's). */
  cacheDir?: string;
  onProgress?: (done: number, total: number, what: string) => void;
}

/**
 * The features of every image of each data set, [count x perImage] floats, computed by the feature model in
 * batches, or read from the cache: keyed by the feature model (backbone weights and cut), the normalization and
 * the images' bytes, so any change computes them anew.
 */
export async function computeFeatures(model: Model, split: FrozenSplit, sets: ImageDataset[], o: FeatureOptions): Promise<Float32Array[]> {
  const bytes = encodeModel(model);
  const perImage = split.perImage.reduce((a, b) => a * b, 1);
  const dir = path.join(o.cacheDir ?? defaultCacheDir(), 'features');
  let session: ort.InferenceSession | undefined;
  const out: Float32Array[] = [];
  try {
    for (const data of sets) {
      const key = hashImages(createHash('sha256').update(bytes).update(JSON.stringify(o.normalization)).update(`${data.channels}x${data.height}x${data.width}\n`), data).digest('hex');
      const file = path.join(dir, `${key.slice(0, 32)}.f32`);
      const cached = readCache(file, data.count * perImage);
      if (cached !== undefined) {
        out.push(cached);
        continue;
      }
      session ??= await ort.InferenceSession.create(bytes, o.sessionOptions);
      const features = new Float32Array(data.count * perImage);
      const batch = 32;
      const image = data.channels * data.height * data.width;
      const input = new Float32Array(batch * image);
      const labels = new BigInt64Array(batch);
      for (let start = 0; start < data.count; start += batch) {
        const n = Math.min(batch, data.count - start);
        fillBatch(data, Array.from({ length: n }, (_, i) => start + i), o.normalization, input, labels);
        const r = await session.run({ input: new ort.Tensor('float32', input.subarray(0, n * image), [n, data.channels, data.height, data.width]) });
        features.set(r.features!.data as Float32Array, start * perImage);
        o.onProgress?.(start + n, data.count, data.name);
      }
      try {
        writeFileAtomic(file, new Uint8Array(features.buffer, features.byteOffset, features.byteLength));
      } catch {
        // A cache that cannot be written costs only the time to compute again next run.
      }
      out.push(features);
    }
  } finally {
    await session?.release();
  }
  return out;
}

function readCache(file: string, length: number): Float32Array | undefined {
  try {
    const bytes = fs.readFileSync(file);
    if (bytes.byteLength !== length * 4) return undefined;
    return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  } catch {
    return undefined;
  }
}

/** Training batches of cached features in the epoch's order, shaped like the image pipeline's. */
export async function* featureBatches(
  features: Float32Array, labels: Int32Array, perImage: number, order: readonly number[], batchSize: number, firstBatch: number,
): AsyncGenerator<{ input: Float32Array; labels: BigInt64Array; count: number }> {
  for (let start = firstBatch * batchSize; start < order.length; start += batchSize) {
    const n = Math.min(batchSize, order.length - start);
    const input = new Float32Array(n * perImage);
    const out = new BigInt64Array(n);
    for (let i = 0; i < n; i++) {
      const k = order[start + i]!;
      input.set(features.subarray(k * perImage, (k + 1) * perImage), i * perImage);
      out[i] = BigInt(labels[k]!);
    }
    yield { input, labels: out, count: n };
  }
}
