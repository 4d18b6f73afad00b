import type { DType } from '../ir/dtype';
import type { Shape } from '../ir/shape';
import type { Tensor } from '../dsl/builder';
import type { Module } from '../nn/module';
import type { TaskKind } from './task-kind';

export type ConfigValue = number | string | boolean;
export type Config = Record<string, ConfigValue>;

export interface InputSpec {
  name: string;
  dtype?: DType;
  /** Dims may be names (`batch`) for sizes chosen at run time. */
  shape: Shape;
}

/**
 * What a graph file exports (as its default export): a named, configurable model. `create` makes the module
 * tree; `inputs` says what the graph takes. Variants are named sets of config overrides (`dropout`).
 */
export interface ModelDefinition<C extends Config = Config> {
  name: string;
  description?: string;
  defaults: C;
  variants?: Record<string, Partial<C>>;
  inputs(config: C): InputSpec[];
  create(config: C): Module;
  /** Names of the outputs, in the order forward returns them (default ['logits']). */
  outputs?: string[];
  /**
   * What the model learns. 'classification' (default): forward returns logits [N, classes], trained against
   * `labels`. 'captioning': forward takes the images and the caption tokens so far (teacher forcing, input
   * `captions` [N, T]) and returns logits [N, T, vocabulary], trained against `targets` [N, T] where `mask` is 1.
   */
  task?: TaskKind;
  /**
   * Other graphs of the same model, sharing its parameters by name: a captioner's `encoder` (image -> features)
   * and `step` (one decoder step, for greedy and beam search). Each is built on its own with `buildEntryPoint`.
   */
  entryPoints?: Record<string, EntryPoint<C>>;
  /**
   * The input normalization the model expects, per channel on pixel values in [0, 1] (a pretrained backbone's,
   * such as ImageNet's mean and std). Default: the training data's own channel statistics. Training, `predict`
   * and the web page all apply the one recorded with the trained model.
   */
  normalization?(config: C): { mean: number[]; std: number[] } | undefined;
}

/** A graph of a model other than its forward pass: its inputs, how to compute its outputs from the module tree, their names. */
export interface EntryPoint<C extends Config = Config> {
  inputs(config: C): InputSpec[];
  /** The outputs' names, in the order `run` returns them: a list, or a function of the configuration. */
  outputs: string[] | OutputNames<C>;
  run(model: Module, ...inputs: Tensor[]): Tensor[];
}

/** Method syntax keeps the parameter bivariant, as `inputs` is: a model's entry points fit ModelDefinition<Config>. */
type OutputNames<C> = { names(config: C): string[] }['names'];

export function defineModel<C extends Config>(definition: ModelDefinition<C>): ModelDefinition<C> {
  if (!/^[A-Za-z][\w-]*$/.test(definition.name)) throw new Error(`model name '${definition.name}' must be a word (letters, digits, - and _)`);
  return definition;
}

/** Duck-typed check for a graph file's export (the file may have loaded another copy of this module). */
export function isModelDefinition(value: unknown): value is ModelDefinition {
  const v = value as Partial<ModelDefinition> | null | undefined;
  return typeof v === 'object' && v !== null && typeof v.name === 'string' && typeof v.create === 'function'
    && typeof v.inputs === 'function' && typeof v.defaults === 'object';
}

/**
 * The config a build uses: defaults, then the variant's overrides, then explicit ones. Unknown keys and values of
 * the wrong type are errors that list what is allowed.
 */
export function resolveConfig<C extends Config>(definition: ModelDefinition<C>, variant?: string, overrides: Record<string, ConfigValue> = {}): C {
  const config: Config = { ...definition.defaults };
  if (variant !== undefined) {
    const v = definition.variants?.[variant];
    if (v === undefined) {
      const known = Object.keys(definition.variants ?? {});
      throw new Error(`model '${definition.name}' has no variant '${variant}' (${known.length ? `variants: ${known.join(', ')}` : 'it has no variants'})`);
    }
    Object.assign(config, v);
  }
  for (const [key, value] of Object.entries(overrides)) {
    if (!(key in definition.defaults)) {
      throw new Error(`model '${definition.name}' has no config key '${key}' (keys: ${Object.keys(definition.defaults).join(', ')})`);
    }
    const expected = typeof definition.defaults[key];
    if (typeof value !== expected) throw new Error(`config '${key}' must be a ${expected}, got ${JSON.stringify(value)}`);
    config[key] = value;
  }
  return config as C;
}

/** Parses `key=value` from the command line, typed after the default of that key. */
export function parseConfigAssignment(definition: ModelDefinition, assignment: string): [string, ConfigValue] {
  const eq = assignment.indexOf('=');
  if (eq <= 0) throw new Error(`expected key=value, got '${assignment}'`);
  const key = assignment.slice(0, eq).trim();
  const raw = assignment.slice(eq + 1).trim();
  if (!(key in definition.defaults)) {
    throw new Error(`model '${definition.name}' has no config key '${key}' (keys: ${Object.keys(definition.defaults).join(', ')})`);
  }
  const expected = typeof definition.defaults[key];
  if (expected === 'number') {
    const n = Number(raw);
    if (raw === '' || !Number.isFinite(n)) throw new Error(`config '${key}' must be a number, got '${raw}'`);
    return [key, n];
  }
  if (expected === 'boolean') {
    if (raw !== 'true' && raw !== 'false') throw new Error(`config '${key}' must be true or false, got '${raw}'`);
    return [key, raw === 'true'];
  }
  return [key, raw];
}
