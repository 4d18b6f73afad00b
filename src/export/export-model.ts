import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Normalization } from '../data/dataset';
import { NamedTensor, readSafetensors } from '../io/safetensors';
import type { Model } from '../ir/model';
import { readModelFile } from '../onnx/read';
import { encodeModel } from '../onnx/write';
import { eliminateDeadNodes } from '../passes/eliminate-dead-nodes';
import { foldBatchNorm } from '../passes/fold-batchnorm';
import { removeIdentities } from '../passes/remove-identities';
import { writeFileAtomic } from '../util/atomic-write';
import { Rng } from '../util/rng';
import { storeWeightsAsFloat16 } from './float16-weights';
import type { ModelCard } from './model-card';
import { updateModelIndex } from './model-index';
import { UserError } from '../util/user-error';

export class ExportError extends UserError {}

export interface ExportOptions {
  fp16?: boolean;
  /** Inputs to compare the exported model with the trained eval model on (default: 8 random normalized images). */
  verifyInputs?: Float32Array;
  /** Largest |difference| accepted between exported and eval outputs (float32 export). */
  tolerance?: number;
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

/**
 * Turns a training output folder (inference_model.onnx, eval_model.onnx, checkpoint.safetensors written by
 * `deepvision train`) into a browser-ready model: eval mode, identities and dropout removed, batch normalization
 * folded into the layer before it, dead nodes and unused initializers pruned, dynamic batch; plus model.json.
 * The result is checked against the eval model with the trained parameters before anything is written.
 */
export async function exportModel(modelDir: string, outDir: string, o: ExportOptions = {}): Promise<ExportReport> {
  const inferenceFile = path.join(modelDir, 'inference_model.onnx');
  const evalFile = path.join(modelDir, 'eval_model.onnx');
  const checkpointFile = path.join(modelDir, 'checkpoint.safetensors');
  for (const f of [inferenceFile, evalFile, checkpointFile]) {
    if (!fs.existsSync(f)) throw new ExportError(`${modelDir} is not a deepvision training folder: ${path.basename(f)} is missing (run \`deepvision train\` with --out ${modelDir})`);
  }
  let checkpoint;
  try {
    checkpoint = readSafetensors(checkpointFile);
  } catch (err) {
    throw new ExportError((err as Error).message);
  }
  const meta = checkpoint.metadata;
  const normalization = parseJson<Normalization>(meta['deepvision.normalization'], checkpointFile, 'deepvision.normalization');
  const labels = parseJson<string[]>(meta['deepvision.classes'], checkpointFile, 'deepvision.classes');

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
  const inputShape = input.shape;
  if (inputShape === undefined || inputShape.length !== 4 || !inputShape.slice(1).every((d) => typeof d === 'number')) {
    throw new ExportError(`${inferenceFile}: input '${input.name}' must be [batch, channels, height, width] with static image dims`);
  }
  input.shape = ['batch', ...inputShape.slice(1)];
  if (output.shape !== undefined && output.shape.length > 0) output.shape = ['batch', ...output.shape.slice(1)];
  const [channels, height, width] = inputShape.slice(1) as number[];
  if (o.fp16) storeWeightsAsFloat16(graph);
  model.metadata.set('deepvision.exported', 'true');
  model.metadata.set('deepvision.precision', o.fp16 ? 'float16-weights' : 'float32');

  const bytes = encodeModel(model);
  const verify = await compareWithEval(bytes, evalFile, checkpoint.tensors, input.name, output.name, [channels!, height!, width!], o.verifyInputs);
  const tolerance = o.tolerance ?? 1e-4;
  if (!o.fp16 && !(verify.maxDifference <= tolerance)) {
    throw new ExportError(`the exported model differs from the trained eval model by ${verify.maxDifference.toExponential(2)} (more than ${tolerance}): not written`);
  }

  const best = meta['deepvision.best'] ? (JSON.parse(meta['deepvision.best']) as { epoch: number; valLoss: number; valTop1: number; valTop5: number }) : undefined;
  const card: ModelCard = {
    format: 'deepvision-model-card',
    version: 1,
    name: path.basename(path.resolve(outDir)),
    file: 'model.onnx',
    input: {
      name: input.name,
      shape: [channels!, height!, width!],
      preprocessing: { resizeShorterSide: Math.min(height!, width!), mean: normalization.mean, std: normalization.std },
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
  const modelFile = path.join(outDir, 'model.onnx');
  const cardFile = path.join(outDir, 'model.json');
  writeFileAtomic(modelFile, bytes);
  writeFileAtomic(cardFile, `${JSON.stringify(card, null, 2)}\n`);
  updateModelIndex(path.dirname(path.resolve(outDir)));
  return { modelFile, cardFile, card, removedNodes: before - graph.nodes.length, foldedBatchNorms: folded, ...verify };
}

function parseJson<T>(text: string | undefined, file: string, key: string): T {
  if (text === undefined) throw new ExportError(`${file} does not record '${key}' (was it written by \`deepvision train\`?)`);
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ExportError(`${file}: metadata '${key}' is not valid JSON`);
  }
}

function countParameters(model: Model): number {
  let n = 0;
  for (const t of model.graph.initializers.values()) if (t.dtype === 'float32' || t.dtype === 'float16') n += t.size;
  return n;
}

async function compareWithEval(
  exported: Uint8Array, evalFile: string, tensors: Map<string, NamedTensor>,
  inputName: string, outputName: string, chw: number[], inputs: Float32Array | undefined,
): Promise<{ maxDifference: number; top1Agreement: { agree: number; total: number } }> {
  const image = chw.reduce((a, b) => a * b, 1);
  let data = inputs;
  if (data === undefined) {
    const rng = new Rng(0);
    data = Float32Array.from({ length: 8 * image }, () => rng.normal());
  }
  const batch = data.length / image;
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`verification inputs must be whole [${chw}] images`);
  const options: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'extended', intraOpNumThreads: os.availableParallelism() };
  const exportedSession = await ort.InferenceSession.create(exported, options);
  const evalSession = await ort.InferenceSession.create(evalFile, options);
  try {
    const x = new ort.Tensor('float32', data, [batch, ...chw]);
    const feeds: Record<string, ort.Tensor> = { [inputName]: x, labels: new ort.Tensor('int64', new BigInt64Array(batch), [batch]) };
    for (const name of evalSession.inputNames) {
      if (name in feeds) continue;
      const t = tensors.get(name);
      if (t === undefined) throw new ExportError(`checkpoint.safetensors has no tensor '${name}' that eval_model.onnx needs`);
      if (!(t.data instanceof Float32Array)) throw new ExportError(`checkpoint tensor '${name}' is not float32`);
      feeds[name] = new ort.Tensor('float32', Float32Array.from(t.data), [...t.shape]);
    }
    const feedNames = evalSession.inputNames.filter((n) => n in feeds);
    const evalOut = await evalSession.run(Object.fromEntries(feedNames.map((n) => [n, feeds[n]!])));
    const expOut = await exportedSession.run({ [inputName]: x });
    const a = evalOut[outputName]?.data as Float32Array | undefined;
    const b = expOut[outputName]!.data as Float32Array;
    if (a === undefined) throw new ExportError(`eval_model.onnx has no output '${outputName}' to compare with`);
    let maxDifference = 0;
    for (let i = 0; i < a.length; i++) maxDifference = Math.max(maxDifference, Math.abs(a[i]! - b[i]!));
    if (a.some(Number.isNaN) || b.some(Number.isNaN)) maxDifference = NaN;
    const classes = a.length / batch;
    let agree = 0;
    for (let n = 0; n < batch; n++) if (argmax(a, n * classes, classes) === argmax(b, n * classes, classes)) agree++;
    return { maxDifference, top1Agreement: { agree, total: batch } };
  } finally {
    await exportedSession.release();
    await evalSession.release();
  }
}

function argmax(a: Float32Array, offset: number, length: number): number {
  let best = 0;
  for (let i = 1; i < length; i++) if (a[offset + i]! > a[offset + best]!) best = i;
  return best;
}
