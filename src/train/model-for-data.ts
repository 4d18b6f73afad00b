import { channelStatistics, Normalization } from '../data/dataset';
import type { Model } from '../ir/model';
import type { ConfigValue } from '../model/definition';
import { buildEvalGraph, buildTrainingGraph, TrainingGraph, TrainingGraphOptions } from '../model/training-graph';
import { buildOptimizerGraph, OptimizerGraph, ParameterSpec } from '../optim/optimizer-graph';
import { isUserFacing } from '../util/user-error';
import type { DataOptions, ModelOptions, OptimizationOptions } from './options';
import { trainingTask } from './tasks';
import type { Task } from './tasks/task';
import { TrainingError } from './training-error';

/** The trainer options this part reads. */
type Options = DataOptions & ModelOptions & OptimizationOptions;

/** The model a run trains, built for its data: its task, the graphs, the optimizer and the input normalization. */
export interface ModelForData {
  /** What the model learns (its definition's task): how the trainer feeds, evaluates and records it. */
  task: Task;
  graph: TrainingGraph;
  /** The training graph again, built with the gradient of one more forward value (the native stem's cut). */
  trainingGraphWith(gradientOf: TrainingGraphOptions['gradientOf']): TrainingGraph;
  evalModel: Model;
  /** The trainable parameters, each with its learning rate relative to the base rate. */
  paramSpecs: ParameterSpec[];
  optimizer: OptimizerGraph;
  normalization: Normalization;
}

/**
 * Builds the training, evaluation and optimizer graphs with the config the data sets, refusing a model that does
 * not fit the data; the normalization is the model's own, else the training images' channel statistics.
 */
export function modelForData(o: Options, seed: number): ModelForData {
  const task = trainingTask(o);
  const config = configForData(o, task);
  const { graph, evalGraph } = buildGraphs(o, config, seed);
  task.checkModel(o, evalGraph.model);
  const paramSpecs = graph.trainableSpecs.map((p) => ({ ...p, lrScale: learningRateScale(o, p.name) }));
  const optimizer = buildOptimizerGraph(paramSpecs, o.optimizer, { clipGradNorm: o.clipGradNorm });
  const normalization = modelNormalization(o, graph.config) ?? channelStatistics(o.train);
  const trainingGraphWith = (gradientOf: TrainingGraphOptions['gradientOf']) => buildTrainingGraph(o.definition, { ...trainingOptions(o, config, seed), gradientOf });
  return { task, graph, trainingGraphWith, evalModel: evalGraph.model, paramSpecs, optimizer, normalization };
}

/**
 * The model's config as the data sets it: the task's keys (numClasses follows the data's classes, a captioner's
 * vocabularySize its vocabulary) and imageSize its image size. A value the user set that disagrees with the data is
 * refused rather than silently replaced.
 */
function configForData(o: Options, task: Task): Record<string, ConfigValue> {
  const config = { ...o.config };
  const follow = (key: string, value: number, what: string) => {
    if (!(key in o.definition.defaults)) return;
    if (config[key] !== undefined && config[key] !== value) {
      throw new TrainingError(`--set ${key}=${String(config[key])} disagrees with the data: ${o.train.name} has ${what}; leave ${key} out (it follows the data)`);
    }
    config[key] = value;
  };
  for (const k of task.dataConfig(o)) follow(k.key, k.value, k.what);
  follow('imageSize', o.train.height, `${o.train.height}x${o.train.width} images`);
  return config;
}

function trainingOptions(o: Options, config: Record<string, ConfigValue>, seed: number): TrainingGraphOptions {
  return { variant: o.variant, config, seed, labelSmoothing: o.labelSmoothing };
}

/** The training and evaluation graphs; a model that cannot be built with this config is the user's error to see. */
function buildGraphs(o: Options, config: Record<string, ConfigValue>, seed: number) {
  try {
    return {
      graph: buildTrainingGraph(o.definition, trainingOptions(o, config, seed)),
      evalGraph: buildEvalGraph(o.definition, { variant: o.variant, config, seed }),
    };
  } catch (err) {
    if (isUserFacing(err)) throw err;
    const message = (err as Error).message.split('\n')[0];
    throw new TrainingError(`cannot build model '${o.definition.name}' with config ${JSON.stringify(config)}: ${message}`);
  }
}

/** A parameter's learning rate relative to the base rate, from the longest prefix of `learningRates` it matches. */
function learningRateScale(o: Options, name: string): number | undefined {
  const rates = o.learningRates ?? {};
  const prefix = Object.keys(rates).filter((p) => name.startsWith(p)).sort((a, b) => b.length - a.length)[0];
  return prefix === undefined ? undefined : rates[prefix]! / o.learningRate;
}

/** The normalization the model definition asks for, checked against the data's channels. */
function modelNormalization(o: Options, config: Record<string, ConfigValue>): Normalization | undefined {
  const n = o.definition.normalization?.(config as never);
  if (n === undefined) return undefined;
  const channels = o.train.channels;
  if (n.mean.length !== channels || n.std.length !== channels || !n.std.every((s) => s > 0) || ![...n.mean, ...n.std].every(Number.isFinite)) {
    throw new TrainingError(`model '${o.definition.name}' asks for normalization ${JSON.stringify(n)}, which does not fit ${channels}-channel images`);
  }
  return { mean: [...n.mean], std: [...n.std] };
}
