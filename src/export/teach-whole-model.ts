/**
 * The whole model of a Teach bundle made from a `deepvision train` run: the run's training, optimizer and
 * evaluation graphs as they are (standard ONNX, so onnxruntime-web runs them), its trained state as init.f32, and
 * an inference graph that takes the state as inputs, which the page binds to the fine-tuned values for download
 * (teach-splice.ts). Checked before anything is written: the bound inference graph against the run's eval graph.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { readSafetensors } from '../io/safetensors';
import type { Model } from '../ir/model';
import { decodeModel } from '../onnx/read';
import { encodeModel } from '../onnx/write';
import { recordedTask, TASK_NOUNS } from '../model/task-kind';
import { OptimizerConfig, slotNames } from '../optim/config';
import { eliminateDeadNodes } from '../passes/eliminate-dead-nodes';
import { checkTensorsFinite } from '../checkpoint/checkpoint';
import { Rng } from '../util/rng';
import { FileReadError, openRegularFile, readRegularFile } from '../util/regular-file';
import { UserError } from '../util/user-error';
import { checkpointLabels } from './checkpoint-labels';
import type { TeachWholeModel } from '../portable/teach-card';
import { TeachExportError } from './teach-error';
import { bindInputs, SpliceTensor } from '../portable/teach-splice';
import { largestDifference } from '../util/largest-difference';
import { outputOf } from '../portable/session-output';

/** The files of a run folder the whole model is made from (what `deepvision train` writes after its last epoch). */
const RUN_FILES = ['training_model.onnx', 'optimizer_model.onnx', 'eval_model.onnx', 'inference_model.onnx', 'checkpoint.safetensors'] as const;
/** The folder of the whole model inside the bundle. */
const FOLDER = 'whole-model';
/** Inputs of the training graph that are data, fed per batch (as training-step.ts's list, for an image classifier). */
const DATA_INPUT = /^(input|labels)$/;
const NOISE_INPUT = /^dropout_noise\./;

/**
 * Fine-tuning defaults, measured on the shapes CNN from a briefly trained start (3 classes x 8 images to train on):
 * Adam at 5e-4 in batches of 8 raises held-out accuracy within 10 epochs without the loss jumping; SGD's rate is
 * the usual ten times Adam's.
 */
const DEFAULTS = { adamLearningRate: 0.0005, sgdLearningRate: 0.005, epochs: 10, batchSize: 8 };

export interface WholeModelOptions {
  learningRate?: number;
  epochs?: number;
  batchSize?: number;
}

export interface WholeModel {
  card: TeachWholeModel;
  /** Files by path relative to the bundle. */
  files: Record<string, Uint8Array>;
  /** The run's model with its trained weights: the backbone the bundle's heads are cut from. */
  inferenceFile: string;
  normalization: { mean: number[]; std: number[] };
  /** Largest |bound inference graph - eval graph| of the logits on random images. */
  maxDifference: number;
}

/** Whether `dir` is a folder (a run folder, as opposed to an ONNX file). */
export function isTrainingRun(dir: string): boolean {
  return fs.existsSync(dir) && fs.statSync(dir).isDirectory();
}

/** Reads a run folder into the bundle's whole model, checked; throws TeachExportError naming what is wrong. */
export async function readWholeModel(runDir: string, o: WholeModelOptions = {}): Promise<WholeModel> {
  for (const f of RUN_FILES) {
    if (!fs.existsSync(path.join(runDir, f))) throw new TeachExportError(`${runDir} is not a finished deepvision training run: ${f} is missing (\`deepvision train ... --out ${runDir}\` writes it after the last epoch)`);
    // The bundle is published by `serve`: a link out of the run folder (to /etc/passwd, another run) must not be.
    checkRunFile(runDir, f);
  }
  const checkpointFile = path.join(runDir, 'checkpoint.safetensors');
  const checkpoint = readCheckpoint(checkpointFile);
  const meta = checkpoint.metadata;
  const task = recordedTask(meta['deepvision.task']);
  if (task !== 'classification') throw new TeachExportError(`${runDir} is ${TASK_NOUNS[task]}: the Teach page fine-tunes classifiers`);
  // As read from the file: checked below before it is used as { mean: number[]; std: number[] }.
  const stored = metadataJson(meta, 'deepvision.normalization', checkpointFile) as { mean?: number[]; std?: number[] } | null;
  const optimizerConfig = metadataJson(meta, 'deepvision.optimizer', checkpointFile) as OptimizerConfig;
  const [mean, std] = [stored?.mean, stored?.std];
  if (!Array.isArray(mean) || !Array.isArray(std)) {
    throw new TeachExportError(`${checkpointFile}: its normalization is missing or malformed (was it written by \`deepvision train\`?)`);
  }
  const normalization = { mean, std };

  // Each file shipped is the file validated: read once, decoded, and the same bytes copied into the bundle.
  const trainingBytes = runFile(runDir, 'training_model.onnx');
  const training = decodeGraph(trainingBytes, `${runDir}/training_model.onnx`);
  const inputs = training.graph.inputs;
  const image = inputs.find((v) => v.name === 'input')?.shape;
  if (image === undefined || image.length !== 4 || !image.slice(1).every((d) => typeof d === 'number')) {
    throw new TeachExportError(`${runDir}/training_model.onnx has no image input 'input' [batch, channels, height, width]: the page fine-tunes image classifiers`);
  }
  const stateNames = inputs.map((v) => v.name).filter((n) => !DATA_INPUT.test(n) && !NOISE_INPUT.test(n));
  const state: SpliceTensor[] = stateNames.map((name) => {
    const t = checkpoint.tensors.get(name);
    const declared = inputs.find((v) => v.name === name)!.shape;
    if (t === undefined || t.dtype !== 'float32') throw new TeachExportError(`${checkpointFile} has no float32 value for '${name}', which ${runDir}/training_model.onnx reads`);
    if (declared !== undefined && (declared.length !== t.shape.length || declared.some((d, i) => typeof d === 'number' && d !== t.shape[i]))) {
      throw new TeachExportError(`${checkpointFile}: '${name}' is [${t.shape}], but the training graph reads [${declared}]`);
    }
    return { name, dims: [...t.shape], data: t.data as Float32Array };
  });
  const noise = inputs.filter((v) => NOISE_INPUT.test(v.name)).map((v) => {
    const shape = v.shape?.slice(1);
    if (shape === undefined || !shape.every((d): d is number => typeof d === 'number')) throw new TeachExportError(`${runDir}/training_model.onnx: dropout noise '${v.name}' has no static shape after the batch`);
    return { name: v.name, shape };
  });
  const trainable = training.graph.outputs.filter((v) => v.name.endsWith('_grad')).length;

  const evalBytes = runFile(runDir, 'eval_model.onnx');
  const optimizerBytes = runFile(runDir, 'optimizer_model.onnx');
  checkOptimizerGraph(optimizerBytes, `${runDir}/optimizer_model.onnx`, state, training.graph.outputs.filter((v) => v.name.endsWith('_grad')).map((v) => v.name.slice(0, -'_grad'.length)), optimizerConfig);
  const logitsModel = logitsGraph(decodeGraph(evalBytes, `${runDir}/eval_model.onnx`));
  const logits = logitsModel.graph.outputs[0]!.shape;
  const outputs = logits?.[logits.length - 1];
  // The check `deepvision export` makes: one class name per output of the model.
  const labels = checkpointLabels(meta, checkpointFile, typeof outputs === 'number' ? outputs : undefined, TeachExportError);
  if (labels.length < 2) throw new TeachExportError(`${checkpointFile}: the model has 1 class; the Teach page fine-tunes classifiers of 2 classes or more`);
  const inference = encodeModel(logitsModel);
  const [c, h, w] = image.slice(1) as number[];
  const bound = decodedInputs(inference);
  const maxDifference = await verifyBound(inference, evalBytes, state.filter((t) => bound.has(t.name)), state, [c!, h!, w!]);
  if (!(maxDifference <= 1e-4)) throw new TeachExportError(`the fine-tunable model of ${runDir} differs from its eval model by ${maxDifference} (more than 1e-4): not written`);

  const adamLike = optimizerConfig.kind === 'adam' || optimizerConfig.kind === 'adamw';
  const card: TeachWholeModel = {
    folder: FOLDER, training: 'training_model.onnx', optimizer: 'optimizer_model.onnx', optimizerConfig, eval: 'eval_model.onnx', inference: 'inference_model.onnx',
    labels, parameters: state.map((t) => ({ name: t.name, shape: [...t.dims] })), init: 'init.f32', noise, trainable,
    inferenceParameters: state.filter((t) => bound.has(t.name)).map((t) => t.name),
    defaults: {
      learningRate: o.learningRate ?? (adamLike ? DEFAULTS.adamLearningRate : DEFAULTS.sgdLearningRate),
      epochs: o.epochs ?? DEFAULTS.epochs, batchSize: o.batchSize ?? DEFAULTS.batchSize,
    },
    ...bestValidation(meta),
  };
  const files: Record<string, Uint8Array> = {
    [`${FOLDER}/training_model.onnx`]: trainingBytes,
    [`${FOLDER}/optimizer_model.onnx`]: optimizerBytes,
    [`${FOLDER}/eval_model.onnx`]: new Uint8Array(evalBytes),
    [`${FOLDER}/inference_model.onnx`]: inference,
    [`${FOLDER}/init.f32`]: concatFloats(state.map((t) => t.data)),
  };
  return { card, files, inferenceFile: path.join(runDir, 'inference_model.onnx'), normalization, maxDifference };
}

/** An evaluation graph reduced to its logits: its image (or features) input and the state it reads, `labels` dropped. */
export function logitsGraph(evalModel: Model): Model {
  const copy = decodeModel(encodeModel(evalModel));
  const g = copy.graph;
  const logits = g.outputs.find((v) => v.name === 'logits');
  if (logits === undefined) throw new TeachExportError(`the evaluation graph has no output 'logits'`);
  g.outputs.splice(0, g.outputs.length, logits);
  eliminateDeadNodes(g);
  const used = new Set(g.nodes.flatMap((n) => n.inputs.filter((v) => v !== undefined).map((v) => v!.name)));
  for (const v of [...g.inputs]) {
    if (used.has(v.name)) continue;
    g.inputs.splice(g.inputs.indexOf(v), 1);
    g.values.delete(v.name);
  }
  return copy;
}

export function concatFloats(parts: readonly Float32Array[]): Uint8Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return new Uint8Array(out.buffer);
}

/** The run's checkpoint, refused when a tensor holds NaN or infinity (see checkTensorsFinite). */
function readCheckpoint(file: string): ReturnType<typeof readSafetensors> {
  try {
    const checkpoint = readSafetensors(file);
    checkTensorsFinite(file, checkpoint.tensors);
    return checkpoint;
  } catch (err) {
    if (err instanceof UserError) throw err;
    // decodeModel's errors already start with the file's name (its `source`).
    const message = (err as Error).message.split('\n')[0]!;
    throw new TeachExportError(message.startsWith(`${file}: `) ? message : `${file}: ${message}`);
  }
}

/** A run file's bytes: a regular file inside the run folder (links that stay inside are followed). */
function runFile(runDir: string, name: string): Uint8Array {
  return new Uint8Array(asTeachError(() => readRegularFile(path.join(runDir, name), { what: `run's ${name}`, within: runDir })));
}

/** Throws unless a run file is a regular file inside the run folder, without reading it. */
function checkRunFile(runDir: string, name: string): void {
  fs.closeSync(asTeachError(() => openRegularFile(path.join(runDir, name), { what: `run's ${name}`, within: runDir })).fd);
}

function asTeachError<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof FileReadError) throw new TeachExportError(err.message);
    throw err;
  }
}

function decodeGraph(bytes: Uint8Array, file: string): Model {
  try {
    return decodeModel(bytes, { source: file });
  } catch (err) {
    // decodeModel's errors already start with the file's name (its `source`).
    const message = (err as Error).message.split('\n')[0]!;
    throw new TeachExportError(message.startsWith(`${file}: `) ? message : `${file}: ${message}`);
  }
}

/**
 * The run's optimizer graph must be the optimizer of this run's parameters, as optimizer-graph.ts builds it: inputs
 * learning_rate, step, each trained parameter, its gradient and its slots, with the checkpoint's shapes; outputs each
 * of those `_updated`. Anything else (random bytes, another model's optimizer, another optimizer) is refused.
 */
function checkOptimizerGraph(bytes: Uint8Array, file: string, state: readonly SpliceTensor[], trained: readonly string[], config: OptimizerConfig): void {
  const graph = decodeGraph(bytes, file).graph;
  const refuse = (why: string) => new TeachExportError(`${file} is not the optimizer of this run: ${why}`);
  const shapes = new Map(state.map((t) => [t.name, t.dims]));
  const expected = new Map<string, readonly number[]>([['learning_rate', [1]], ['step', [1]]]);
  const slots = slotNames(config);
  for (const name of trained) {
    const shape = shapes.get(name);
    if (shape === undefined) throw refuse(`the training graph's gradient '${name}_grad' is of no parameter in the checkpoint`);
    for (const input of [name, `${name}_grad`, ...slots.map((s) => `${name}.${s}`)]) expected.set(input, shape);
  }
  const inputs = new Map(graph.inputs.map((v) => [v.name, v.shape]));
  for (const [name, shape] of expected) {
    const found = inputs.get(name);
    if (!inputs.has(name)) throw refuse(`it has no input '${name}'`);
    if (found === undefined || found.length !== shape.length || found.some((d, i) => d !== shape[i])) throw refuse(`its input '${name}' is [${String(found)}], the run's is [${shape.join(',')}]`);
  }
  const extra = graph.inputs.find((v) => !expected.has(v.name));
  if (extra !== undefined) throw refuse(`it reads '${extra.name}', which the run does not have`);
  const outputs = new Set(graph.outputs.map((v) => v.name));
  const missing = [...expected.keys()].filter((n) => n !== 'learning_rate' && n !== 'step' && !n.endsWith('_grad')).find((n) => !outputs.has(`${n}_updated`));
  if (missing !== undefined) throw refuse(`it has no output '${missing}_updated'`);
  if (graph.outputs.length !== outputs.size || outputs.size !== trained.length * (1 + slots.length)) throw refuse(`it has ${graph.outputs.length} outputs, the run's optimizer ${trained.length * (1 + slots.length)}`);
}

function metadataJson(meta: Record<string, string>, key: string, file: string): unknown {
  const text = meta[key];
  if (typeof text !== 'string') throw new TeachExportError(`${file} does not record '${key}' (was it written by \`deepvision train\`?)`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new TeachExportError(`${file}: metadata '${key}' is not valid JSON`);
  }
}

/** The run's best validation top-1, when its checkpoint records one. */
function bestValidation(meta: Record<string, string>): { validation?: { top1: number; epoch: number } } {
  try {
    const best = JSON.parse(meta['deepvision.best'] ?? 'null') as { valTop1?: unknown; epoch?: unknown } | null;
    return typeof best?.valTop1 === 'number' && typeof best.epoch === 'number' ? { validation: { top1: best.valTop1, epoch: best.epoch } } : {};
  } catch {
    return {};
  }
}

/**
 * Binds the state to the inference graph (as the page does with fine-tuned values) and compares its logits on random
 * images with the run's eval graph fed the same state: the largest |difference|.
 */
async function verifyBound(inference: Uint8Array, evalBytes: Uint8Array, bound: readonly SpliceTensor[], state: readonly SpliceTensor[], chw: [number, number, number]): Promise<number> {
  const options: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'extended', intraOpNumThreads: os.availableParallelism() };
  const batch = 2;
  const rng = new Rng('teach-whole-verify');
  const input = new ort.Tensor('float32', Float32Array.from({ length: batch * chw[0] * chw[1] * chw[2] }, () => rng.normal()), [batch, ...chw]);
  let boundSession: ort.InferenceSession | undefined;
  let evaluation: ort.InferenceSession | undefined;
  try {
    boundSession = await ort.InferenceSession.create(bindInputs(inference, bound), options);
    evaluation = await ort.InferenceSession.create(evalBytes, options);
    const feeds: Record<string, ort.Tensor> = { input, labels: new ort.Tensor('int64', new BigInt64Array(batch), [batch]) };
    for (const t of state) feeds[t.name] = new ort.Tensor('float32', t.data, [...t.dims]);
    const wanted = Object.fromEntries(Object.entries(feeds).filter(([name]) => evaluation!.inputNames.includes(name)));
    const expected = outputOf(await evaluation.run(wanted), 'logits').data as Float32Array;
    const got = outputOf(await boundSession.run({ input }), 'logits').data as Float32Array;
    return largestDifference(expected, got);
  } catch (err) {
    throw new TeachExportError(`onnxruntime could not run the run's fine-tunable model: ${(err as Error).message.split('\n')[0]}`);
  } finally {
    await boundSession?.release();
    await evaluation?.release();
  }
}

/** The graph input names of an encoded model. */
function decodedInputs(bytes: Uint8Array): Set<string> {
  return new Set(decodeModel(bytes).graph.inputs.map((v) => v.name));
}
