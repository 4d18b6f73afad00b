/**
 * One training update, for onnxruntime-node and onnxruntime-web alike: the training graph (loss, gradients, updated
 * buffers) on a batch, then the optimizer graph (updated parameters and slots). The Node trainer and the page's
 * Teach mode both drive their updates through this module, so the same artifacts get the same feeds in both. It
 * imports only onnxruntime-common's types; the caller passes its runtime's Tensor class. The Node trainer on the CPU
 * may replace the optimizer graph with an in-place optimizer (its native fused one): see StepOptions.
 *
 * State lives in one map by name: parameters and buffers under their own names, optimizer slots as
 * `optimizer.<param>.<slot>` (as checkpoints store them).
 */
import type { InferenceSession, Tensor } from 'onnxruntime-common';
import type { TensorClass } from './tensor-class';
import { outputOf } from './session-output';
export type { TensorClass };

/** The names that tie the two graphs to the state map. */
export interface StepGraphs {
  /** State tensors the training graph reads (parameters, frozen or not, and buffers). */
  inputs: readonly string[];
  /** Parameters the optimizer updates, in its input order (the training graph outputs `<name>_grad` for each). */
  trainable: readonly string[];
  /** Optimizer slots as the optimizer graph names them (`<param>.<slot>`). */
  slots: readonly string[];
  /** Buffer name -> the training output holding its new value. */
  stateOutputs: ReadonlyMap<string, string>;
}

/** Inputs of the training graph that are data, not state: fed by the caller per batch. */
const DATA_INPUTS = /^(input|features|labels|targets|mask|captions|dropout_noise\..*)$/;

/**
 * The StepGraphs of a training and an optimizer session, from their input and output names alone (what the page
 * has: the artifacts' contract, see write-artifacts.ts).
 */
export function stepGraphsOf(training: InferenceSession, optimizer: InferenceSession): StepGraphs {
  const trainable = training.outputNames.filter((n) => n.endsWith('_grad')).map((n) => n.slice(0, -'_grad'.length));
  const stateOutputs = new Map<string, string>();
  for (const n of training.outputNames) if (n.endsWith('_updated')) stateOutputs.set(n.slice(0, -'_updated'.length), n);
  const known = new Set(['learning_rate', 'step', ...trainable, ...trainable.map((n) => `${n}_grad`)]);
  return {
    inputs: training.inputNames.filter((n) => !DATA_INPUTS.test(n)),
    trainable,
    slots: optimizer.inputNames.filter((n) => !known.has(n)),
    stateOutputs,
  };
}

/** A problem with a pair of sessions and a state map that would make a step fail, or undefined. */
export function stepProblem(graphs: StepGraphs, state: ReadonlyMap<string, Tensor>): string | undefined {
  const missing = [...graphs.inputs, ...graphs.trainable, ...graphs.slots.map((s) => `optimizer.${s}`)].filter((n) => !state.has(n));
  return missing.length > 0 ? `no value for ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}` : undefined;
}

/**
 * An optimizer that updates the parameters and slots of the state map in place, run instead of the optimizer graph:
 * the Node trainer's fused native one (src/native/fused-optimizer.ts). Gradients come in the order of `trainable`.
 */
interface InPlaceOptimizer {
  update(state: ReadonlyMap<string, Tensor>, grads: readonly Tensor[], lr: number, step: number): void;
}

/** How the Node trainer's fast path runs a step; the page and WebGPU leave it unset. */
export interface StepOptions {
  /** Update with this instead of the optimizer graph. */
  inPlace?: InPlaceOptimizer;
  /** The session's data feeds for a batch, where a native block runs before the session (the native stem). */
  prepareFeeds?: (state: ReadonlyMap<string, Tensor>, batch: Record<string, Tensor>) => Record<string, Tensor>;
  /** Adds the gradients and state the training session leaves out (native weight gradients, the stem's) to its outputs. */
  completeGradients?: (out: InferenceSession.ReturnType) => void;
}

export class TrainingStep {
  constructor(
    private readonly training: InferenceSession,
    private readonly optimizer: InferenceSession | undefined,
    readonly graphs: StepGraphs,
    private readonly TensorOf: TensorClass,
    private readonly options: StepOptions = {},
  ) {
    if (optimizer === undefined && options.inPlace === undefined) throw new Error('a training step needs an optimizer graph or an in-place optimizer');
  }

  /** Runs the training graph on a batch (its data inputs in `batch`) with the current state: loss and gradients. */
  async gradients(state: ReadonlyMap<string, Tensor>, batch: Record<string, Tensor>): Promise<InferenceSession.ReturnType> {
    const feeds: Record<string, Tensor> = { ...(this.options.prepareFeeds?.(state, batch) ?? batch) };
    for (const name of this.graphs.inputs) feeds[name] = state.get(name)!;
    const out = await this.training.run(feeds);
    this.options.completeGradients?.(out);
    return out;
  }

  /**
   * Update number `step` (1-based) at learning rate `lr`, from the gradients of `out`: new parameters and slots
   * from the optimizer graph, new buffers from `out`, each replacing its predecessor in `state`. GPU buffers that
   * are replaced or no longer needed (the gradients) are released.
   */
  async update(state: Map<string, Tensor>, out: InferenceSession.ReturnType, lr: number, step: number): Promise<void> {
    if (this.options.inPlace !== undefined) {
      this.options.inPlace.update(state, this.graphs.trainable.map((name) => outputOf(out, `${name}_grad`, 'the training graph')), lr, step);
      for (const [buffer, output] of this.graphs.stateOutputs) replace(state, buffer, outputOf(out, output, 'the training graph'));
      return;
    }
    const feeds: Record<string, Tensor> = {
      learning_rate: new this.TensorOf('float32', Float32Array.from([lr]), [1]),
      step: new this.TensorOf('int64', BigInt64Array.from([BigInt(step)]), [1]),
    };
    const grads = this.graphs.trainable.map((name) => outputOf(out, `${name}_grad`, 'the training graph'));
    this.graphs.trainable.forEach((name, i) => {
      feeds[name] = state.get(name)!;
      feeds[`${name}_grad`] = grads[i]!;
    });
    for (const name of this.graphs.slots) feeds[name] = state.get(`optimizer.${name}`)!;
    const updated = await this.optimizer!.run(feeds);
    for (const name of this.graphs.trainable) replace(state, name, outputOf(updated, `${name}_updated`, 'the optimizer graph'));
    for (const name of this.graphs.slots) replace(state, `optimizer.${name}`, outputOf(updated, `${name}_updated`, 'the optimizer graph'));
    for (const [buffer, output] of this.graphs.stateOutputs) replace(state, buffer, outputOf(out, output, 'the training graph'));
    for (const grad of grads) if (grad.location === 'gpu-buffer') grad.dispose();
  }

  /** A whole update: gradients, then the optimizer. Returns the batch's loss tensor (on the host unless placed on a GPU). */
  async run(state: Map<string, Tensor>, batch: Record<string, Tensor>, lr: number, step: number): Promise<Tensor> {
    const out = await this.gradients(state, batch);
    await this.update(state, out, lr, step);
    return outputOf(out, 'loss', 'the training graph');
  }
}

/** Replaces a state tensor, releasing the GPU buffer of the one it replaces. */
function replace(state: Map<string, Tensor>, name: string, t: Tensor): void {
  const old = state.get(name);
  if (old !== undefined && old !== t && old.location === 'gpu-buffer') old.dispose();
  state.set(name, t);
}
