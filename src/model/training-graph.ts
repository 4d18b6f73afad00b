import { gradients } from '../autodiff/gradients';
import * as F from '../dsl/functional';
import { Tensor } from '../dsl/builder';
import type { Graph, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import type { TensorData } from '../ir/tensor';
import { addStateOutputs, BuildOptions, finishGraph, modelMetadata, ParameterInfo, traceModel } from './build';
import type { Config, ModelDefinition } from './definition';
import { definitionTask } from './task-kind';
import { TASK_LOSSES } from './task-losses';

export interface TrainingGraphOptions extends Omit<BuildOptions, 'mode' | 'parameters'> {
  /** Label smoothing of the cross-entropy loss. */
  labelSmoothing?: number;
  /** Parameters that get no gradient: exact names, or prefixes ending in '.' (`features.`). */
  frozen?: string[];
  /**
   * A value of the forward graph (picked from it before the gradients are built) whose gradient the graph outputs
   * too, as `<name>${CUT_GRADIENT}`: where the Node trainer cuts a block out of the session (passes/cut-conv-stem.ts).
   */
  gradientOf?: (forward: Graph) => Value | undefined;
}

/** The suffix of the output that holds the gradient of TrainingGraphOptions.gradientOf's value. */
export const CUT_GRADIENT = '.cut_grad';

export interface TrainingGraph {
  model: Model;
  config: Config;
  parameters: ParameterInfo[];
  /** Names of the parameters whose gradients the graph outputs (`<name>_grad`), in output order. */
  trainable: string[];
  /** Name and shape of each trainable parameter, in the same order: what the optimizer graph updates. */
  trainableSpecs: { name: string; shape: readonly number[] }[];
  /** Buffer name -> the output holding its new value. */
  stateOutputs: Map<string, string>;
  /** Initial values of parameters and buffers. */
  values: Map<string, TensorData>;
  /** The ONNX files the model imports (pretrained backbones), as absolute paths. */
  importedModels: string[];
}

/**
 * The training graph of a classifier: inputs `input`, `labels`, the uniform noise of each dropout
 * (`dropout_noise.<k>`, shaped like the dropped tensor), then every parameter and every state tensor by name;
 * outputs `loss` (softmax cross-entropy, plus the terms the model adds with losses.addTrainingLoss), then
 * `<param>_grad` for each trainable parameter, then the updated state tensors. The forward pass runs in training
 * mode (dropout, batch statistics).
 */
export function buildTrainingGraph(definition: ModelDefinition, options: TrainingGraphOptions = {}): TrainingGraph {
  const { trace, loss, buildOptions } = traceWithLoss(definition, options, 'train');
  const { builder } = trace;
  const frozen = options.frozen ?? [];
  const isFrozen = (name: string) => frozen.some((f) => name === f || (f.endsWith('.') && name.startsWith(f)));
  const trainable = trace.parameters.filter((p) => p.trainable && !p.buffer && !isFrozen(p.name)).map((p) => p.name);
  const cut = options.gradientOf?.(builder.graph);
  const wrt = trainable.map((name) => trace.tensors.get(name)!);
  const grads = gradients(loss, cut === undefined ? wrt : [...wrt, new Tensor(builder, cut)]);
  builder.output('loss', loss);
  grads.slice(0, trainable.length).forEach((g, i) => builder.output(`${trainable[i]}_grad`, g));
  if (cut !== undefined) builder.output(`${cut.name}${CUT_GRADIENT}`, grads[trainable.length]!);
  const stateOutputs = addStateOutputs(builder);
  finishGraph(builder);
  const model = builder.toModel({
    docString: `${definition.description ?? definition.name} (training graph: loss, gradients, updated state)`,
    metadata: modelMetadata(definition, trace, buildOptions, { 'deepvision.graph': 'training' }),
  });
  const trainableSpecs = trainable.map((name) => ({ name, shape: trace.parameters.find((p) => p.name === name)!.shape }));
  return {
    model, config: trace.config, parameters: trace.parameters, trainable, trainableSpecs, stateOutputs, values: trace.values,
    importedModels: [...builder.importedModels],
  };
}

/**
 * A model traced with parameters as inputs and its task's loss (model/task-losses.ts): a classifier's cross-entropy
 * against a `labels` input, or a captioner's masked cross-entropy against `targets` and `mask` inputs.
 */
function traceWithLoss(definition: ModelDefinition, options: Omit<TrainingGraphOptions, 'frozen'>, mode: 'train' | 'eval') {
  const buildOptions: BuildOptions = { ...options, mode, parameters: 'inputs' };
  const task = TASK_LOSSES[definitionTask(definition)];
  const trace = traceModel(definition, buildOptions, (b, inputs) => task.targets(b, inputs, definition.name));
  if (trace.outputs.length !== 1) throw new Error(`model '${definition.name}': ${task.returns}`);
  const loss = trace.builder.run(() => {
    const data = task.loss(trace.outputs[0]!, trace.extraInputs, options.labelSmoothing);
    // The model's own regularizers (losses.addTrainingLoss), in training graphs only.
    return [...trace.builder.trainingLosses.values()].reduce((sum, term) => F.add(sum, term), data);
  });
  // Dropout noise inputs appear while forward runs, after the parameters: list them with the data inputs.
  const inputs = trace.builder.graph.inputs;
  const noise = inputs.filter((v) => v.name.startsWith(F.DROPOUT_NOISE));
  const rest = inputs.filter((v) => !v.name.startsWith(F.DROPOUT_NOISE));
  const data = trace.inputs.length + trace.extraInputs.length;
  inputs.splice(0, inputs.length, ...rest.slice(0, data), ...noise, ...rest.slice(data));
  return { trace, loss, buildOptions };
}

/**
 * The evaluation graph of a classifier: the same inputs as the training graph (input, labels, parameters, state),
 * eval-mode forward (no dropout, running statistics); outputs `loss` and `logits`.
 */
export function buildEvalGraph(definition: ModelDefinition, options: Omit<TrainingGraphOptions, 'frozen'> = {}): { model: Model } {
  const { trace, loss, buildOptions } = traceWithLoss(definition, options, 'eval');
  const { builder } = trace;
  builder.output('loss', loss);
  builder.output('logits', trace.outputs[0]!);
  finishGraph(builder);
  const model = builder.toModel({
    docString: `${definition.description ?? definition.name} (evaluation graph: loss and logits)`,
    metadata: modelMetadata(definition, trace, buildOptions, { 'deepvision.graph': 'eval' }),
  });
  return { model };
}
