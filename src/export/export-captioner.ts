import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { START } from '../portable/vocabulary';
import type { Model } from '../ir/model';
import { decodeModel } from '../onnx/read';
import { encodeModel } from '../onnx/write';
import { eliminateDeadNodes } from '../passes/eliminate-dead-nodes';
import { foldBatchNorm } from '../passes/fold-batchnorm';
import { removeIdentities } from '../passes/remove-identities';
import { CaptionerParts, CaptionModel, DefinitionLoader } from '../runtime/caption-model';
import { writeFileAtomic } from '../util/atomic-write';
import { Rng } from '../util/rng';
import type { CaptionerCard } from '../portable/captioner-card';
import { ExportError } from './export-error';
import { firstLine, imageDims } from './export-model';
import { storeWeightsAsFloat16 } from './float16-weights';
import { FileWriter, publish } from './publish';
import { beamProblem } from '../portable/search-limits';

export interface CaptionerExportOptions {
  fp16?: boolean;
  /** The search the card asks for (default: `deepvision caption`'s, beam 3 and length penalty 0.7). */
  beam?: number;
  lengthPenalty?: number;
  /** Loads the model definition when the run has no encoder_model.onnx and step_model.onnx. */
  definition?: DefinitionLoader;
  /** Largest |difference| accepted between the exported and the run's models (float32 export). */
  tolerance?: number;
  writeFile?: FileWriter;
}

export interface CaptionerExportReport {
  encoderFile: string;
  stepFile: string;
  cardFile: string;
  card: CaptionerCard;
  removedNodes: number;
  foldedBatchNorms: number;
  /** Largest |exported - run's| over the encoder's outputs and one decoder step's, on random images. */
  maxDifference: number;
}

const FILES = { encoder: 'encoder.onnx', step: 'step.onnx' } as const;

/**
 * Turns a captioner's training run into a folder the page and `deepvision caption` read: the encoder and the
 * decoder step (eval mode; identities removed, batch normalization folded, dead nodes pruned) as encoder.onnx and
 * step.onnx, and model.json with the vocabulary, preprocessing and search. Both models are checked against the
 * run's before anything is written, and written all or nothing, as a classifier's export is.
 */
export async function exportCaptioner(runDir: string, outDir: string, o: CaptionerExportOptions = {}): Promise<CaptionerExportReport> {
  if (path.basename(path.resolve(outDir)) === '') throw new ExportError(`--out ${outDir}: give a folder for the model, not the file system's root`);
  const parts = CaptionModel.readRun(runDir, o.definition);
  const meta = parts.metadata ?? {};
  const beam = o.beam ?? 3;
  const lengthPenalty = o.lengthPenalty ?? 0.7;
  const beamRefused = beamProblem(beam, parts.vocabulary.size);
  if (beamRefused !== undefined) throw new ExportError(beamRefused);
  if (!(Number.isFinite(lengthPenalty) && lengthPenalty >= 0)) throw new ExportError(`the length penalty must be a number >= 0, got ${lengthPenalty}`);

  const encoder = decodeModel(parts.encoder);
  const step = decodeModel(parts.step);
  const input = encoder.graph.inputs.find((v) => v.name === 'input');
  if (input === undefined) throw new ExportError(`${runDir}: the captioner's encoder model has no input \`input\``);
  const chw = imageDims(input.shape, `${runDir}'s encoder`, 'input');
  if (chw[0] !== 3 || chw[1] !== parts.imageSize || chw[2] !== parts.imageSize) {
    throw new ExportError(`${runDir}: the encoder takes [${chw}] images, but the checkpoint records ${parts.imageSize}x${parts.imageSize} RGB`);
  }
  let removedNodes = 0;
  let foldedBatchNorms = 0;
  for (const model of [encoder, step]) {
    const before = model.graph.nodes.length;
    removeIdentities(model.graph);
    foldedBatchNorms += foldBatchNorm(model.graph);
    eliminateDeadNodes(model.graph);
    removedNodes += before - model.graph.nodes.length;
    if (o.fp16) storeWeightsAsFloat16(model.graph);
    model.metadata.set('deepvision.exported', 'true');
    model.metadata.set('deepvision.precision', o.fp16 ? 'float16-weights' : 'float32');
  }
  const exported: CaptionerParts = { ...parts, encoder: encodeModel(encoder), step: encodeModel(step) };

  const maxDifference = await compareWithRun(parts, exported, chw);
  if (Number.isNaN(maxDifference)) throw new ExportError(`the exported captioner or the run's computes NaN on the verification images (are there NaN weights in ${runDir}?): not written`);
  const tolerance = o.tolerance ?? 1e-4;
  if (!o.fp16 && !(maxDifference <= tolerance)) {
    throw new ExportError(`the exported captioner differs from the run's models by ${maxDifference.toExponential(2)} (more than ${tolerance}): not written`);
  }
  // The contract the page relies on (encoder outputs feed the step, log_probs over the vocabulary), checked as
  // `deepvision caption` checks it.
  await (await CaptionModel.fromParts(exported, `the captioner exported from ${runDir}`)).release();

  const best = readBest(meta);
  const card: CaptionerCard = {
    format: 'deepvision-model-card',
    version: 1,
    task: 'captioning',
    name: path.basename(path.resolve(outDir)),
    files: { ...FILES },
    input: {
      name: 'input',
      shape: chw,
      preprocessing: { resizeShorterSide: parts.imageSize, mean: parts.normalization.mean, std: parts.normalization.std },
    },
    vocabulary: parts.vocabulary.toJSON(),
    generation: { maxLength: parts.maxLength, beam, lengthPenalty },
    training: { dataset: path.basename(meta['deepvision.data'] ?? 'unknown'), ...(best ? { validation: best } : {}) },
    precision: o.fp16 ? 'float16-weights' : 'float32',
    parameters: countParameters([encoder, step]),
    bytes: exported.encoder.byteLength + exported.step.byteLength,
    producer: `deepvision ${encoder.producerVersion}`,
    exportedAt: new Date().toISOString(),
  };
  publish(outDir, { [FILES.encoder]: exported.encoder, [FILES.step]: exported.step, 'model.json': `${JSON.stringify(card, null, 2)}\n` }, o.writeFile ?? writeFileAtomic);
  return {
    encoderFile: path.join(outDir, FILES.encoder), stepFile: path.join(outDir, FILES.step), cardFile: path.join(outDir, 'model.json'), card,
    removedNodes, foldedBatchNorms, maxDifference,
  };
}

/**
 * Runs the run's and the exported encoder on the same random images, then one decoder step of each from <start>
 * with the run's encoder outputs, and returns the largest difference over every output (whatever the decoder's
 * state is called: the contract, not an LSTM's h and c).
 */
async function compareWithRun(original: CaptionerParts, exported: CaptionerParts, chw: [number, number, number]): Promise<number> {
  const batch = 2;
  const rng = new Rng(0);
  const images = new ort.Tensor('float32', Float32Array.from({ length: batch * chw[0] * chw[1] * chw[2] }, () => rng.normal()), [batch, ...chw]);
  const token = new ort.Tensor('int64', new BigInt64Array(batch).fill(BigInt(START)), [batch]);
  const options: ort.InferenceSession.SessionOptions = { intraOpNumThreads: os.availableParallelism() };
  const sessions: ort.InferenceSession[] = [];
  const open = async (bytes: Uint8Array, name: string) => {
    try {
      const s = await ort.InferenceSession.create(bytes, options);
      sessions.push(s);
      return s;
    } catch (err) {
      throw new ExportError(`onnxruntime rejected ${name}: ${firstLine(err)}`);
    }
  };
  const evaluate = async (s: ort.InferenceSession, feeds: Record<string, ort.Tensor>, name: string) => {
    try {
      return await s.run(Object.fromEntries(s.inputNames.filter((n) => n in feeds).map((n) => [n, feeds[n]!])));
    } catch (err) {
      throw new ExportError(`onnxruntime could not run ${name}: ${firstLine(err)}`);
    }
  };
  try {
    const [runEncoder, runStep, outEncoder, outStep] = [
      await open(original.encoder, "the run's encoder"), await open(original.step, "the run's decoder step"),
      await open(exported.encoder, 'the exported encoder'), await open(exported.step, 'the exported decoder step'),
    ] as const;
    const state = await evaluate(runEncoder, { input: images }, "the run's encoder");
    let max = difference(state, await evaluate(outEncoder, { input: images }, 'the exported encoder'), 'the encoder');
    const feeds = { ...(state as Record<string, ort.Tensor>), token };
    max = Math.max(max, difference(await evaluate(runStep, feeds, "the run's decoder step"), await evaluate(outStep, feeds, 'the exported decoder step'), 'the decoder step'));
    return max;
  } finally {
    await Promise.all(sessions.map((s) => s.release()));
  }
}

/** Largest |a - b| over the float outputs both have (NaN if either computes one); an output missing is an error. */
function difference(a: ort.InferenceSession.ReturnType, b: ort.InferenceSession.ReturnType, what: string): number {
  let max = 0;
  for (const [name, x] of Object.entries(a)) {
    const y = b[name];
    if (y === undefined) throw new ExportError(`the exported ${what} lost its output '${name}'`);
    if (!(x.data instanceof Float32Array)) continue;
    if (!(y.data instanceof Float32Array) || y.data.length !== x.data.length) throw new ExportError(`the exported ${what}'s output '${name}' is ${y.type} [${y.dims}], the run's is ${x.type} [${x.dims}]`);
    for (let i = 0; i < x.data.length; i++) {
      const d = Math.abs(x.data[i]! - y.data[i]!);
      if (Number.isNaN(d)) return NaN;
      max = Math.max(max, d);
    }
  }
  return max;
}

/** The best epoch's validation numbers, when the checkpoint records them (they are informative, not required). */
function readBest(meta: Record<string, string>): CaptionerCard['training']['validation'] {
  try {
    const v = JSON.parse(meta['deepvision.best'] ?? 'null') as Record<string, unknown> | null;
    if (typeof v !== 'object' || v === null || typeof v.epoch !== 'number' || typeof v.valLoss !== 'number') return undefined;
    const bleu = Array.isArray(v.valBleu) && v.valBleu.every((x) => typeof x === 'number') ? { bleu: v.valBleu as number[] } : {};
    return { loss: v.valLoss, epoch: v.epoch, ...bleu };
  } catch {
    return undefined;
  }
}

/** Parameters of both models, each counted once (a weight both use, like the LSTM's, is one parameter). */
function countParameters(models: Model[]): number {
  const sizes = new Map<string, number>();
  for (const m of models) for (const [name, t] of m.graph.initializers) if (t.dtype === 'float32' || t.dtype === 'float16') sizes.set(name, t.size);
  return [...sizes.values()].reduce((a, b) => a + b, 0);
}
