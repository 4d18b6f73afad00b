import { GraphBuilder } from '../dsl/builder';
import * as F from '../dsl/functional';
import type { Tensor } from '../dsl/builder';
import type { Model } from '../ir/model';
import { describeOptimizer, OptimizerConfig, OptimizerOptions, slotNames, validateOptimizer } from './config';
import { applyUpdate } from './update-rules';

export interface ParameterSpec {
  name: string;
  shape: readonly number[];
  /** This parameter's learning rate as a multiple of the schedule's (parameter groups: a backbone's smaller rate). */
  lrScale?: number;
}

export interface OptimizerGraph {
  model: Model;
  /** Optimizer state tensor names (`<param>.<slot>`), in input order. */
  stateNames: string[];
}

/**
 * The optimizer as an ONNX graph. Inputs: `learning_rate` (float [1]), `step` (int64 [1], the 1-based number of this
 * update), every parameter, every gradient (`<param>_grad`), every state slot (`<param>.<slot>`). Outputs: the
 * updated parameters and slots, each named `<input>_updated`, parameters first. With clipGradNorm, gradients are
 * scaled by min(1, max_norm / (global_norm + 1e-6)) first, as torch.nn.utils.clip_grad_norm_ does.
 */
export function buildOptimizerGraph(params: readonly ParameterSpec[], config: OptimizerConfig, options: OptimizerOptions = {}): OptimizerGraph {
  validateOptimizer(config);
  const b = new GraphBuilder('optimizer', 'eval');
  const lr = b.input('learning_rate', 'float32', [1]);
  const stepInt = b.input('step', 'int64', [1]);
  const paramTensors = params.map((p) => b.input(p.name, 'float32', p.shape));
  let grads = params.map((p) => b.input(`${p.name}_grad`, 'float32', p.shape));
  const slots = slotNames(config);
  const stateNames: string[] = [];
  const slotTensors = params.map((p) => slots.map((s) => {
    stateNames.push(`${p.name}.${s}`);
    return b.input(`${p.name}.${s}`, 'float32', p.shape);
  }));
  const outputs = b.run(() => {
    // Scalars, not [1] tensors: onnxruntime's element-wise kernels have a fast path for a scalar operand and a much
    // slower general broadcast for shape [1] (measured: 283 -> 40 ms per SGD update of the seed CNN's 9.3M weights).
    const step = F.reshape(F.cast(stepInt, 'float32'), []);
    const rate = F.reshape(lr, []);
    if (options.clipGradNorm !== undefined) grads = clipByGlobalNorm(grads, options.clipGradNorm);
    return params.map((p, i) => applyUpdate(config, {
      param: paramTensors[i]!, grad: grads[i]!, slots: slotTensors[i]!, learningRate: p.lrScale === undefined || p.lrScale === 1 ? rate : F.mul(rate, p.lrScale), step,
    }));
  });
  params.forEach((p, i) => b.output(`${p.name}_updated`, outputs[i]!.param));
  params.forEach((p, i) => slots.forEach((s, k) => b.output(`${p.name}.${s}_updated`, outputs[i]!.slots[k]!)));
  const model = b.toModel({
    docString: `${describeOptimizer(config)}${options.clipGradNorm !== undefined ? `, gradients clipped to global norm ${options.clipGradNorm}` : ''}`,
    metadata: { 'deepvision.graph': 'optimizer', 'deepvision.optimizer': JSON.stringify({ ...config, ...options }) },
  });
  return { model, stateNames };
}

function clipByGlobalNorm(grads: Tensor[], maxNorm: number): Tensor[] {
  if (!(maxNorm > 0)) throw new Error(`clipGradNorm must be > 0, got ${maxNorm}`);
  const squares = grads.map((g) => F.reduceSum(F.mul(g, g), undefined, false));
  const total = F.sqrt(squares.reduce((a, s) => F.add(a, s)));
  const scale = F.minimum(F.div(maxNorm, F.add(total, 1e-6)), 1);
  return grads.map((g) => F.mul(g, scale));
}
