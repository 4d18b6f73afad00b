import * as os from 'node:os';
import * as ort from 'onnxruntime-node';
import { checkpointClasses, checkpointConfig, checkpointImageSize, checkpointNormalization, checkTensorsMatch } from '../../checkpoint/checkpoint';
import { GENERATED_DATA, isGeneratedData } from '../../data/kinds';
import { loadData } from '../../data/registry';
import { buildEvalGraph } from '../../model/training-graph';
import { encodeModel } from '../../onnx/write';
import { classNamesDifference } from '../../train/class-names';
import { evaluate } from '../../train/trainer';
import { isUserFacing, UserError } from '../errors';
import type { CliTask } from './task';

/** A classifier on the command line: images with labels; eval reports loss, top-1 and top-5. */
export const CLASSIFICATION_CLI: CliTask = {
  applyTrainDefaults: () => undefined,

  loadTrainingData: async (source, request) => ({ ...await loadData(source, request), captions: undefined }),

  describeTrainingData: (modelName, source, { train, val }) => `Training ${modelName} on ${source} (${train.count} train / ${val.count} validation images, ${train.height}x${train.width}, ${train.classNames.length} classes)`,

  formatEpoch(m) {
    const trainTop1 = m.trainTop1 === undefined ? '' : ` top-1 ${(100 * m.trainTop1).toFixed(2)} %`;
    return `epoch ${m.epoch}: train loss ${m.trainLoss.toFixed(4)}${trainTop1} | val loss ${m.valLoss.toFixed(4)} top-1 ${(100 * m.valTop1).toFixed(2)} % top-5 ${(100 * m.valTop5).toFixed(2)} % | ${m.imagesPerSecond.toFixed(0)} img/s, ${m.seconds.toFixed(1)} s`;
  },

  async evaluateCheckpoint(file, checkpoint, definition, f) {
    const meta = checkpoint.metadata;
    const config = checkpointConfig(meta, file);
    const seed = f.seed ?? recordedNumber(meta, file, 'deepvision.seed', (n) => Number.isSafeInteger(n) && n >= 0) ?? 0;
    const valFraction = f.valFraction ?? recordedNumber(meta, file, 'deepvision.val_fraction', (n) => n > 0 && n < 1);
    const imageSize = checkpointImageSize(meta, file) ?? (typeof config.imageSize === 'number' ? config.imageSize : 32);
    const normalization = checkpointNormalization(meta, file);
    if (!normalization) throw new UserError(`${file} does not record its input normalization`);
    const dataName = f.data ?? meta['deepvision.data'] ?? GENERATED_DATA;
    let val;
    try {
      ({ val } = await loadData(dataName, {
        trainSize: isGeneratedData(dataName) ? 1 : undefined, valSize: f.valSize, imageSize, seed, valFraction, onNotice: (m) => console.warn(m),
      }));
    } catch (err) {
      if (isUserFacing(err)) throw err;
      throw new UserError((err as Error).message);
    }
    // Label k must mean the same class in the model and the data, or the accuracy scores the wrong labels.
    const trainedOn = checkpointClasses(meta, file);
    const difference = trainedOn && classNamesDifference(trainedOn, val.classNames);
    if (difference) throw new UserError(`${file} was trained on other classes than ${dataName} has: ${difference}`);
    let model;
    try {
      ({ model } = buildEvalGraph(definition, { variant: meta['deepvision.variant'], config }));
    } catch (err) {
      if (isUserFacing(err)) throw err;
      throw new UserError(`cannot build model '${definition.name}' with the config ${file} records: ${(err as Error).message.split('\n')[0]}`);
    }
    const classes = model.graph.outputs.find((v) => v.name === 'logits')?.shape?.[1];
    if (classes !== val.classNames.length) throw new UserError(`${file}: the model has ${String(classes)} outputs, but ${dataName} has ${val.classNames.length} classes`);
    const expected = new Map(model.graph.inputs.filter((v) => v.name !== 'input' && v.name !== 'labels').map((v) => [v.name, v.shape!.map(Number)] as const));
    checkTensorsMatch(file, checkpoint.tensors, expected, `model ${definition.name}`);
    const session = await ort.InferenceSession.create(encodeModel(model), { graphOptimizationLevel: 'extended', intraOpNumThreads: os.availableParallelism() });
    const names = [...expected.keys()];
    const flip = f.tta === 'hflip';
    const r = await evaluate(session, names, checkpoint.tensors, val, normalization, val.classNames.length, undefined, { flip });
    await session.release();
    return `${definition.name} on ${dataName} validation (${val.count} images${flip ? ', each also mirrored: softmax averaged' : ''}): loss ${r.loss.toFixed(4)}, top-1 ${(100 * r.top1).toFixed(2)} %, top-5 ${(100 * r.top5).toFixed(2)} %`;
  },
};

/** A number the checkpoint's metadata records under `key`, checked; undefined when absent. */
function recordedNumber(meta: Record<string, string>, file: string, key: string, ok: (n: number) => boolean): number | undefined {
  const raw = meta[key];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || !ok(n)) throw new UserError(`${file}: checkpoint metadata '${key}' is invalid (${JSON.stringify(raw.slice(0, 40))})`);
  return n;
}
