import { channelStatistics, Normalization } from '../data/dataset';
import type { Model } from '../ir/model';
import type { ConfigValue } from '../model/definition';
import { buildEvalGraph, buildTrainingGraph, TrainingGraph } from '../model/training-graph';
import { buildOptimizerGraph, OptimizerGraph, ParameterSpec } from '../optim/optimizer-graph';
import { isUserFacing } from '../util/user-error';
import type { DataOptions, ModelOptions, OptimizationOptions } from './options';
import { TrainingError } from './training-error';

/** The trainer options this part reads. */
type Options = DataOptions & ModelOptions & OptimizationOptions;

/** The model a run trains, built for its data: the graphs, the optimizer and the input normalization. */
export interface ModelForData {
  graph: TrainingGraph;
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
  const config = configForData(o);
  const { graph, evalGraph } = buildGraphs(o, config, seed);
  checkModelFitsData(o, evalGraph.model);
  const paramSpecs = graph.trainableSpecs.map((p) => ({ ...p, lrScale: learningRateScale(o, p.name) }));
  const optimizer = buildOptimizerGraph(paramSpecs, o.optimizer, { clipGradNorm: o.clipGradNorm });
  const normalization = modelNormalization(o, graph.config) ?? channelStatistics(o.train);
  return { graph, evalModel: evalGraph.model, paramSpecs, optimizer, normalization };
}

/**
 * The model's config as the data sets it: numClasses follows the data's classes and imageSize its image size.
 * A value the user set that disagrees with the data is refused rather than silently replaced.
 */
function configForData(o: Options): Record<string, ConfigValue> {
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
function buildGraphs(o: Options, config: Record<string, ConfigValue>, seed: number) {
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
function checkModelFitsData(o: Options, evalModel: Model): void {
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
