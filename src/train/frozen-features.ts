import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { defaultCacheDir } from '../data/image-cache';
import { PixelSource, selectSource } from '../data/pixel-source';
import { shardLayout, sharedReader } from '../data/pixel-store';
import { RecordFolderWriter } from '../data/record-cache';
import { fillBatch, hashImages, ImageDataset, Normalization } from '../data/dataset';
import { Node, replaceAllUsesWith, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import type { TensorData } from '../ir/tensor';
import { decodeModel } from '../onnx/read';
import { encodeModel } from '../onnx/write';
import { PER_IMAGE_OPS } from '../ops/per-image';
import type { OpType } from '../ops/registry';
import { eliminateDeadNodes } from '../passes/eliminate-dead-nodes';
import { temporaryFolder } from '../util/temporary-folder';
import { UserError } from '../util/user-error';

/**
 * Frozen backbones: when the first part of a model trains nothing (a pretrained backbone with frozen weights), its
 * output for an image never changes, so it is computed once per image and cached, and training runs only the rest
 * on the cached features. This file finds that split in a graph, cuts the graph there, and computes the features.
 */

/**
 * Ops that compute each image's result from that image alone (their column in src/ops/per-image.ts): a frozen part
 * made of them can be cached per image.
 */
const PER_IMAGE: ReadonlySet<string> = new Set((Object.keys(PER_IMAGE_OPS) as OpType[]).filter((op) => PER_IMAGE_OPS[op]));

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
  // The bytes of this model key the feature cache: only what computes the features may be in them, not the run's
  // config (a head's width) nor the head's weights, so that every head on the same backbone shares the features.
  copy.metadata.clear();
  copy.docString = '';
  return copy;
}

/** Drops nodes, graph inputs and initializers nothing uses any more. */
function pruneInputs(model: Model): void {
  const g = model.graph;
  eliminateDeadNodes(g);
  const used = new Set(g.nodes.flatMap((n) => n.inputs.filter((v) => v !== undefined).map((v) => v!.name)));
  for (const v of g.outputs) used.add(v.name);
  const kept = g.inputs.filter((v) => used.has(v.name));
  for (const v of g.inputs) if (!kept.includes(v)) g.values.delete(v.name);
  g.inputs.splice(0, g.inputs.length, ...kept);
  for (const name of [...g.initializers.keys()]) {
    if (used.has(name)) continue;
    g.initializers.delete(name);
    g.values.delete(name);
  }
}

/** A frozen backbone's cached features of a data set's images: a row of perImage floats per image, read a batch at a time. */
export interface CachedFeatures {
  rows: PixelSource;
  perImage: number[];
}

export interface FeatureOptions {
  normalization: Normalization;
  /** Intra-op threads and providers, as the trainer's sessions. */
  sessionOptions: ort.InferenceSession.SessionOptions;
  /** Folder of the feature cache (default: the image cache's). */
  cacheDir?: string;
  onProgress?: (done: number, total: number, what: string) => void;
  onNotice?: (message: string) => void;
  /** Asked between batches: true (Ctrl-C) stops the pass, with nothing cached. */
  shouldStop?: () => boolean;
}

/** The feature pass was stopped (Ctrl-C) before it finished: nothing was trained, nothing cached. */
class FeaturePassStopped extends UserError {}

/** Bump when the layout of a feature cache changes. */
const FEATURES_VERSION = 1;

/**
 * The features of every image of each data set, [count x perImage] floats, computed by the feature model a batch at
 * a time and written to record shards in the cache as they come (never held whole), or read from the cache: keyed by
 * the feature model (backbone weights and cut), the normalization and the images, so any change computes them anew.
 */
export async function computeFeatures(model: Model, split: FrozenSplit, sets: ImageDataset[], o: FeatureOptions): Promise<CachedFeatures[]> {
  const bytes = encodeModel(model);
  const perImage = split.perImage.reduce((a, b) => a * b, 1);
  const dir = path.join(o.cacheDir ?? defaultCacheDir(), 'features');
  let session: ort.InferenceSession | undefined;
  const out: CachedFeatures[] = [];
  try {
    for (const data of sets) {
      const key = hashImages(createHash('sha256').update(bytes).update(JSON.stringify(o.normalization)).update(`${data.channels}x${data.height}x${data.width}\n`), data).digest('hex');
      const folder = path.join(dir, `${key.slice(0, 32)}.records`);
      const cached = readFeatureCache(folder, data.count, perImage);
      if (cached !== undefined) {
        out.push({ rows: cached, perImage: split.perImage });
        continue;
      }
      session ??= await ort.InferenceSession.create(bytes, o.sessionOptions);
      const writer = featureWriter(folder, perImage, o.onNotice);
      try {
        const shards = writer.folder.addShards('features', data.count);
        const batch = 32;
        const image = data.channels * data.height * data.width;
        const input = new Float32Array(batch * image);
        const labels = new BigInt64Array(batch);
        for (let start = 0; start < data.count; start += batch) {
          if (o.shouldStop?.()) throw new FeaturePassStopped(`stopped during the backbone's feature pass (${start.toLocaleString('en-US')} of ${data.count.toLocaleString('en-US')} ${data.name} images): nothing was trained or cached`);
          const n = Math.min(batch, data.count - start);
          fillBatch(data, Array.from({ length: n }, (_, i) => start + i), o.normalization, input, labels);
          const r = await session.run({ input: new ort.Tensor('float32', input.subarray(0, n * image), [n, data.channels, data.height, data.width]) });
          const values = r.features!.data as Float32Array;
          writer.folder.write(shards, start, new Uint8Array(values.buffer, values.byteOffset, n * perImage * 4));
          o.onProgress?.(start + n, data.count, data.name);
        }
        writer.folder.commit({ version: FEATURES_VERSION, count: data.count, perImage });
      } catch (err) {
        writer.folder.abandon();
        throw err;
      }
      const written = readFeatureCache(writer.target, data.count, perImage);
      if (written === undefined) throw new Error(`the feature cache just written in ${writer.target} cannot be read back`);
      out.push({ rows: written, perImage: split.perImage });
    }
  } finally {
    await session?.release();
  }
  return out;
}

/** A writer of a feature cache folder; where the cache cannot be written, a temporary folder for this run. */
function featureWriter(folder: string, perImage: number, onNotice?: (message: string) => void): { folder: RecordFolderWriter; target: string } {
  try {
    return { folder: new RecordFolderWriter(folder, perImage * 4), target: folder };
  } catch (err) {
    const temporary = temporaryFolder('deepvision-features-');
    onNotice?.(`note: could not write the feature cache in ${path.dirname(folder)} (${(err as Error).message.split('\n')[0]}); computing into ${temporary} for this run`);
    const target = path.join(temporary, path.basename(folder));
    return { folder: new RecordFolderWriter(target, perImage * 4), target };
  }
}

/** The rows of a feature cache folder, or undefined when it is missing, of another version or damaged. */
function readFeatureCache(folder: string, count: number, perImage: number): PixelSource | undefined {
  try {
    const index = JSON.parse(fs.readFileSync(path.join(folder, 'index.json'), 'utf8')) as { version?: unknown; count?: unknown; perImage?: unknown };
    if (index.version !== FEATURES_VERSION || index.count !== count || index.perImage !== perImage) return undefined;
  } catch {
    return undefined;
  }
  const shards = shardLayout(folder, 'features', count, perImage * 4);
  if (!shards.every((s) => fs.statSync(s.file, { throwIfNoEntry: false })?.size === s.slots * perImage * 4)) return undefined;
  return { kind: 'records', shards, rows: Int32Array.from({ length: count }, (_, i) => i) };
}

/** Copies the features of the images at `indices` into `out`, one row after the other. */
export function readFeatureRows(features: CachedFeatures, indices: ArrayLike<number>, out: Float32Array): void {
  const rowBytes = features.perImage.reduce((a, b) => a * b, 1) * 4;
  sharedReader(features.rows, rowBytes).gather(indices, new Uint8Array(out.buffer, out.byteOffset, indices.length * rowBytes));
}

/** The features of the images at `indices` (a sample): the same records, other rows. */
export function featureSubset(features: CachedFeatures, indices: readonly number[]): CachedFeatures {
  const rowBytes = features.perImage.reduce((a, b) => a * b, 1) * 4;
  return { ...features, rows: selectSource(features.rows, rowBytes, indices, (n) => new Uint8Array(n)) };
}

/** Training batches of cached features in the epoch's order, shaped like the image pipeline's. */
export async function* featureBatches(
  features: CachedFeatures, labels: Int32Array, order: readonly number[], batchSize: number, firstBatch: number,
): AsyncGenerator<{ input: Float32Array; labels: BigInt64Array; count: number }> {
  const perImage = features.perImage.reduce((a, b) => a * b, 1);
  for (let start = firstBatch * batchSize; start < order.length; start += batchSize) {
    const n = Math.min(batchSize, order.length - start);
    const rows = order.slice(start, start + n);
    const input = new Float32Array(n * perImage);
    readFeatureRows(features, rows, input);
    yield { input, labels: BigInt64Array.from(rows, (k) => BigInt(labels[k]!)), count: n };
  }
}
