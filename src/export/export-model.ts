import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Normalization } from '../data/dataset';
import { NamedTensor, readSafetensors } from '../io/safetensors';
import type { Model } from '../ir/model';
import { recordedTask, TASK_NOUNS } from '../model/task-kind';
import { readModelFile } from '../onnx/read';
import { encodeModel } from '../onnx/write';
import { eliminateDeadNodes } from '../passes/eliminate-dead-nodes';
import { foldBatchNorm } from '../passes/fold-batchnorm';
import { removeIdentities } from '../passes/remove-identities';
import { checkTensorsFinite } from '../checkpoint/checkpoint';
import { writeFileAtomic } from '../util/atomic-write';
import { Rng } from '../util/rng';
import { UserError } from '../util/user-error';
import { checkpointLabels } from './checkpoint-labels';
import { ExportError } from './export-error';
import { storeWeightsAsFloat16 } from './float16-weights';
import type { ModelCard } from '../portable/model-card';
import { FileWriter, publish } from './publish';

export type { FileWriter } from './publish';

export interface ExportOptions {
  fp16?: boolean;
  /** Inputs to compare the exported model with the trained eval model on (default: 8 random normalized images). */
  verifyInputs?: Float32Array;
  /** Largest |difference| accepted between exported and eval outputs (float32 export). */
  tolerance?: number;
  /** Writes model.onnx, model.json and the models index (default: writeFileAtomic). */
  writeFile?: FileWriter;
}

export interface ExportReport {
  modelFile: string;
  cardFile: string;
  card: ModelCard;
  removedNodes: number;
  foldedBatchNorms: number;
  /** Largest |exported - eval| over the verification inputs, and how many top-1 predictions agreed. */
  maxDifference: number;
  top1Agreement: { agree: number; total: number };
}

/** Image inputs export accepts: each side at most this many pixels... */
const MAX_IMAGE_SIDE = 16384;
/** ...and at most this many values per image (3 x 4096 x 4096 is 50 M), so verification inputs stay allocatable. */
const MAX_IMAGE_VALUES = 2 ** 26;
/** Verification images: 8, or fewer for large inputs, to stay within this many values (256 MB of float32). */
const MAX_VERIFY_VALUES = 2 ** 26;

/**
 * Turns a training output folder (inference_model.onnx, eval_model.onnx, checkpoint.safetensors written by
 * `deepvision train`) into a browser-ready model: eval mode, identities and dropout removed, batch normalization
 * folded into the layer before it, dead nodes and unused initializers pruned, dynamic batch; plus model.json.
 * The result is checked against the eval model with the trained parameters before anything is written, and it is
 * written all or nothing: a failure (a full disk included) leaves the output folder as it was, or absent.
 */
export async function exportModel(modelDir: string, outDir: string, o: ExportOptions = {}): Promise<ExportReport> {
  const inferenceFile = path.join(modelDir, 'inference_model.onnx');
  const evalFile = path.join(modelDir, 'eval_model.onnx');
  const checkpointFile = path.join(modelDir, 'checkpoint.safetensors');
  for (const f of [inferenceFile, evalFile, checkpointFile]) {
    if (!fs.existsSync(f)) throw new ExportError(`${modelDir} is not a deepvision training folder: ${path.basename(f)} is missing (run \`deepvision train\` with --out ${modelDir})`);
  }
  if (path.basename(path.resolve(outDir)) === '') throw new ExportError(`--out ${outDir}: give a folder for the model, not the file system's root`);
  const checkpoint = readCheckpoint(checkpointFile);
  const meta = checkpoint.metadata;
  // Another task's run exports its own way (export/tasks/): `deepvision export` picks it from the run's task.
  const task = recordedTask(meta['deepvision.task']);
  if (task !== 'classification') {
    throw new ExportError(`${modelDir} is ${TASK_NOUNS[task]}: it exports as an encoder and a decoder step (exportCaptioner in export-captioner.ts, which \`deepvision export\` runs for captioners)`);
  }

  const model = readModelFile(inferenceFile);
  const graph = model.graph;
  const before = graph.nodes.length;
  removeIdentities(graph);
  const folded = foldBatchNorm(graph);
  eliminateDeadNodes(graph);
  if (graph.inputs.length !== 1 || graph.outputs.length !== 1) {
    throw new ExportError(`${inferenceFile}: export handles models with one image input and one output (this one has ${graph.inputs.length} inputs, ${graph.outputs.length} outputs)`);
  }
  const input = graph.inputs[0]!;
  const output = graph.outputs[0]!;
  const chw = imageDims(input.shape, inferenceFile, input.name);
  const classes = output.shape?.[output.shape.length - 1];

  const normalization = readNormalization(meta, checkpointFile, chw[0]);
  const labels = checkpointLabels(meta, checkpointFile, typeof classes === 'number' ? classes : undefined, ExportError);
  const best = readBest(meta, checkpointFile);

  input.shape = ['batch', ...chw];
  if (output.shape !== undefined && output.shape.length > 0) output.shape = ['batch', ...output.shape.slice(1)];
  if (o.fp16) storeWeightsAsFloat16(graph);
  model.metadata.set('deepvision.exported', 'true');
  model.metadata.set('deepvision.precision', o.fp16 ? 'float16-weights' : 'float32');

  const bytes = encodeModel(model);
  const feeds = evalFeeds(evalFile, checkpointFile, checkpoint.tensors, input.name, output.name);
  const verify = await compareWithEval(bytes, `the model exported from ${inferenceFile}`, evalFile, feeds, input.name, output.name, chw, labels.length, o.verifyInputs);
  if (Number.isNaN(verify.maxDifference)) throw new ExportError(`the exported model or the trained eval model computes NaN on the verification inputs (are there NaN weights in ${checkpointFile}?): not written`);
  const tolerance = o.tolerance ?? 1e-4;
  if (!o.fp16 && !(verify.maxDifference <= tolerance)) {
    throw new ExportError(`the exported model differs from the trained eval model by ${verify.maxDifference.toExponential(2)} (more than ${tolerance}): not written`);
  }

  const card: ModelCard = {
    format: 'deepvision-model-card',
    version: 1,
    name: path.basename(path.resolve(outDir)),
    file: 'model.onnx',
    input: {
      name: input.name,
      shape: chw,
      preprocessing: { resizeShorterSide: Math.min(chw[1], chw[2]), mean: normalization.mean, std: normalization.std },
    },
    output: { name: output.name, kind: 'logits' },
    labels,
    training: {
      dataset: path.basename(meta['deepvision.data'] ?? 'unknown'),
      ...(best ? { validation: { top1: best.valTop1, top5: best.valTop5, loss: best.valLoss, epoch: best.epoch } } : {}),
    },
    precision: o.fp16 ? 'float16-weights' : 'float32',
    parameters: countParameters(model),
    bytes: bytes.byteLength,
    producer: `deepvision ${model.producerVersion}`,
    exportedAt: new Date().toISOString(),
  };
  publish(outDir, { 'model.onnx': bytes, 'model.json': `${JSON.stringify(card, null, 2)}\n` }, o.writeFile ?? writeFileAtomic);
  return {
    modelFile: path.join(outDir, 'model.onnx'), cardFile: path.join(outDir, 'model.json'), card,
    removedNodes: before - graph.nodes.length, foldedBatchNorms: folded, ...verify,
  };
}

/** The run's checkpoint, refused when a tensor holds NaN or infinity (see checkTensorsFinite). */
function readCheckpoint(file: string): ReturnType<typeof readSafetensors> {
  try {
    const checkpoint = readSafetensors(file);
    checkTensorsFinite(file, checkpoint.tensors);
    return checkpoint;
  } catch (err) {
    // The checkpoint reader's own errors name the file already; anything else gets it here, on one line.
    if (err instanceof UserError) throw err;
    throw new ExportError(`${file}: ${firstLine(err)}`);
  }
}

/** [channels, height, width] of an image input whose batch dimension may be anything. */
export function imageDims(shape: readonly (number | string)[] | undefined, file: string, name: string): [number, number, number] {
  const dims = shape?.slice(1);
  if (shape === undefined || shape.length !== 4 || !dims!.every((d): d is number => typeof d === 'number')) {
    throw new ExportError(`${file}: input '${name}' must be [batch, channels, height, width] with static image dims`);
  }
  const [c, h, w] = dims as [number, number, number];
  if (![c, h, w].every((d) => Number.isSafeInteger(d) && d >= 1 && d <= MAX_IMAGE_SIDE) || c * h * w > MAX_IMAGE_VALUES) {
    throw new ExportError(`${file}: input '${name}' is [${shape}]; export handles images of 1 to ${MAX_IMAGE_SIDE} pixels a side and at most ${MAX_IMAGE_VALUES} values`);
  }
  return [c, h, w];
}

/** A metadata value parsed as JSON; a missing or broken one is an error naming the file and the key. */
function metadataJson(meta: Record<string, string>, key: string, file: string): unknown {
  const text = meta[key];
  if (text === undefined) throw new ExportError(`${file} does not record '${key}' (was it written by \`deepvision train\`?)`);
  if (typeof text !== 'string') throw new ExportError(`${file}: metadata '${key}' is not a string`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ExportError(`${file}: metadata '${key}' is not valid JSON`);
  }
}

const finiteNumbers = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x));

function readNormalization(meta: Record<string, string>, file: string, channels: number): Normalization {
  const key = 'deepvision.normalization';
  const v = metadataJson(meta, key, file) as { mean?: unknown; std?: unknown } | null;
  const bad = (problem: string) => new ExportError(`${file}: metadata '${key}' ${problem}`);
  if (typeof v !== 'object' || v === null) throw bad('is not an object with mean and std');
  if (!finiteNumbers(v.mean) || !finiteNumbers(v.std)) throw bad('needs "mean" and "std" as lists of finite numbers');
  if (v.mean.length !== channels || v.std.length !== channels) throw bad(`has ${v.mean.length} means and ${v.std.length} standard deviations for a model of ${channels} input channels`);
  if (!v.std.every((s) => s > 0)) throw bad('has a standard deviation that is not positive');
  return { mean: v.mean, std: v.std };
}

interface BestEpoch { epoch: number; valLoss: number; valTop1: number; valTop5: number }

function readBest(meta: Record<string, string>, file: string): BestEpoch | undefined {
  const key = 'deepvision.best';
  if (meta[key] === undefined) return undefined;
  const v = metadataJson(meta, key, file) as Record<string, unknown> | null;
  const fields = ['epoch', 'valLoss', 'valTop1', 'valTop5'] as const;
  if (typeof v !== 'object' || v === null || !fields.every((f) => typeof v[f] === 'number' && Number.isFinite(v[f]))) {
    throw new ExportError(`${file}: metadata '${key}' must record epoch, valLoss, valTop1 and valTop5 as numbers`);
  }
  return { epoch: v.epoch as number, valLoss: v.valLoss as number, valTop1: v.valTop1 as number, valTop5: v.valTop5 as number };
}

function countParameters(model: Model): number {
  let n = 0;
  for (const t of model.graph.initializers.values()) if (t.dtype === 'float32' || t.dtype === 'float16') n += t.size;
  return n;
}

/**
 * The checkpoint tensors the eval model takes, checked against what it declares: eval_model.onnx is read (and so
 * validated, external data included) by deepvision's reader before onnxruntime sees it, and every parameter input
 * needs a float32 tensor of its declared shape. onnxruntime is never handed inconsistent tensors.
 */
function evalFeeds(evalFile: string, checkpointFile: string, tensors: Map<string, NamedTensor>, inputName: string, outputName: string): Map<string, NamedTensor> {
  const graph = readModelFile(evalFile).graph;
  if (!graph.inputs.some((v) => v.name === inputName)) throw new ExportError(`${evalFile} has no input '${inputName}' (the inference model's input): it belongs to another model`);
  if (!graph.outputs.some((v) => v.name === outputName)) throw new ExportError(`${evalFile} has no output '${outputName}' to compare with`);
  const feeds = new Map<string, NamedTensor>();
  for (const v of graph.inputs) {
    if (v.name === inputName || v.name === 'labels' || graph.initializers.has(v.name)) continue;
    const t = tensors.get(v.name);
    if (t === undefined) throw new ExportError(`${checkpointFile} has no tensor '${v.name}' that ${evalFile} needs`);
    if (!(t.data instanceof Float32Array) || (v.dtype !== undefined && v.dtype !== 'float32')) {
      throw new ExportError(`${checkpointFile}: tensor '${v.name}' is ${t.dtype}, ${evalFile} takes ${v.dtype ?? 'float32'}`);
    }
    const declared = v.shape;
    const fits = declared === undefined
      || (declared.length === t.shape.length && declared.every((d, i) => typeof d !== 'number' || d === t.shape[i]));
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (!fits || size !== t.data.length) {
      throw new ExportError(`${checkpointFile}: tensor '${v.name}' is [${t.shape}] (${t.data.length} values), ${evalFile} expects [${declared ?? '?'}]`);
    }
    feeds.set(v.name, t);
  }
  return feeds;
}

async function compareWithEval(
  exported: Uint8Array, exportedName: string, evalFile: string, params: Map<string, NamedTensor>,
  inputName: string, outputName: string, chw: [number, number, number], classes: number, inputs: Float32Array | undefined,
): Promise<{ maxDifference: number; top1Agreement: { agree: number; total: number } }> {
  const image = chw[0] * chw[1] * chw[2];
  let data = inputs;
  if (data === undefined) {
    const rng = new Rng(0);
    const count = Math.max(1, Math.min(8, Math.floor(MAX_VERIFY_VALUES / image)));
    data = Float32Array.from({ length: count * image }, () => rng.normal());
  }
  const batch = data.length / image;
  if (!Number.isInteger(batch) || batch < 1) throw new ExportError(`verification inputs must be whole [${chw}] images`);
  const options: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'extended', intraOpNumThreads: os.availableParallelism() };
  const exportedSession = await createSession(exported, exportedName, options);
  let evalSession: ort.InferenceSession | undefined;
  try {
    evalSession = await createSession(evalFile, evalFile, options);
    const x = new ort.Tensor('float32', data, [batch, ...chw]);
    const feeds: Record<string, ort.Tensor> = { [inputName]: x, labels: new ort.Tensor('int64', new BigInt64Array(batch), [batch]) };
    for (const [name, t] of params) feeds[name] = new ort.Tensor('float32', Float32Array.from(t.data as Float32Array), [...t.shape]);
    const evalOut = await runSession(evalSession, evalFile, Object.fromEntries(evalSession.inputNames.filter((n) => n in feeds).map((n) => [n, feeds[n]!])));
    const expOut = await runSession(exportedSession, exportedName, { [inputName]: x });
    const a = logits(evalOut[outputName], evalFile, outputName, batch, classes);
    const b = logits(expOut[outputName], exportedName, outputName, batch, classes);
    let maxDifference = 0;
    for (let i = 0; i < a.length; i++) maxDifference = Math.max(maxDifference, Math.abs(a[i]! - b[i]!));
    if (a.some(Number.isNaN) || b.some(Number.isNaN)) maxDifference = NaN;
    let agree = 0;
    for (let n = 0; n < batch; n++) if (argmax(a, n * classes, classes) === argmax(b, n * classes, classes)) agree++;
    return { maxDifference, top1Agreement: { agree, total: batch } };
  } finally {
    await exportedSession.release();
    await evalSession?.release();
  }
}

/** onnxruntime's first line says what it refused; the rest is its internal detail. */
export function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!.trim();
}

async function createSession(model: string | Uint8Array, name: string, options: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
  try {
    // Two calls, because create's overloads take a path or bytes, not the union.
    return typeof model === 'string' ? await ort.InferenceSession.create(model, options) : await ort.InferenceSession.create(model, options);
  } catch (err) {
    throw new ExportError(`onnxruntime rejected ${name}: ${firstLine(err)}`);
  }
}

async function runSession(session: ort.InferenceSession, name: string, feeds: Record<string, ort.Tensor>): Promise<ort.InferenceSession.ReturnType> {
  try {
    return await session.run(feeds);
  } catch (err) {
    throw new ExportError(`onnxruntime could not run ${name}: ${firstLine(err)}`);
  }
}

/** An output as [batch, classes] float32 logits, or an error saying how it differs. */
function logits(value: ort.OnnxValue | undefined, name: string, outputName: string, batch: number, classes: number): Float32Array {
  if (value === undefined) throw new ExportError(`${name} has no output '${outputName}'`);
  if (!(value.data instanceof Float32Array) || value.data.length !== batch * classes) {
    throw new ExportError(`${name}: output '${outputName}' is ${value.type} [${value.dims}], expected float32 [${batch}, ${classes}]`);
  }
  return value.data;
}

function argmax(a: Float32Array, offset: number, length: number): number {
  let best = 0;
  for (let i = 1; i < length; i++) if (a[offset + i]! > a[offset + best]!) best = i;
  return best;
}
