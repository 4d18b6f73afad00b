import { BuildMode, GraphBuilder, ModuleCall } from '../dsl/builder';
import { Tensor } from '../dsl/tensor';
import type { Model } from '../ir/model';
import { TensorData } from '../ir/tensor';
import { Buffer, Parameter } from '../nn/parameter';
import { Rng } from '../util/rng';
import { Config, ConfigValue, ModelDefinition, resolveConfig } from './definition';

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
  parameters: ParameterInfo[];
  /** Initial values of parameters and buffers by name. */
  values: Map<string, TensorData>;
  /** State tensors a training graph updates, by buffer name, with the graph output that holds the new value. */
  stateOutputs: Map<string, string>;
}

/** Builds a model definition into an ONNX graph: names the module tree, initializes parameters, runs forward. */
export function buildModel(definition: ModelDefinition, options: BuildOptions = {}): BuiltModel {
  const config = resolveConfig(definition, options.variant, options.config);
  const mode = options.mode ?? 'eval';
  const seed = options.seed ?? 0;
  const root = definition.create(config);
  root.assignNames();
  const builder = new GraphBuilder(definition.name, mode);
  const inputs = definition.inputs(config).map((spec) => builder.input(spec.name, spec.dtype ?? 'float32', spec.shape));

  const parameters: ParameterInfo[] = [];
  const values = new Map<string, TensorData>();
  for (const [name, p] of root.namedTensors()) {
    const data = initialValue(p, seed);
    values.set(name, data);
    const tensor = options.parameters === 'inputs' ? builder.input(name, p.dtype, p.shape) : builder.initializer(name, data);
    builder.bind(p, tensor);
    parameters.push({ name, shape: p.shape, size: p.size, trainable: p.trainable, buffer: p instanceof Buffer, init: p.init.describe });
  }

  const result = builder.run(() => root.forward(...inputs));
  const outputs = result instanceof Tensor ? [result] : Array.isArray(result) ? result : undefined;
  if (outputs === undefined || !outputs.every((t) => t instanceof Tensor)) {
    throw new Error(`model '${definition.name}': forward must return a tensor or an array of tensors`);
  }
  const names = definition.outputs ?? (outputs.length === 1 ? ['logits'] : outputs.map((_, i) => `output_${i}`));
  if (names.length !== outputs.length) throw new Error(`model '${definition.name}' names ${names.length} outputs but forward returned ${outputs.length}`);
  outputs.forEach((t, i) => builder.output(names[i]!, t));

  const stateOutputs = new Map<string, string>();
  for (const [name, t] of builder.stateUpdates) {
    const outName = `${name}_updated`;
    builder.output(outName, t);
    stateOutputs.set(name, outName);
  }

  const model = builder.toModel({
    docString: definition.description ?? '',
    metadata: {
      'deepvision.model': definition.name,
      ...(options.variant ? { 'deepvision.variant': options.variant } : {}),
      'deepvision.config': JSON.stringify(config),
      'deepvision.mode': mode,
      'deepvision.seed': String(seed),
    },
  });
  return { model, definition, config, variant: options.variant, mode, seed, summary: builder.moduleCalls, parameters, values, stateOutputs };
}

function initialValue(p: Parameter, seed: number): TensorData {
  const rng = Rng.derive(seed, p.name);
  const floats = p.init.fill(rng, p.shape);
  if (p.dtype === 'float32') return TensorData.fromTyped('float32', p.shape, floats);
  return TensorData.fromArray(p.dtype, p.shape, floats);
}
