import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { AugmentConfig, describeAugmentation, NO_AUGMENTATION } from '../data/augment';
import { BatchPipeline } from '../data/batch-pipeline';
import { ImageDataset, Normalization, channelStatistics, fillBatch, selectImages } from '../data/dataset';
import type { ConfigValue, ModelDefinition } from '../model/definition';
import { buildEvalGraph, buildTrainingGraph, TrainingGraph } from '../model/training-graph';
import type { CaptionData } from '../data/captions/load-captions';
import { captionFeeds, evaluateCaptions } from './caption-evaluation';
import { CachedFeatures, InputBatch } from './input-batch';
import { computeFeatures, featureBatches, featureModel, findFrozenSplit, withFeaturesInput } from './frozen-features';
import type { Model } from '../ir/model';
import { encodeModel } from '../onnx/write';
import { modelForCpu } from '../runtime/nchwc';
import { modelForWebGpu } from '../runtime/webgpu-model';
import { describeOptimizer, OptimizerConfig, slotNames } from '../optim/config';
import { buildOptimizerGraph } from '../optim/optimizer-graph';
import { learningRateAt, Schedule } from '../optim/schedule';
import { Rng } from '../util/rng';
import { GraphBuilder } from '../dsl/builder';
import * as F from '../dsl/functional';
import { DROPOUT_NOISE } from '../dsl/functional';
import { CheckpointContents, checkpointBest, checkpointConfusion, checkTensorsMatch, loadCheckpoint, saveCheckpoint, TrainingPosition } from './checkpoint';
import { DeviceLossSum } from './device-loss-sum';
import { TrainingStep } from './training-step';
import { Average, topKCorrect } from './metrics';
import { isUserFacing, UserError } from '../util/user-error';
import { describeWriteFailure, removeStaleTempFiles, writeFileAtomic } from '../util/atomic-write';
import { summarizeRun, writeRunSummary } from './run-summary';

export interface TrainOptions {
  definition: ModelDefinition;
  variant?: string;
  config?: Record<string, ConfigValue>;
  train: ImageDataset;
  val: ImageDataset;
  epochs: number;
  batchSize: number;
  optimizer: OptimizerConfig;
  learningRate: number;
  schedule?: Schedule;
  warmupSteps?: number;
  clipGradNorm?: number;
  labelSmoothing?: number;
  seed?: number;
  /**
   * Learning rates of parameter groups, by name prefix (`{ 'backbone.': 1e-4 }`): those parameters train at this
   * rate instead of `learningRate`, under the same schedule. The longest matching prefix wins.
   */
  learningRates?: Record<string, number>;
  /** Stop when the validation loss has not improved for this many epochs. */
  patience?: number;
  outDir: string;
  threads?: number;
  /** Execution providers, in order of preference (default: CPU). */
  executionProviders?: string[];
  /** ORT graph optimization level (default 'extended': level 'all' adds an NCHWc pass that slows training graphs). */
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * On the CPU provider, run convolutions with onnxruntime's channel-blocked kernels where this machine has them
   * (default true; the training and evaluation graphs are lowered in memory, the artifacts on disk stay standard ONNX).
   */
  blockedConvolutions?: boolean;
  /** Continue from this checkpoint (a `last.safetensors` of an earlier run). */
  resume?: string;
  /** The graph file the definition came from, recorded in checkpoints so `deepvision eval` can rebuild the model. */
  graphFile?: string;
  /** Stop after this many updates (tests). */
  maxSteps?: number;
  /** Augmentation of the training split (default none); validation images are never augmented. */
  augment?: AugmentConfig;
  /** What --data named (recorded in checkpoints, so `deepvision eval` finds the same data and split). */
  data?: { source: string; valFraction?: number };
  /** How summary.json names the data (default: `data.source`, else the training set's name); the CLI passes --data as typed. */
  dataLabel?: string;
  /**
   * Called when training has ended, before summary.json is written: files that belong to a finished run (the CLI's
   * artifacts) are written here, so that a run with a summary has them all (the sweep counts such a run as done).
   */
  beforeSummary?: (result: TrainResult) => void | Promise<void>;
  /** Worker threads that assemble and augment batches ahead of training (default 0: on the trainer's thread). */
  workers?: number;
  /** Training images (a fixed seeded sample) on which train accuracy is measured each epoch, in eval mode (default 2,000). */
  trainAccuracySample?: number;
  /**
   * Receives progress events after each update (the CLI draws a bar from them); `loss` is the epoch's mean so far,
   * NaN before the first loss is read back from a GPU.
   */
  onBatch?: (e: { epoch: number; batch: number; batches: number; loss: number; imagesPerSecond: number }) => void;
  onEpoch?: (m: EpochMetrics) => void;
  /**
   * Whether the features of a frozen first part of the model (a pretrained backbone) are computed once per image and
   * cached on disk (default true; not with augmentation).
   */
  cacheFeatures?: boolean;
  /** Folder of the feature cache (default: the image cache's). */
  cacheDir?: string;
  /** Progress of computing backbone features (per data set). */
  onFeatures?: (done: number, total: number, what: string) => void;
  /**
   * For a captioner (a definition with task 'captioning'): the caption data; `train` and `val` are then its splits'
   * images. Each training row is one (image, caption) pair; validation reports token accuracy and greedy BLEU.
   */
  captions?: CaptionData;
  /** Validation images captioned for BLEU each epoch (default 500). */
  bleuImages?: number;
  /** One-line notes for the user (the CLI prints them). */
  onNotice?: (message: string) => void;
  /** Checked between batches: when it returns true, a checkpoint is written and training stops (Ctrl-C). */
  shouldStop?: () => boolean;
}

export interface EpochMetrics {
  epoch: number;
  step: number;
  learningRate: number;
  trainLoss: number;
  valLoss: number;
  valTop1: number;
  valTop5: number;
  seconds: number;
  imagesPerSecond: number;
  /** Captioners: corpus BLEU-1..4 of greedy captions of validation images. */
  valBleu?: number[];
  /** Eval-mode loss and top-1 on a fixed sample of the training split (without augmentation). */
  trainEvalLoss?: number;
  trainTop1?: number;
}

export type StopReason = 'completed' | 'early-stopping' | 'interrupted' | 'max-steps';

export interface TrainResult {
  history: EpochMetrics[];
  best: EpochMetrics | undefined;
  stopped: StopReason;
  lastCheckpoint: string;
  bestCheckpoint: string;
  normalization: Normalization;
  /** Validation confusion matrix of the best epoch: confusion[true][predicted] counts. */
  confusion: number[][] | undefined;
  /** Final parameters and state by name. */
  tensors: Map<string, ort.Tensor>;
}

/** A loss that is NaN or infinite: training stops and the last good checkpoint stays as it was. */
export class TrainingError extends UserError {}

/**
 * Trains a classifier with the generated training graph and optimizer graph in onnxruntime-node: seeded
 * shuffling, validation every epoch (loss, top-1, top-5), best and last checkpoints, early stopping, exact resume,
 * a NaN guard and a clean stop on request. Metrics are appended to `<outDir>/metrics.jsonl`; when the run ends
 * (finished, stopped early or on request) `<outDir>/summary.json` records it (see RunSummary).
 */
export async function train(o: TrainOptions): Promise<TrainResult> {
  const classes = o.train.classNames.length;
  const config = configForData(o);
  const seed = o.seed ?? 0;
  const { graph, evalGraph } = buildGraphs(o, config, seed);
  checkModelFitsData(o, evalGraph.model);
  const paramSpecs = graph.trainableSpecs.map((p) => ({ ...p, lrScale: learningRateScale(o, p.name) }));
  const optimizer = buildOptimizerGraph(paramSpecs, o.optimizer, { clipGradNorm: o.clipGradNorm });
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    // Three sessions take turns; idle thread pools that spin-wait for work would steal the cores from the one
    // running (measured: 15 % faster epochs on 2 cores without spinning).
    extra: { session: { intra_op: { allow_spinning: '0' } } },
    // 0 would leave the choice to onnxruntime, which measured 30 % slower here than one thread per core.
    intraOpNumThreads: o.threads || os.availableParallelism(), interOpNumThreads: 1, graphOptimizationLevel: o.graphOptimizationLevel ?? 'extended', executionProviders: o.executionProviders ?? ['cpu'],
  };
  // On WebGPU, parameters, gradients, state and optimizer slots stay in GPU buffers between steps (outputs fed back
  // as inputs); only the loss, the logits and checkpoint downloads come to the host.
  const onGpu = (o.executionProviders ?? ['cpu'])[0] === 'webgpu';
  const located = (model: Model, cpuOutputs: string[]): ort.InferenceSession.SessionOptions => (onGpu
    ? { ...sessionOptions, preferredOutputLocation: Object.fromEntries(model.graph.outputs.map((v) => [v.name, cpuOutputs.includes(v.name) ? 'cpu' : 'gpu-buffer'])) }
    : sessionOptions);
  const onCpu = (o.executionProviders ?? ['cpu'])[0] === 'cpu';
  // Each provider gets the graph rewritten for its kernels (in memory only): blocked convolutions on the CPU, no
  // LogSoftmax on WebGPU.
  const forSession = async (model: Model) => (onCpu && o.blockedConvolutions !== false ? (await modelForCpu(model)).bytes : onGpu ? modelForWebGpu(model) : encodeModel(model));
  const normalization = modelNormalization(o, graph.config) ?? channelStatistics(o.train);
  // Captioners report token accuracy on validation only.
  const sampleSize = o.captions !== undefined ? 0 : Math.min(o.trainAccuracySample ?? 2000, o.train.count);
  const sampleIndices = new Rng(`train-accuracy/${seed}`).shuffle([...Array(o.train.count).keys()]).slice(0, sampleSize);
  // A frozen backbone runs once per image: training and evaluation then run the rest on its cached features.
  const frozen = await frozenFeaturesFor(o, graph, evalGraph.model, normalization, sessionOptions);
  const trainModel = frozen?.trainModel ?? graph.model;
  const evalModel = frozen?.evalModel ?? evalGraph.model;
  // On WebGPU the loss stays on the device too, summed there and read back every LOSS_READ_INTERVAL updates.
  const trainSession = await ort.InferenceSession.create(await forSession(trainModel), located(trainModel, onGpu ? [] : ['loss']));
  const lossSum = onGpu ? await DeviceLossSum.create(sessionOptions) : undefined;
  const optimizerSession = await ort.InferenceSession.create(encodeModel(optimizer.model), located(optimizer.model, []));
  const evalSession = await ort.InferenceSession.create(await forSession(evalModel), located(evalModel, ['loss', 'logits']));
  const shapeOf = (name: string) => graph.values.get(name)?.dims ?? paramSpecs.find((p) => name.startsWith(`optimizer.${p.name}.`))!.shape;
  const download = onGpu ? await hostCopier([...graph.values.keys(), ...optimizer.stateNames.map((n) => `optimizer.${n}`)], shapeOf, sessionOptions) : undefined;
  // One update (training graph, then optimizer graph) is driven by the module the page's Teach mode shares.
  const trainingStep = new TrainingStep(trainSession, optimizerSession, {
    inputs: graph.parameters.map((p) => p.name).filter((name) => trainSession.inputNames.includes(name)),
    trainable: paramSpecs.map((p) => p.name), slots: optimizer.stateNames, stateOutputs: graph.stateOutputs,
  }, ort.Tensor);

  // All state that training changes, by name: parameters, buffers, optimizer slots.
  const tensors = new Map<string, ort.Tensor>();
  for (const [name, value] of graph.values) tensors.set(name, new ort.Tensor('float32', Float32Array.from(value.typed() as Float32Array), [...value.dims]));
  for (const p of paramSpecs) for (const slot of slotNames(o.optimizer)) tensors.set(`optimizer.${p.name}.${slot}`, new ort.Tensor('float32', new Float32Array(p.shape.reduce((a, b) => a * b, 1)), [...p.shape]));
  let position: TrainingPosition = { epoch: 0, batch: 0, step: 0, epochRng: new Rng(`train/${seed}`).getState() };
  const history: EpochMetrics[] = [];
  let best: EpochMetrics | undefined;
  let resumedConfusion: number[][] | undefined;
  let resumedHistory: EpochMetrics[] = [];
  if (o.resume !== undefined) {
    const loaded = loadCheckpoint(o.resume);
    checkTensorsMatch(o.resume, loaded.tensors, new Map([...tensors].map(([name, t]) => [name, t.dims])), 'this model and optimizer');
    for (const name of tensors.keys()) tensors.set(name, loaded.tensors.get(name)!);
    position = loaded.position;
    best = checkpointBest(loaded.metadata, o.resume);
    resumedConfusion = checkpointConfusion(loaded.metadata, o.resume);
    resumedHistory = historyOf(o.resume, loaded.metadata, position.epoch);
  }

  const lastCheckpoint = path.join(o.outDir, 'last.safetensors');
  const bestCheckpoint = path.join(o.outDir, 'best.safetensors');
  const metricsFile = path.join(o.outDir, 'metrics.jsonl');
  prepareOutputFolder(o.outDir);
  // The metrics log always agrees with the checkpoint training continues from: it is rewritten from the epochs the
  // checkpoint records (none for a fresh run), so a run killed between a checkpoint and its log line, or resumed
  // from an earlier checkpoint, never shows an epoch twice or one the parameters do not contain.
  const epochsSoFar: EpochMetrics[] = o.resume === undefined ? [] : resumedHistory;
  writeFileAtomic(metricsFile, epochsSoFar.map((m) => `${JSON.stringify(m)}\n`).join(''));
  if (o.resume !== undefined && best !== undefined) {
    best = carryBestCheckpoint(o.resume, bestCheckpoint, best);
    if (best === undefined) resumedConfusion = undefined;
  }
  const metadata = (): Record<string, string> => ({
    'deepvision.model': o.definition.name,
    ...(o.variant ? { 'deepvision.variant': o.variant } : {}),
    'deepvision.config': JSON.stringify(graph.config),
    'deepvision.seed': String(seed),
    'deepvision.optimizer': JSON.stringify(o.optimizer),
    'deepvision.optimizer_description': describeOptimizer(o.optimizer),
    ...(o.learningRates !== undefined ? { 'deepvision.learning_rates': JSON.stringify(o.learningRates) } : {}),
    'deepvision.data': o.data?.source ?? o.train.name,
    ...(o.data?.valFraction !== undefined ? { 'deepvision.val_fraction': String(o.data.valFraction) } : {}),
    ...(o.graphFile ? { 'deepvision.graph_file': path.resolve(o.graphFile) } : {}),
    'deepvision.image_size': String(o.train.height),
    ...(o.captions !== undefined
      ? { 'deepvision.task': 'captioning', 'deepvision.vocabulary': JSON.stringify(o.captions.vocabulary.toJSON()) }
      : { 'deepvision.classes': JSON.stringify(o.train.classNames) }),
    'deepvision.normalization': JSON.stringify(normalization),
    ...(best ? { 'deepvision.best': JSON.stringify(best) } : {}),
    ...(confusion ? { 'deepvision.best_confusion': JSON.stringify(confusion) } : {}),
    'deepvision.history': JSON.stringify(epochsSoFar),
  });
  const save = async (file: string, at: TrainingPosition) => {
    const contents: CheckpointContents = { position: at, tensors: download ? await download(tensors) : tensors, metadata: metadata() };
    await saveCheckpoint(file, contents);
  };

  // Training rows: images, or (image, caption) pairs of a captioner.
  const captionRows = o.captions?.train.encoded;
  const rowCount = captionRows?.count ?? o.train.count;
  const batchesPerEpoch = Math.ceil(rowCount / o.batchSize);
  const pipeline = frozen !== undefined ? undefined : new BatchPipeline({
    pixels: o.train.pixels, labels: o.train.labels, channels: o.train.channels, height: o.train.height, width: o.train.width,
    normalization, augment: o.augment ?? NO_AUGMENTATION, seed,
  }, o.workers ?? 0);
  const trainSample = sampleSize > 0 ? subset(o.train, sampleIndices) : undefined;
  const sampleFeatures = frozen !== undefined && sampleSize > 0 ? rowsOf(frozen.train, frozen.perImage, sampleIndices) : undefined;
  // The data input of the training and evaluation graphs: the images, or the backbone's cached features.
  const inputName = frozen !== undefined ? 'features' : 'input';
  const inputDims = frozen !== undefined ? frozen.split.perImage : [o.train.channels, o.train.height, o.train.width];
  const trainInputs = new Set(trainSession.inputNames);
  const evalParameters = graph.parameters.map((p) => p.name).filter((name) => evalSession.inputNames.includes(name));
  let confusion: number[][] | undefined = resumedConfusion;
  const noiseInputs = graph.model.graph.inputs.filter((v) => v.name.startsWith(DROPOUT_NOISE));
  let stopped: StopReason = 'completed';
  let sinceBest = 0;

  epochs: for (let epoch = position.epoch; epoch < o.epochs; epoch++) {
    const rng = new Rng(position.epochRng);
    const order = rng.shuffle([...Array(rowCount).keys()]);
    const nextEpochRng = rng.getState();
    const started = performance.now();
    const trainLoss = new Average(position.epochLoss?.sum, position.epochLoss?.count);
    /** Stops on a loss that is not finite, naming where it happened; checkpoints already written stay as they are. */
    const guard = (loss: number, where: string, step: number) => {
      if (Number.isFinite(loss)) return;
      throw new TrainingError(`the loss became ${loss} at epoch ${epoch + 1}, ${where} (learning rate ${learningRateAt(o.learningRate, step, o.schedule ?? { kind: 'constant' }, { warmupSteps: o.warmupSteps })}); training stopped. `
        + `Checkpoints already written are untouched (${fs.existsSync(lastCheckpoint) ? lastCheckpoint : 'none yet'}). Try a lower learning rate or --clip-grad-norm.`);
    };
    /** Brings the losses summed on the GPU into the epoch's mean (a no-op on the CPU, which reads each one). */
    const readLosses = async (lastBatch: number) => {
      if (lossSum === undefined || lossSum.updates === 0) return;
      const first = lastBatch - lossSum.updates + 2;
      const { sum, count } = await lossSum.read();
      guard(sum, first === lastBatch + 1 ? `batch ${first}` : `batches ${first}-${lastBatch + 1}`, position.step);
      trainLoss.add(sum / count, count);
    };
    let seen = 0;
    const imageOrder = captionRows === undefined ? order : order.map((row) => captionRows.image[row]!);
    const batches = pipeline !== undefined ? pipeline.epoch(imageOrder, o.batchSize, epoch, position.batch)
      : featureBatches(frozen!.train, o.train.labels, frozen!.perImage, imageOrder, o.batchSize, position.batch);
    for (let batch = position.batch; batch < batchesPerEpoch; batch++) {
      const assembled = (await batches.next()).value!;
      if (o.shouldStop?.()) {
        await readLosses(batch - 1);
        position = { ...position, epoch, batch, epochLoss: trainLoss.totals };
        await save(lastCheckpoint, position);
        stopped = 'interrupted';
        break epochs;
      }
      const n = assembled.count;
      const feeds: Record<string, ort.Tensor> = {
        [inputName]: new ort.Tensor('float32', assembled.input, [n, ...inputDims]),
        ...(captionRows === undefined ? { labels: new ort.Tensor('int64', assembled.labels, [n]) } : captionFeeds(captionRows, order.slice(batch * o.batchSize, batch * o.batchSize + n))),
      };
      for (const v of noiseInputs) {
        if (!trainInputs.has(v.name)) continue;
        // Dropout noise from a stream named after the update number: a resumed run draws the same masks.
        const rngNoise = Rng.derive(seed, `dropout/${position.step + 1}/${v.name}`);
        const dims = v.shape!.map((d, i) => (i === 0 ? n : Number(d)));
        feeds[v.name] = new ort.Tensor('float32', Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rngNoise.next()), dims);
      }
      const out = await trainingStep.gradients(tensors, feeds);
      const step = position.step + 1;
      if (lossSum === undefined) {
        const loss = (out.loss!.data as Float32Array)[0]!;
        guard(loss, `batch ${batch + 1}`, step);
        trainLoss.add(loss, n);
      } else {
        await lossSum.add(out.loss!, n);
        out.loss!.dispose();
      }
      const lr = learningRateAt(o.learningRate, step, o.schedule ?? { kind: 'constant' }, { warmupSteps: o.warmupSteps });
      await trainingStep.update(tensors, out, lr, step);
      position = { ...position, step, batch: batch + 1 };
      if (lossSum !== undefined && (lossSum.updates >= LOSS_READ_INTERVAL || batch + 1 === batchesPerEpoch)) await readLosses(batch);
      seen += n;
      o.onBatch?.({ epoch, batch, batches: batchesPerEpoch, loss: trainLoss.value, imagesPerSecond: seen / ((performance.now() - started) / 1000) });
      if (o.maxSteps !== undefined && step >= o.maxSteps) {
        await readLosses(batch);
        stopped = 'max-steps';
        position = { ...position, epoch, batch: batch + 1, epochLoss: trainLoss.totals };
        await save(lastCheckpoint, position);
        break epochs;
      }
    }
    const seconds = (performance.now() - started) / 1000;
    const val = o.captions !== undefined
      ? await evaluateCaptions(evalSession, evalParameters, download ? await download(tensors) : tensors, o.captions.val, {
        definition: o.definition, variant: o.variant, config: graph.config, vocabulary: o.captions.vocabulary, normalization, bleuImages: o.bleuImages,
        features: frozen && { values: frozen.val, perImage: frozen.split.perImage },
      })
      : await evaluate(evalSession, evalParameters, tensors, o.val, normalization, classes, frozen && { values: frozen.val, perImage: frozen.split.perImage });
    const onTrain = trainSample ? await evaluate(evalSession, evalParameters, tensors, trainSample, normalization, classes, sampleFeatures && { values: sampleFeatures, perImage: frozen!.split.perImage }) : undefined;
    const metrics: EpochMetrics = {
      epoch: epoch + 1, step: position.step, learningRate: learningRateAt(o.learningRate, Math.max(1, position.step), o.schedule ?? { kind: 'constant' }, { warmupSteps: o.warmupSteps }),
      trainLoss: trainLoss.value, valLoss: val.loss, valTop1: val.top1, valTop5: val.top5, seconds, imagesPerSecond: seen / seconds,
      ...(onTrain ? { trainEvalLoss: onTrain.loss, trainTop1: onTrain.top1 } : {}),
      ...('bleu' in val ? { valBleu: val.bleu } : {}),
    };
    history.push(metrics);
    epochsSoFar.push(metrics);
    const improved = best === undefined || metrics.valLoss < best.valLoss;
    if (improved) {
      best = metrics;
      confusion = 'confusion' in val ? val.confusion : undefined;
      sinceBest = 0;
    } else sinceBest++;
    position = { epoch: epoch + 1, batch: 0, step: position.step, epochRng: nextEpochRng };
    if (improved) await save(bestCheckpoint, position);
    await save(lastCheckpoint, position);
    // After the checkpoint: a kill before this line leaves a log one epoch short, which the resume rewrites.
    writeFileAtomic(metricsFile, epochsSoFar.map((m) => `${JSON.stringify(m)}\n`).join(''));
    o.onEpoch?.(metrics);
    if (o.patience !== undefined && sinceBest >= o.patience && epoch + 1 < o.epochs) {
      stopped = 'early-stopping';
      break;
    }
  }
  await Promise.all([trainSession.release(), optimizerSession.release(), evalSession.release(), download?.release(), lossSum?.release(), pipeline?.close()]);
  const result = { history, best, stopped, lastCheckpoint, bestCheckpoint, normalization, confusion, tensors };
  await o.beforeSummary?.(result);
  // Last, once checkpoints, metrics and artifacts are on disk: the sweep counts a run whose summary is not
  // 'interrupted' as done.
  writeRunSummary(o.outDir, summarizeRun(o, result));
  return result;
}

/** Loss, top-1 and top-5 accuracy of the current parameters on a data set (eval mode). */
export async function evaluate(
  session: ort.InferenceSession, parameterNames: string[], tensors: Map<string, ort.Tensor>, data: ImageDataset, normalization: Normalization, classes: number,
  features?: CachedFeatures,
): Promise<{ loss: number; top1: number; top5: number; confusion: number[][] }> {
  const batchSize = 256;
  const batch = new InputBatch(data, normalization, batchSize, features);
  const labels = batch.labels;
  const loss = new Average();
  let top1 = 0;
  let top5 = 0;
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let start = 0; start < data.count; start += batchSize) {
    const n = Math.min(batchSize, data.count - start);
    const feeds: Record<string, ort.Tensor> = {
      [batch.name]: batch.fill(Array.from({ length: n }, (_, i) => start + i)),
      labels: new ort.Tensor('int64', labels.subarray(0, n), [n]),
    };
    for (const name of parameterNames) feeds[name] = tensors.get(name)!;
    const out = await session.run(feeds);
    const logits = out.logits!.data as Float32Array;
    loss.add((out.loss!.data as Float32Array)[0]!, n);
    top1 += topKCorrect(logits, labels.subarray(0, n), classes, 1);
    top5 += topKCorrect(logits, labels.subarray(0, n), classes, Math.min(5, classes));
    for (let i = 0; i < n; i++) {
      let predicted = 0;
      for (let k = 1; k < classes; k++) if (logits[i * classes + k]! > logits[i * classes + predicted]!) predicted = k;
      confusion[Number(labels[i])]![predicted]!++;
    }
  }
  return { loss: loss.value, top1: top1 / data.count, top5: top5 / data.count, confusion };
}

/**
 * On WebGPU, how many updates pass between reads of the loss (each read waits for the GPU to drain): the NaN guard
 * stops at most this many updates after the loss goes bad, and the progress bar's loss moves in steps of it.
 */
const LOSS_READ_INTERVAL = 10;

/**
 * A session of Identity nodes that brings GPU-resident state back to the host (for checkpoints): onnxruntime-node
 * 1.30 aborts the process when getData() downloads a WebGPU tensor, while outputs placed on the CPU work.
 */
async function hostCopier(
  names: string[], shapeOf: (name: string) => readonly number[], options: ort.InferenceSession.SessionOptions,
): Promise<((tensors: Map<string, ort.Tensor>) => Promise<Map<string, ort.Tensor>>) & { release(): Promise<void> }> {
  const b = new GraphBuilder('download');
  const safe = (name: string) => `t${names.indexOf(name)}`;
  for (const name of names) b.output(`${safe(name)}_host`, b.run(() => F.identity(b.input(safe(name), 'float32', shapeOf(name)))));
  const session = await ort.InferenceSession.create(encodeModel(b.toModel()), { ...options, preferredOutputLocation: 'cpu' });
  const copy = async (tensors: Map<string, ort.Tensor>) => {
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of names) feeds[safe(name)] = tensors.get(name)!;
    const out = await session.run(feeds);
    return new Map(names.map((name) => [name, out[`${safe(name)}_host`]!]));
  };
  return Object.assign(copy, { release: () => session.release() });
}

/**
 * The model's config as the data sets it: numClasses follows the data's classes and imageSize its image size.
 * A value the user set that disagrees with the data is refused rather than silently replaced.
 */
function configForData(o: TrainOptions): Record<string, ConfigValue> {
  const config = { ...o.config };
  const follow = (key: string, value: number, what: string) => {
    if (!(key in o.definition.defaults)) return;
    if (config[key] !== undefined && config[key] !== value) {
      throw new TrainingError(`--set ${key}=${String(config[key])} disagrees with the data: ${o.train.name} has ${what}; leave ${key} out (it follows the data)`);
    }
    config[key] = value;
  };
  if (o.captions !== undefined) {
    follow('vocabularySize', o.captions.vocabulary.size, `a vocabulary of ${o.captions.vocabulary.size} words`);
    follow('maxLength', o.captions.train.encoded.length - 1, `captions of up to ${o.captions.train.encoded.length - 1} tokens fed`);
  } else follow('numClasses', o.train.classNames.length, `${o.train.classNames.length} classes`);
  follow('imageSize', o.train.height, `${o.train.height}x${o.train.width} images`);
  return config;
}

/** The training and evaluation graphs; a model that cannot be built with this config is the user's error to see. */
function buildGraphs(o: TrainOptions, config: Record<string, ConfigValue>, seed: number) {
  try {
    return {
      graph: buildTrainingGraph(o.definition, { variant: o.variant, config, seed, labelSmoothing: o.labelSmoothing }),
      evalGraph: buildEvalGraph(o.definition, { variant: o.variant, config, seed }),
    };
  } catch (err) {
    if (isUserFacing(err)) throw err;
    const message = (err as Error).message.split('\n')[0];
    throw new TrainingError(`cannot build model '${o.definition.name}' with config ${JSON.stringify(config)}: ${message}`);
  }
}

/** Refuses a model whose input or logits do not fit the data (it would train to a meaningless accuracy, or crash mid-run). */
function checkModelFitsData(o: TrainOptions, evalModel: Model): void {
  if (o.captions !== undefined) {
    const logits = evalModel.graph.outputs.find((v) => v.name === 'logits')?.shape;
    const size = o.captions.vocabulary.size;
    if (logits?.length !== 3 || logits[2] !== size) throw new TrainingError(`captioner '${o.definition.name}' must output logits [batch, length, ${size}] for a vocabulary of ${size} words; it outputs [${logits?.join(', ') ?? '?'}]`);
    return;
  }
  if (o.definition.task === 'captioning') throw new TrainingError(`model '${o.definition.name}' is a captioner: train it on caption data (shapes, Flickr8k, COCO)`);
  const classes = o.train.classNames.length;
  const logits = evalModel.graph.outputs.find((v) => v.name === 'logits')?.shape;
  const outputs = logits?.[logits.length - 1];
  if (logits === undefined || logits.length !== 2 || typeof outputs !== 'number') {
    throw new TrainingError(`model '${o.definition.name}' must output logits [batch, classes]; it outputs [${logits?.join(', ') ?? '?'}]`);
  }
  if (outputs !== classes) {
    throw new TrainingError(`model '${o.definition.name}' has ${outputs} outputs, but ${o.train.name} has ${classes} classes: set the model's number of outputs to ${classes} (e.g. a numClasses config key)`);
  }
  const input = evalModel.graph.inputs.find((v) => v.name === 'input')?.shape;
  const data = [o.train.channels, o.train.height, o.train.width];
  if (input !== undefined && input.slice(1).some((d, i) => typeof d === 'number' && d !== data[i])) {
    throw new TrainingError(`model '${o.definition.name}' takes input [${input.join(', ')}], but the images are [batch, ${data.join(', ')}]: set the model's image size (or --image-size) to match`);
  }
}

/**
 * The cut of a model whose first part trains nothing (a frozen backbone), with that part's features for the
 * training and validation images; undefined when there is no such part, or when augmentation changes the images
 * every epoch (features then cannot be cached).
 */
async function frozenFeaturesFor(
  o: TrainOptions, graph: TrainingGraph, evalModel: Model, normalization: Normalization, sessionOptions: ort.InferenceSession.SessionOptions,
) {
  if (o.cacheFeatures === false) return undefined;
  const frozenInputs = new Set(graph.parameters.filter((p) => !graph.trainable.includes(p.name)).map((p) => p.name));
  const split = findFrozenSplit(graph.model, frozenInputs);
  const evalSplit = split && findFrozenSplit(evalModel, frozenInputs);
  if (split === undefined || evalSplit === undefined || split.perImage.join() !== evalSplit.perImage.join()) return undefined;
  if (describeAugmentation(o.augment ?? NO_AUGMENTATION) !== 'none') {
    o.onNotice?.('note: augmentation is on, so the frozen backbone runs on every batch (its features cannot be cached)');
    return undefined;
  }
  const extractor = featureModel(evalModel, evalSplit, graph.values);
  const [train, val] = await computeFeatures(extractor, evalSplit, [o.train, o.val], {
    normalization, cacheDir: o.cacheDir, onProgress: o.onFeatures,
    sessionOptions: { ...sessionOptions, executionProviders: (o.executionProviders ?? ['cpu']).filter((p) => p !== 'webgpu') },
  });
  return {
    split, perImage: split.perImage.reduce((a, b) => a * b, 1), train: train!, val: val!,
    trainModel: withFeaturesInput(graph.model, split), evalModel: withFeaturesInput(evalModel, evalSplit),
  };
}

/** A parameter's learning rate relative to the base rate, from the longest prefix of `learningRates` it matches. */
function learningRateScale(o: TrainOptions, name: string): number | undefined {
  const prefix = Object.keys(o.learningRates ?? {}).filter((p) => name.startsWith(p)).sort((a, b) => b.length - a.length)[0];
  return prefix === undefined ? undefined : o.learningRates![prefix]! / o.learningRate;
}

/** The rows `indices` of a [count x perImage] matrix. */
function rowsOf(values: Float32Array, perImage: number, indices: readonly number[]): Float32Array {
  const out = new Float32Array(indices.length * perImage);
  indices.forEach((k, i) => out.set(values.subarray(k * perImage, (k + 1) * perImage), i * perImage));
  return out;
}

/** The normalization the model definition asks for, checked against the data's channels. */
function modelNormalization(o: TrainOptions, config: Record<string, ConfigValue>): Normalization | undefined {
  const n = o.definition.normalization?.(config as never);
  if (n === undefined) return undefined;
  const channels = o.train.channels;
  if (n.mean.length !== channels || n.std.length !== channels || !n.std.every((s) => s > 0) || ![...n.mean, ...n.std].every(Number.isFinite)) {
    throw new TrainingError(`model '${o.definition.name}' asks for normalization ${JSON.stringify(n)}, which does not fit ${channels}-channel images`);
  }
  return { mean: [...n.mean], std: [...n.std] };
}

/** Refuses an output folder that is a file; removes temporary files a killed run left there. */
function prepareOutputFolder(dir: string): void {
  if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) throw new TrainingError(`--out ${dir} is a file, not a folder`);
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new TrainingError(describeWriteFailure(err, dir));
  }
  removeStaleTempFiles(dir);
}

/**
 * The epochs a checkpoint has trained: recorded in it (deepvision.history), or for checkpoints written before that
 * key, the metrics.jsonl beside it up to the checkpoint's epoch (the last line per epoch wins).
 */
function historyOf(checkpoint: string, metadata: Record<string, string>, epochs: number): EpochMetrics[] {
  const recorded = metadata['deepvision.history'];
  if (recorded !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(recorded);
    } catch {
      parsed = undefined;
    }
    if (!Array.isArray(parsed) || !parsed.every((m) => typeof m === 'object' && m !== null && Number.isInteger((m as EpochMetrics).epoch))) {
      throw new TrainingError(`${checkpoint}: checkpoint metadata 'deepvision.history' is invalid`);
    }
    return (parsed as EpochMetrics[]).filter((m) => m.epoch <= epochs);
  }
  const byEpoch = new Map<number, EpochMetrics>();
  try {
    for (const line of fs.readFileSync(path.join(path.dirname(checkpoint), 'metrics.jsonl'), 'utf8').split('\n')) {
      try {
        const m = JSON.parse(line) as EpochMetrics;
        if (Number.isInteger(m.epoch) && m.epoch <= epochs) byEpoch.set(m.epoch, m);
      } catch {
        // A torn or foreign line: the checkpoint is what counts.
      }
    }
  } catch {
    // No log beside the checkpoint: the history starts here.
  }
  return [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch);
}

/**
 * On a resume into another folder, the best checkpoint so far lives beside the resumed one: copy it, so that the
 * new folder is complete (its best.safetensors is what artifacts and export read). Without it the best is tracked
 * afresh from the resumed epoch on.
 */
function carryBestCheckpoint(resume: string, bestCheckpoint: string, best: EpochMetrics): EpochMetrics | undefined {
  const source = path.join(path.dirname(resume), 'best.safetensors');
  if (!fs.existsSync(source)) return undefined;
  if (!fs.existsSync(bestCheckpoint) || fs.realpathSync(source) !== fs.realpathSync(bestCheckpoint)) writeFileAtomic(bestCheckpoint, fs.readFileSync(source));
  return best;
}

/** The images at `indices` as a data set of their own (shares nothing with the original). */
function subset(data: ImageDataset, indices: number[]): ImageDataset {
  const { pixels, labels } = selectImages(data.pixels, data.labels, data.channels * data.height * data.width, indices);
  return { ...data, name: `${data.name} (sample)`, count: indices.length, pixels, labels, captions: undefined };
}
