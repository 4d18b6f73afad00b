import { BuildMode, GraphBuilder, ModuleCall } from '../dsl/builder';
import { Tensor } from '../dsl/builder';
import type { Model } from '../ir/model';
import { TensorData } from '../ir/tensor';
import { Buffer, Parameter } from '../nn/parameter';
import { eliminateDeadNodes } from '../passes/eliminate-dead-nodes';
import { fuseReluMask } from '../passes/fuse-relu-mask';
import { mergeGemmSums } from '../passes/merge-gemm-sums';
import { lowerBatchNormTraining } from '../passes/lower-batchnorm-training';
import { Rng } from '../util/rng';
import { Config, ConfigValue, EntryPoint, ModelDefinition, resolveConfig } from './definition';

export interface BuildOptions {
  variant?: string;
  config?: Record<string, ConfigValue>;
  /** 'eval' (default) for inference graphs; 'train' runs dropout and batch statistics. */
  mode?: BuildMode;
  /** Seed of the parameter initialization; each parameter draws from its own stream named after it. */
  seed?: number;
  /** Parameters stored in the model (inference) or taken as graph inputs after the data inputs (training). */
  parameters?: 'initializers' | 'inputs';
}

export interface ParameterInfo {
  name: string;
  shape: readonly number[];
  size: number;
  trainable: boolean;
  /** Buffers are state (running statistics), not parameters. */
  buffer: boolean;
  init: string;
}

export interface BuiltModel {
  model: Model;
  definition: ModelDefinition;
  config: Config;
  variant: string | undefined;
  mode: BuildMode;
  seed: number;
  summary: ModuleCall[];
  /** What modules changed while building (an imported model's quantization removed, say). */
  notes: string[];
  parameters: ParameterInfo[];
  /** Initial values of parameters and buffers by name. */
  values: Map<string, TensorData>;
  /** State tensors a training graph updates, by buffer name, with the graph output that holds the new value. */
  stateOutputs: Map<string, string>;
}

/** A model's forward pass traced into a builder, before outputs are chosen. */
export interface Trace {
  builder: GraphBuilder;
  config: Config;
  mode: BuildMode;
  seed: number;
  outputs: Tensor[];
  parameters: ParameterInfo[];
  values: Map<string, TensorData>;
  /** The graph tensor standing for each parameter and buffer, by name. */
  tensors: Map<string, Tensor>;
  /** The model's data inputs, then those added by `extraInputs`. */
  inputs: Tensor[];
  extraInputs: Tensor[];
}

/**
 * Runs a definition's forward pass into a new graph: names the module tree, initializes parameters (each from
 * its own seeded stream), and binds them as initializers or graph inputs. `extraInputs` adds data inputs (such as
 * labels) after the model's own, before the parameters.
 */
export function traceModel(
  definition: ModelDefinition, options: BuildOptions = {}, extraInputs?: (b: GraphBuilder, inputs: Tensor[]) => Tensor[],
  entryPoint?: EntryPoint,
): Trace {
  const config = resolveConfig(definition, options.variant, options.config);
  const mode = options.mode ?? 'eval';
  const seed = options.seed ?? 0;
  const root = definition.create(config);
  root.assignNames();
  const builder = new GraphBuilder(definition.name, mode);
  const inputs = (entryPoint ?? definition).inputs(config).map((spec) => builder.input(spec.name, spec.dtype ?? 'float32', spec.shape));
  const extra = extraInputs?.(builder, inputs) ?? [];

  const parameters: ParameterInfo[] = [];
  const values = new Map<string, TensorData>();
  const tensors = new Map<string, Tensor>();
  // Parameters first, then buffers: the order of a training graph's inputs.
  for (const [name, p] of [...root.namedParameters(), ...root.namedBuffers()]) {
    const data = initialValue(p, seed);
    values.set(name, data);
    const tensor = options.parameters === 'inputs' ? builder.input(name, p.dtype, p.shape) : builder.initializer(name, data);
    builder.bind(p, tensor);
    tensors.set(name, tensor);
    parameters.push({ name, shape: p.shape, size: p.size, trainable: p.trainable, buffer: p instanceof Buffer, init: p.init.describe });
  }

  const result = builder.run(() => (entryPoint ? entryPoint.run(root, ...inputs) : root.forward(...inputs)));
  const outputs = result instanceof Tensor ? [result] : Array.isArray(result) ? result : undefined;
  if (outputs === undefined || !outputs.every((t) => t instanceof Tensor)) {
    throw new Error(`model '${definition.name}': forward must return a tensor or an array of tensors`);
  }
  return { builder, config, mode, seed, outputs, parameters, values, tensors, inputs, extraInputs: extra };
}

/**
 * One of a model's entry points (a captioner's encoder or decoder step) as an inference graph, its parameters
 * initializers with `values` where given (trained ones from a checkpoint), else their initial values. `mode`
 * 'train' (batch statistics; no dropout noise may be asked for) lets a check compare it with a training graph.
 */
export function buildEntryPoint(
  definition: ModelDefinition, name: string, options: Omit<BuildOptions, 'parameters'> & { values?: ReadonlyMap<string, TensorData> } = {},
): Model {
  const entry = definition.entryPoints?.[name];
  if (entry === undefined) throw new Error(`model '${definition.name}' has no entry point '${name}' (it has: ${Object.keys(definition.entryPoints ?? {}).join(', ') || 'none'})`);
  const trace = traceModel(definition, { ...options, mode: options.mode ?? 'eval', parameters: 'initializers' }, undefined, entry);
  const { builder, outputs } = trace;
  const names = typeof entry.outputs === 'function' ? entry.outputs(trace.config) : entry.outputs;
  if (outputs.length !== names.length) throw new Error(`entry point '${name}' of model '${definition.name}' names ${names.length} outputs but returned ${outputs.length}`);
  for (const [param, data] of options.values ?? []) {
    if (builder.graph.initializers.has(param)) builder.graph.initializers.set(param, data);
  }
  outputs.forEach((t, i) => builder.output(names[i]!, t));
  finishGraph(builder);
  return builder.toModel({ docString: `${definition.description ?? definition.name} (${name})`, metadata: modelMetadata(definition, trace, options, { 'deepvision.graph': name }) });
}

/** Metadata every deepvision model carries, so that any ONNX tool can tell what it is. */
export function modelMetadata(definition: ModelDefinition, trace: Trace, options: BuildOptions, extra: Record<string, string> = {}): Record<string, string> {
  return {
    'deepvision.model': definition.name,
    ...(options.variant ? { 'deepvision.variant': options.variant } : {}),
    'deepvision.config': JSON.stringify(trace.config),
    'deepvision.mode': trace.mode,
    'deepvision.seed': String(trace.seed),
    ...extra,
  };
}

/** Builds a model definition into an ONNX graph whose outputs are the model's outputs (and, in train mode, its new state). */
export function buildModel(definition: ModelDefinition, options: BuildOptions = {}): BuiltModel {
  const trace = traceModel(definition, options);
  const { builder, outputs } = trace;
  const names = definition.outputs ?? (outputs.length === 1 ? ['logits'] : outputs.map((_, i) => `output_${i}`));
  if (names.length !== outputs.length) throw new Error(`model '${definition.name}' names ${names.length} outputs but forward returned ${outputs.length}`);
  outputs.forEach((t, i) => builder.output(names[i]!, t));
  const stateOutputs = addStateOutputs(builder);
  finishGraph(builder);
  const model = builder.toModel({ docString: definition.description ?? '', metadata: modelMetadata(definition, trace, options) });
  return {
    model, definition, config: trace.config, variant: options.variant, mode: trace.mode, seed: trace.seed,
    summary: builder.moduleCalls, notes: [...builder.notes], parameters: trace.parameters, values: trace.values, stateOutputs,
  };
}

/**
 * Last passes before a graph is written: training-mode batch norm lowered to ops every provider runs (after the
 * gradients were built from the fused node), ReLU gradient masks moved onto the grid of the max pool after the ReLU
 * (less work on every provider), a weight's gradient summed over many Gemms (an unrolled recurrent layer's steps)
 * made one Gemm over the stacked steps, then unused nodes and initializers removed.
 */
export function finishGraph(builder: GraphBuilder): void {
  lowerBatchNormTraining(builder);
  fuseReluMask(builder.graph);
  mergeGemmSums(builder.graph);
  eliminateDeadNodes(builder.graph);
}

/** Outputs the new value of each state tensor a training graph updates, as `<name>_updated`. */
export function addStateOutputs(builder: GraphBuilder): Map<string, string> {
  const stateOutputs = new Map<string, string>();
  for (const [name, t] of builder.stateUpdates) {
    const outName = `${name}_updated`;
    builder.output(outName, t);
    stateOutputs.set(name, outName);
  }
  return stateOutputs;
}

function initialValue(p: Parameter, seed: number): TensorData {
  const rng = Rng.derive(seed, p.name);
  const floats = p.init.fill(rng, p.shape);
  if (p.dtype === 'float32') return TensorData.fromTyped('float32', p.shape, floats);
  return TensorData.fromArray(p.dtype, p.shape, floats);
}
