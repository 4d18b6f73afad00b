import * as path from 'node:path';
import { NamedTensor, writeSafetensors } from '../io/safetensors';
import { TensorData } from '../ir/tensor';
import { buildModel } from '../model/build';
import type { ConfigValue, ModelDefinition } from '../model/definition';
import { buildEvalGraph, buildTrainingGraph } from '../model/training-graph';
import { writeModelFile } from '../onnx/write';
import { describeOptimizer, OptimizerConfig, slotNames } from '../optim/config';
import { buildOptimizerGraph } from '../optim/optimizer-graph';

export interface ArtifactOptions {
  variant?: string;
  config?: Record<string, ConfigValue>;
  seed?: number;
  optimizer: OptimizerConfig;
  clipGradNorm?: number;
  labelSmoothing?: number;
  /**
   * Trained values (parameters, buffers, `optimizer.<param>.<slot>`) to use instead of the initial ones: baked into
   * inference_model.onnx and stored in checkpoint.safetensors.
   */
  values?: Map<string, Float32Array>;
  /** Extra checkpoint metadata (training position, normalization, classes). */
  metadata?: Record<string, string>;
}

/**
 * Writes the training artifacts of a model into a folder, in the spirit of ONNX Runtime's on-device training
 * artifacts (but standard ops only, so any InferenceSession runs them): training_model.onnx, eval_model.onnx,
 * optimizer_model.onnx, inference_model.onnx and checkpoint.safetensors. Returns the files written.
 */
export function writeTrainingArtifacts(definition: ModelDefinition, outDir: string, o: ArtifactOptions): Record<string, number> {
  const common = { variant: o.variant, config: o.config, seed: o.seed };
  const training = buildTrainingGraph(definition, { ...common, labelSmoothing: o.labelSmoothing });
  const evaluation = buildEvalGraph(definition, { ...common, labelSmoothing: o.labelSmoothing });
  const specs = training.trainableSpecs;
  const optimizer = buildOptimizerGraph(specs, o.optimizer, { clipGradNorm: o.clipGradNorm });
  const inference = buildModel(definition, { ...common, mode: 'eval' });
  if (o.values) {
    for (const [name, data] of inference.model.graph.initializers) {
      const trained = o.values.get(name);
      if (trained !== undefined) inference.model.graph.initializers.set(name, TensorData.fromTyped('float32', data.dims, trained));
    }
  }
  const sizes: Record<string, number> = {};
  const write = (name: string, model: Parameters<typeof writeModelFile>[0]) => {
    sizes[name] = writeModelFile(model, path.join(outDir, name));
  };
  write('training_model.onnx', training.model);
  write('eval_model.onnx', evaluation.model);
  write('optimizer_model.onnx', optimizer.model);
  write('inference_model.onnx', inference.model);

  const tensors = new Map<string, NamedTensor>();
  for (const [name, value] of training.values) {
    tensors.set(name, { dtype: 'float32', shape: value.dims, data: o.values?.get(name) ?? (value.typed() as Float32Array) });
  }
  for (const p of specs) {
    for (const slot of slotNames(o.optimizer)) {
      const name = `optimizer.${p.name}.${slot}`;
      tensors.set(name, { dtype: 'float32', shape: p.shape, data: o.values?.get(name) ?? new Float32Array(p.shape.reduce((a, b) => a * b, 1)) });
    }
  }
  const file = path.join(outDir, 'checkpoint.safetensors');
  writeSafetensors(file, tensors, {
    'deepvision.model': definition.name,
    ...(o.variant ? { 'deepvision.variant': o.variant } : {}),
    'deepvision.config': JSON.stringify(training.config),
    'deepvision.seed': String(o.seed ?? 0),
    'deepvision.optimizer': JSON.stringify(o.optimizer),
    'deepvision.optimizer_description': describeOptimizer(o.optimizer),
    'deepvision.epoch': '0',
    'deepvision.batch': '0',
    'deepvision.step': '0',
    ...o.metadata,
  });
  sizes['checkpoint.safetensors'] = [...tensors.values()].reduce((n, t) => n + t.data.byteLength, 0);
  return sizes;
}
