import * as ort from 'onnxruntime-node';
import type { Normalization } from '../data/dataset';
import { CheckpointError, NamedTensor, readSafetensors, writeSafetensors } from '../io/safetensors';
import type { Config } from '../model/definition';
import type { RngState } from '../util/rng';
import type { EpochMetrics } from '../metrics/epoch-metrics';


/** Where training stands: enough to continue exactly where it stopped. */
export interface TrainingPosition {
  /** Epoch in progress (0-based) and the next batch of it. */
  epoch: number;
  batch: number;
  /** Updates done so far. */
  step: number;
  /** The shuffling generator's state at the start of `epoch`. */
  epochRng: RngState;
  /** Sum and count of the training loss over the batches of `epoch` done so far (to resume its average). */
  epochLoss?: { sum: number; count: number };
}

export interface CheckpointContents {
  position: TrainingPosition;
  /** Parameters and buffers by name; optimizer slots as `optimizer.<param>.<slot>`. */
  tensors: Map<string, ort.Tensor>;
  metadata: Record<string, string>;
}

/** A checkpoint's `__metadata__`: string values, some of them JSON. */
export type CheckpointMetadata = Readonly<Record<string, string>>;

/**
 * Writes a checkpoint as safetensors (atomically: an interrupted write leaves the previous file intact), with the
 * training position and run description in its metadata.
 */
export async function saveCheckpoint(file: string, contents: CheckpointContents): Promise<void> {
  const tensors = new Map<string, NamedTensor>();
  for (const [name, t] of contents.tensors) {
    const data = (await t.getData()) as Float32Array;
    tensors.set(name, { dtype: 'float32', shape: [...t.dims], data });
  }
  writeSafetensors(file, tensors, {
    ...contents.metadata,
    'deepvision.epoch': String(contents.position.epoch),
    'deepvision.batch': String(contents.position.batch),
    'deepvision.step': String(contents.position.step),
    'deepvision.rng': JSON.stringify(contents.position.epochRng),
    ...(contents.position.epochLoss ? { 'deepvision.epoch_loss': JSON.stringify(contents.position.epochLoss) } : {}),
  });
}

/**
 * Reads a checkpoint written by `deepvision train`; a malformed file or position, or a tensor holding NaN or
 * infinity, throws CheckpointError.
 */
export function loadCheckpoint(file: string): CheckpointContents {
  const { tensors, metadata } = readSafetensors(file);
  const position = trainingPosition(metadata, file);
  checkTensorsFinite(file, tensors);
  const out = new Map<string, ort.Tensor>();
  for (const [name, t] of tensors) out.set(name, t.dtype === 'float32' ? new ort.Tensor('float32', t.data as Float32Array, [...t.shape]) : new ort.Tensor('int64', t.data as BigInt64Array, [...t.shape]));
  return { position, tensors: out, metadata };
}

function trainingPosition(meta: CheckpointMetadata, file: string): TrainingPosition {
  const epoch = requiredInteger(meta, file, 'deepvision.epoch');
  const batch = requiredInteger(meta, file, 'deepvision.batch');
  const step = requiredInteger(meta, file, 'deepvision.step');

  const rngKey = 'deepvision.rng';
  const rng = jsonValue(meta, file, rngKey);
  if (rng === undefined) throw missing(file, rngKey);
  if (!Array.isArray(rng) || rng.length !== 4 || !rng.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffffffff)) {
    throw invalid(file, rngKey, 'is not a generator state (four unsigned 32-bit integers)');
  }
  // xoshiro never reaches the all-zero state, and from it would draw only zeros.
  if (rng.every((w) => w === 0)) throw invalid(file, rngKey, 'is the all-zero generator state, which the generator never reaches');

  const lossKey = 'deepvision.epoch_loss';
  const loss = jsonValue(meta, file, lossKey);
  let epochLoss: TrainingPosition['epochLoss'];
  if (loss !== undefined) {
    if (!isObject(loss) || !isFiniteNumber(loss.sum) || !isCount(loss.count)) throw invalid(file, lossKey, 'is not {"sum": number, "count": non-negative integer}');
    epochLoss = { sum: loss.sum, count: loss.count };
  }
  return { epoch, batch, step, epochRng: rng as RngState, ...(epochLoss ? { epochLoss } : {}) };
}

/** The model config the run used (`deepvision.config`); {} when the checkpoint records none. */
export function checkpointConfig(meta: CheckpointMetadata, file: string): Config {
  const key = 'deepvision.config';
  const value = jsonValue(meta, file, key);
  if (value === undefined) return {};
  if (!isObject(value)) throw invalid(file, key, 'is not an object of config values');
  for (const [name, v] of Object.entries(value)) {
    if (!(typeof v === 'string' || typeof v === 'boolean' || isFiniteNumber(v))) throw invalid(file, key, `has ${JSON.stringify(name)} = ${clip(JSON.stringify(v))}, not a finite number, string or boolean`);
  }
  return Object.fromEntries(Object.entries(value as Config));
}

/** The per-channel input normalization the model was trained with (`deepvision.normalization`). */
export function checkpointNormalization(meta: CheckpointMetadata, file: string): Normalization | undefined {
  const key = 'deepvision.normalization';
  const value = jsonValue(meta, file, key);
  if (value === undefined) return undefined;
  const shape = 'is not {"mean": [...], "std": [...]} with one to four numbers each';
  if (!isObject(value) || !Array.isArray(value.mean) || !Array.isArray(value.std)) throw invalid(file, key, shape);
  const { mean, std } = value as { mean: unknown[]; std: unknown[] };
  if (mean.length < 1 || mean.length > 4 || std.length !== mean.length) throw invalid(file, key, `${shape} (mean has ${mean.length}, std ${std.length})`);
  if (!mean.every(isFiniteNumber)) throw invalid(file, key, 'has a mean that is not a finite number');
  // Inputs are divided by std.
  if (!std.every((s): s is number => isFiniteNumber(s) && s > 0)) throw invalid(file, key, 'has a std that is not a positive finite number');
  return { mean: [...mean], std: [...std] };
}

/** The class names, in label order (`deepvision.classes`). */
export function checkpointClasses(meta: CheckpointMetadata, file: string): string[] | undefined {
  const key = 'deepvision.classes';
  const value = jsonValue(meta, file, key);
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length === 0 || !value.every((c) => typeof c === 'string')) throw invalid(file, key, 'is not a non-empty list of class names');
  return [...value];
}

/** The square image side the model was trained on (`deepvision.image_size`). */
export function checkpointImageSize(meta: CheckpointMetadata, file: string): number | undefined {
  const key = 'deepvision.image_size';
  const text = meta[key];
  if (text === undefined) return undefined;
  const n = parseInteger(text);
  if (n === undefined || n === 0) throw invalid(file, key, `is ${clip(JSON.stringify(text))}, not a positive integer`);
  return n;
}

/** The metrics of the best epoch so far (`deepvision.best`). */
export function checkpointBest(meta: CheckpointMetadata, file: string): EpochMetrics | undefined {
  const key = 'deepvision.best';
  const value = jsonValue(meta, file, key);
  if (value === undefined) return undefined;
  if (!isObject(value)) throw invalid(file, key, 'is not an object of epoch metrics');
  const { epoch, step } = value;
  if (!isCount(epoch)) throw invalid(file, key, epoch === undefined ? 'has no epoch' : `has epoch ${clip(JSON.stringify(epoch))}, not a non-negative integer`);
  if (step !== undefined && !isCount(step)) throw invalid(file, key, 'has a step that is not a non-negative integer');
  // JSON writes NaN and Infinity as null: a metric that was not a number when saved reads back as NaN.
  const metric = (name: string, required = false): number => {
    const v = value[name];
    if (v === undefined && required) throw invalid(file, key, `has no ${name}`);
    if (v === undefined || v === null) return NaN;
    if (typeof v !== 'number') throw invalid(file, key, `has ${name} ${clip(JSON.stringify(v))}, not a number`);
    return v;
  };
  const optional = (name: 'trainEvalLoss' | 'trainTop1') => (value[name] === undefined ? {} : { [name]: metric(name) });
  return {
    epoch, step: step ?? 0, learningRate: metric('learningRate'), trainLoss: metric('trainLoss'),
    valLoss: metric('valLoss', true), valTop1: metric('valTop1', true), valTop5: metric('valTop5'), seconds: metric('seconds'), imagesPerSecond: metric('imagesPerSecond'),
    ...optional('trainEvalLoss'), ...optional('trainTop1'),
  };
}

/** The validation confusion matrix of the best epoch (`deepvision.best_confusion`): counts[true][predicted]. */
export function checkpointConfusion(meta: CheckpointMetadata, file: string): number[][] | undefined {
  const key = 'deepvision.best_confusion';
  const value = jsonValue(meta, file, key);
  if (value === undefined) return undefined;
  const n = Array.isArray(value) ? value.length : 0;
  if (!Array.isArray(value) || n === 0 || !value.every((row) => Array.isArray(row) && row.length === n && row.every(isCount))) {
    throw invalid(file, key, 'is not a square matrix of non-negative integer counts');
  }
  return (value as number[][]).map((row) => [...row]);
}

/**
 * Checks that a checkpoint holds every tensor a model needs, as float32 of the expected shape, so that a checkpoint
 * of another model, config or optimizer is reported in one line instead of failing inside onnxruntime. Tensors
 * the model does not need are allowed (optimizer slots, when only parameters are used).
 */
export function checkTensorsMatch(file: string, tensors: ReadonlyMap<string, ort.Tensor | NamedTensor>, expected: ReadonlyMap<string, readonly number[]>, needer = 'the model'): void {
  const absent = [...expected.keys()].filter((name) => !tensors.has(name));
  if (absent.length > 0) {
    const more = absent.length > 1 ? ` and ${absent.length - 1} more` : '';
    throw new CheckpointError(`${file}: the checkpoint has no tensor ${clip(JSON.stringify(absent[0]))}${more}, which ${needer} needs (written for another model, config or optimizer?)`);
  }
  for (const [name, shape] of expected) {
    const t = tensors.get(name)!;
    const dims = 'dims' in t ? t.dims : t.shape;
    const dtype = 'dims' in t ? t.type : t.dtype;
    if (dtype !== 'float32') throw new CheckpointError(`${file}: tensor ${clip(JSON.stringify(name))} is ${dtype}, ${needer} needs float32`);
    if (dims.length !== shape.length || dims.some((d, i) => d !== shape[i])) {
      throw new CheckpointError(`${file}: tensor ${clip(JSON.stringify(name))} is [${dims.join(', ')}] in the checkpoint, ${needer} expects [${shape.join(', ')}] (written for another model or config?)`);
    }
  }
}

/**
 * Refuses a checkpoint whose float tensors hold NaN or infinity: one such weight makes every output NaN, and
 * evaluation, export or a resumed run would then report numbers that mean nothing.
 */
export function checkTensorsFinite(file: string, tensors: ReadonlyMap<string, ort.Tensor | NamedTensor>): void {
  for (const [name, t] of tensors) {
    const data = t.data;
    if (!(data instanceof Float32Array)) continue;
    let bad = 0;
    let first = 0;
    for (let i = 0; i < data.length; i++) {
      if (Number.isFinite(data[i]!)) continue;
      if (bad === 0) first = i;
      bad++;
    }
    if (bad > 0) {
      throw new CheckpointError(`${file}: tensor ${clip(JSON.stringify(name))} holds ${data[first]} at index ${first}${bad > 1 ? ` (${bad} values are not finite)` : ''}: the checkpoint is unusable (did training diverge?)`);
    }
  }
}

function jsonValue(meta: CheckpointMetadata, file: string, key: string): unknown {
  const text = Object.hasOwn(meta, key) ? meta[key] : undefined;
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw invalid(file, key, `is not valid JSON (${clip(JSON.stringify(text))})`);
  }
}

function requiredInteger(meta: CheckpointMetadata, file: string, key: string): number {
  const text = Object.hasOwn(meta, key) ? meta[key] : undefined;
  if (text === undefined) throw missing(file, key);
  const n = parseInteger(text);
  if (n === undefined) throw invalid(file, key, `is ${clip(JSON.stringify(text))}, not a non-negative integer`);
  return n;
}

/** Decimal digits only: Number() would also take '', ' 1', '0x10' and '1e3'. */
function parseInteger(text: string): number | undefined {
  if (!/^(0|[1-9][0-9]*)$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

function missing(file: string, key: string): CheckpointError {
  return new CheckpointError(`${file}: checkpoint metadata '${key}' is missing (not a checkpoint written by deepvision train?)`);
}

function invalid(file: string, key: string, why: string): CheckpointError {
  return new CheckpointError(`${file}: checkpoint metadata '${key}' ${why}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function clip(s: string, max = 60): string {
  return s.length <= max ? s : `${s.slice(0, max - 3)}...`;
}
