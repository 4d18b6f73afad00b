import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Model } from '../ir/model';
import type { ConfigValue, ModelDefinition } from '../model/definition';
import { buildEvalGraph, buildTrainingGraph, TrainingGraph } from '../model/training-graph';
import { readModelFile } from '../onnx/read';
import { encodeModel } from '../onnx/write';
import type { OptimizerConfig } from '../optim/config';
import { buildOptimizerGraph } from '../optim/optimizer-graph';
import { findCutPoints } from '../import/cut-points';
import { featureModel, findFrozenSplit, withFeaturesInput } from '../train/frozen-features';
import { describeWriteFailure, writeFileAtomic, WriteError } from '../util/atomic-write';
import { Rng } from '../util/rng';
import { isUserFacing, UserError } from '../util/user-error';
import { MAX_CLASSES, MIN_CLASSES, TeachBundleCard, TeachHead } from '../portable/teach-card';
import { TeachExportError } from './teach-error';
import { spliceHead } from '../portable/teach-splice';
import { createStagingFolder } from './staging-folder';
import { concatFloats, isTrainingRun, logitsGraph, readWholeModel, WholeModelOptions } from './teach-whole-model';
import { largestDifference } from '../util/largest-difference';
import { outputOf } from '../portable/session-output';
import { inputSideProblem } from '../data/input-size';


/** Writes one whole file (or throws); the bundle's only way of writing, so that tests can make it fail. */
type FileWriter = (file: string, data: Uint8Array | string) => void;

export interface TeachBundleOptions {
  /**
   * The pretrained ONNX model, or a `deepvision train` run folder (its trained model is then the backbone, its
   * normalization the default, and the bundle also ships the whole model for fine-tuning); and the value to cut it
   * at (default `features`, else the input of its last Gemm/MatMul).
   */
  backbone: string;
  cut?: string;
  /** Input size in pixels (default: the backbone's own input size, else 224). */
  imageSize?: number;
  /** Input normalization (default ImageNet's, which the bundled backbones were trained with). */
  mean?: number[];
  std?: number[];
  /** Class counts to ship heads for (default 2 to 10). */
  classCounts?: number[];
  optimizer?: OptimizerConfig;
  learningRate?: number;
  epochs?: number;
  batchSize?: number;
  heldOutFraction?: number;
  /** Seed of the heads' initial parameters. */
  seed?: number;
  /** Fine-tuning defaults of a run's whole model. */
  wholeModel?: WholeModelOptions;
  writeFile?: FileWriter;
}

export interface TeachBundleReport {
  card: TeachBundleCard;
  cardFile: string;
  bytes: number;
  /** Largest |spliced model - eval model| of the logits over the verification images. */
  maxDifference: number;
  /** The same for a run's whole model with its state bound (undefined for a backbone file). */
  wholeModelDifference?: number;
}

/**
 * The training defaults of the page, measured on 3 classes x 10 images (8 to train on): Adam at 0.003 in batches of
 * 8 reaches its held-out accuracy within 20 epochs on MobileNetV2 features and on a small shapes CNN's.
 */
const DEFAULTS = { optimizer: { kind: 'adam' } as OptimizerConfig, learningRate: 0.003, epochs: 20, batchSize: 8, heldOutFraction: 0.2 };

/**
 * Writes a Teach bundle for the page from `definition` (graphs/transfer.ts: a backbone and a linear head): the
 * backbone up to the cut as feature_model.onnx, and per class count the head's training, optimizer, evaluation and
 * inference graphs, with the same cut and the same generated graphs as `deepvision transfer` trains on cached
 * features, and its initial parameters; then teach.json. A head spliced onto the feature model is checked against
 * the whole model's eval graph before anything is written, and the folder is written all or nothing.
 */
export async function writeTeachBundle(definition: ModelDefinition, outDir: string, options: TeachBundleOptions): Promise<TeachBundleReport> {
  const whole = isTrainingRun(options.backbone) ? await readWholeModel(options.backbone, options.wholeModel) : undefined;
  // A run's trained model is the backbone, normalized as the run normalized its images.
  const o = whole === undefined ? options : { ...options, backbone: whole.inferenceFile, mean: options.mean ?? whole.normalization.mean, std: options.std ?? whole.normalization.std };
  if (!fs.existsSync(o.backbone) || !fs.statSync(o.backbone).isFile()) throw new TeachExportError(`backbone not found: ${o.backbone}`);
  if (path.basename(path.resolve(outDir)) === '') throw new TeachExportError(`--out ${outDir}: give a folder for the bundle, not the file system's root`);
  const counts = [...new Set(o.classCounts ?? Array.from({ length: MAX_CLASSES - MIN_CLASSES + 1 }, (_, i) => MIN_CLASSES + i))].sort((a, b) => a - b);
  if (counts.length === 0 || !counts.every((k) => Number.isInteger(k) && k >= MIN_CLASSES && k <= 100)) throw new TeachExportError(`class counts must be integers from ${MIN_CLASSES} to 100, got ${counts.join(', ')}`);
  const backbone = readBackbone(o.backbone);
  const imageSize = o.imageSize ?? backboneImageSize(backbone) ?? 224;
  const sideRefused = inputSideProblem(imageSize);
  if (sideRefused !== undefined) throw new TeachExportError(`${sideRefused} (--image-size)`);
  const mean = o.mean ?? [0.485, 0.456, 0.406];
  const std = o.std ?? [0.229, 0.224, 0.225];
  if (mean.length !== 3 || std.length !== 3 || !std.every((s) => s > 0) || ![...mean, ...std].every(Number.isFinite)) {
    throw new TeachExportError(`--mean and --std need 3 finite values each (std > 0), got ${mean.join(',')} and ${std.join(',')}`);
  }
  const cut = o.cut ?? defaultCut(backbone, o.backbone);
  const seed = o.seed ?? 0;
  const config = (classes: number): Record<string, ConfigValue> => ({
    numClasses: classes, imageSize, backbone: path.resolve(o.backbone), output: cut, trainable: 'none', mean: mean.join(','), std: std.join(','),
  });

  const files: Record<string, Uint8Array | string> = {};
  const heads: TeachHead[] = [];
  let features: { model: Model; perImage: number; backboneParameters: number } | undefined;
  let verify: { classes: number; training: TrainingGraph; evalModel: Model; head: Uint8Array } | undefined;
  for (const classes of counts) {
    const { training, evalModel } = buildGraphs(definition, config(classes), seed, o.backbone, cut);
    const frozen = new Set(training.parameters.filter((p) => !training.trainable.includes(p.name)).map((p) => p.name));
    const split = findFrozenSplit(training.model, frozen);
    const evalSplit = findFrozenSplit(evalModel, frozen);
    if (split === undefined || evalSplit === undefined || split.perImage.length !== 1) {
      throw new TeachExportError(`${o.backbone} cut at '${cut}' gives no fixed-size feature vector per image for a head to read: choose another --cut (deepvision inspect ${o.backbone} lists them)`);
    }
    if (features === undefined) {
      const backboneParameters = [...training.values.entries()].filter(([name]) => frozen.has(name)).reduce((n, [, v]) => n + v.size, 0);
      features = { model: featureModel(evalModel, evalSplit, training.values), perImage: split.perImage[0]!, backboneParameters };
      files['feature_model.onnx'] = encodeModel(features.model);
    }
    const folder = `head-${classes}`;
    const trainModel = withFeaturesInput(training.model, split);
    const headEval = withFeaturesInput(evalModel, evalSplit);
    const optimizer = buildOptimizerGraph(training.trainableSpecs, o.optimizer ?? DEFAULTS.optimizer);
    const head = encodeModel(logitsGraph(headEval));
    const state = trainModel.graph.inputs.map((v) => v.name).filter((name) => training.values.has(name));
    files[`${folder}/training_model.onnx`] = encodeModel(trainModel);
    files[`${folder}/optimizer_model.onnx`] = encodeModel(optimizer.model);
    files[`${folder}/eval_model.onnx`] = encodeModel(headEval);
    files[`${folder}/inference_head.onnx`] = head;
    files[`${folder}/init.f32`] = concatFloats(state.map((name) => training.values.get(name)!.typed() as Float32Array));
    heads.push({
      classes, folder, training: 'training_model.onnx', optimizer: 'optimizer_model.onnx', eval: 'eval_model.onnx', inference: 'inference_head.onnx',
      parameters: state.map((name) => ({ name, shape: [...training.values.get(name)!.dims] })), init: 'init.f32',
    });
    // Checked once, on the smallest head: every head is cut and spliced alike.
    verify ??= { classes, training, evalModel, head };
  }

  const maxDifference = await verifySplice(files['feature_model.onnx'] as Uint8Array, verify!, imageSize);
  if (!(maxDifference <= 1e-4)) throw new TeachExportError(`the taught model assembled from the bundle differs from the eval model by ${maxDifference.toExponential(2)} (more than 1e-4): not written`);
  const card: TeachBundleCard = {
    format: 'deepvision-teach-bundle',
    version: 1,
    name: path.basename(path.resolve(outDir)),
    backbone: { file: whole === undefined ? path.basename(o.backbone) : path.basename(path.resolve(options.backbone)), cut, parameters: features!.backboneParameters },
    featureModel: 'feature_model.onnx',
    input: { name: 'input', shape: [3, imageSize, imageSize], preprocessing: { resizeShorterSide: imageSize, mean, std } },
    features: features!.perImage,
    heads,
    optimizer: o.optimizer ?? DEFAULTS.optimizer,
    training: {
      learningRate: o.learningRate ?? DEFAULTS.learningRate, epochs: o.epochs ?? DEFAULTS.epochs,
      batchSize: o.batchSize ?? DEFAULTS.batchSize, heldOutFraction: o.heldOutFraction ?? DEFAULTS.heldOutFraction,
    },
    ...(whole !== undefined ? { wholeModel: whole.card } : {}),
    producer: `deepvision ${features!.model.producerVersion}`,
    exportedAt: new Date().toISOString(),
  };
  Object.assign(files, whole?.files ?? {});
  files['teach.json'] = `${JSON.stringify(card, null, 2)}\n`;
  publish(outDir, files, o.writeFile ?? writeFileAtomic);
  const bytes = Object.values(files).reduce((n, f) => n + (typeof f === 'string' ? Buffer.byteLength(f) : f.byteLength), 0);
  return { card, cardFile: path.join(outDir, 'teach.json'), bytes, maxDifference, ...(whole !== undefined ? { wholeModelDifference: whole.maxDifference } : {}) };
}

function readBackbone(file: string): Model {
  try {
    return readModelFile(file);
  } catch (err) {
    throw new TeachExportError(`${file}: ${(err as Error).message.split('\n')[0]}`);
  }
}

/** The backbone's input height when it is static and square, else undefined. */
function backboneImageSize(model: Model): number | undefined {
  const initializers = model.graph.initializers;
  const shape = model.graph.inputs.find((v) => !initializers.has(v.name))?.shape;
  return shape?.length === 4 && typeof shape[2] === 'number' && shape[2] === shape[3] ? shape[2] : undefined;
}

/** `features` when the backbone has such a value (the bundled MobileNetV2 does), else its pooled feature vector. */
function defaultCut(model: Model, file: string): string {
  if (model.graph.values.has('features')) return 'features';
  let pooled: string | undefined;
  try {
    pooled = findCutPoints(model, file).find((p) => p.shape.length === 2)?.name;
  } catch {
    pooled = undefined;
  }
  if (pooled === undefined) throw new TeachExportError(`${file} has no value 'features' and no pooled feature vector before a last Gemm or MatMul: give --cut (deepvision inspect ${file} lists values)`);
  return pooled;
}

function buildGraphs(definition: ModelDefinition, config: Record<string, ConfigValue>, seed: number, backbone: string, cut: string) {
  try {
    return {
      training: buildTrainingGraph(definition, { config, seed }),
      evalModel: buildEvalGraph(definition, { config, seed }).model,
    };
  } catch (err) {
    if (isUserFacing(err)) throw err;
    throw new TeachExportError(`cannot build a head on ${backbone} cut at '${cut}': ${(err as Error).message.split('\n')[0]}`);
  }
}

/**
 * Splices the head onto the feature model with its initial parameters (as the page does with trained ones) and
 * compares its logits on random images with the whole model's eval graph: the largest |difference|.
 */
async function verifySplice(featureBytes: Uint8Array, v: { classes: number; training: TrainingGraph; evalModel: Model; head: Uint8Array }, imageSize: number): Promise<number> {
  const trainable = v.training.trainable.map((name) => ({ name, dims: v.training.values.get(name)!.dims, data: v.training.values.get(name)!.typed() as Float32Array }));
  const taught = spliceHead(featureBytes, v.head, trainable);
  const options: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'extended', intraOpNumThreads: os.availableParallelism() };
  const batch = 2;
  const rng = new Rng('teach-verify');
  const input = new ort.Tensor('float32', Float32Array.from({ length: batch * 3 * imageSize * imageSize }, () => rng.normal()), [batch, 3, imageSize, imageSize]);
  let a: ort.InferenceSession | undefined;
  let b: ort.InferenceSession | undefined;
  try {
    a = await ort.InferenceSession.create(taught, options);
    b = await ort.InferenceSession.create(encodeModel(v.evalModel), options);
    const feeds: Record<string, ort.Tensor> = { input, labels: new ort.Tensor('int64', new BigInt64Array(batch), [batch]) };
    for (const [name, t] of v.training.values) if (b.inputNames.includes(name)) feeds[name] = new ort.Tensor('float32', t.typed() as Float32Array, [...t.dims]);
    const expected = outputOf(await b.run(feeds), 'logits').data as Float32Array;
    const got = outputOf(await a.run({ input }), 'logits').data as Float32Array;
    return largestDifference(expected, got);
  } catch (err) {
    throw new TeachExportError(`onnxruntime could not run the assembled taught model: ${(err as Error).message.split('\n')[0]}`);
  } finally {
    await a?.release();
    await b?.release();
  }
}

/**
 * Puts `files` (paths relative to the bundle, sub-folders allowed) into `outDir`, all or nothing: they are written
 * into a hidden folder beside it (where a full disk shows up), which then replaces `outDir` by renames only; a
 * previous bundle there is moved aside first and back if the rename fails.
 */
function publish(outDir: string, files: Record<string, Uint8Array | string>, write: FileWriter): void {
  const target = path.resolve(outDir);
  if (fs.existsSync(target) && !fs.statSync(target).isDirectory()) throw new TeachExportError(`--out ${outDir} is a file, not a folder`);
  if (fs.existsSync(target) && fs.readdirSync(target).length > 0 && !fs.existsSync(path.join(target, 'teach.json'))) {
    throw new TeachExportError(`--out ${outDir} is a folder with other files in it (no teach.json): give a new or empty folder, or a bundle's`);
  }
  let stage: string | undefined;
  let aside: string | undefined;
  try {
    stage = createStagingFolder(target, 'teach');
    for (const [name, data] of Object.entries(files)) {
      const file = path.join(stage, name);
      try {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        write(file, data);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== undefined) throw new WriteError(describeWriteFailure(err, path.join(outDir, name)));
        if (err instanceof UserError) throw new WriteError(err.message.split(file).join(path.join(outDir, name)));
        throw err;
      }
    }
    try {
      if (fs.existsSync(target)) {
        aside = `${stage}.previous`;
        fs.renameSync(target, aside);
      }
      fs.renameSync(stage, target);
      stage = undefined;
    } catch (err) {
      if (aside !== undefined && !fs.existsSync(target)) fs.renameSync(aside, target);
      aside = undefined;
      throw new WriteError(describeWriteFailure(err, outDir));
    }
  } finally {
    if (stage !== undefined) fs.rmSync(stage, { recursive: true, force: true });
    if (aside !== undefined) fs.rmSync(aside, { recursive: true, force: true });
  }
}
