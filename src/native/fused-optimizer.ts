/**
 * The optimizer as one fused, in-place, multi-threaded native pass (src/native/fused-optimizer.cc), for the Node
 * trainer on the CPU: the same update as the optimizer graph (src/optim/update-rules.ts), without its 12 passes into
 * fresh buffers. The scalars are computed here as the graph computes them, rounded to float32 at each of its
 * operations, so that the two paths agree to the last bit where the element-wise arithmetic decides it.
 */
import type { Tensor } from 'onnxruntime-common';
import { slotNames, validateOptimizer } from '../optim/config';
import type { OptimizerConfig, OptimizerOptions } from '../optim/config';
import type { ParameterSpec } from '../optim/optimizer-graph';
import { UserError } from '../util/user-error';
import { nativeAddon } from './native-addon';
import type { NativeAddon } from './native-addon';

const f32 = Math.fround;

/** The state map's arrays are not what the optimizer was made for (a checkpoint of another layout, a bug). */
export class FusedOptimizerError extends UserError {}

export class FusedOptimizer {
  private readonly slots: string[];
  private readonly sizes: number[];

  private constructor(
    private readonly addon: NativeAddon,
    private readonly params: readonly ParameterSpec[],
    private readonly config: OptimizerConfig,
    private readonly options: OptimizerOptions,
    private readonly threads: number,
  ) {
    this.slots = slotNames(config);
    this.sizes = params.map((p) => p.shape.reduce((a, b) => a * b, 1));
  }

  /** The fused optimizer for these parameters, or why the native fast path is not available. */
  static create(params: readonly ParameterSpec[], config: OptimizerConfig, options: OptimizerOptions, threads: number): FusedOptimizer | string {
    validateOptimizer(config);
    const addon = nativeAddon();
    if (typeof addon === 'string') return addon;
    return new FusedOptimizer(addon, params, config, options, Math.max(1, Math.floor(threads)));
  }

  /**
   * Update number `step` (1-based) at learning rate `lr`: every parameter and its slots in `state` (parameters by
   * name, slots as `optimizer.<param>.<slot>`) are updated in place from `grads` (in the order of the parameters).
   */
  update(state: ReadonlyMap<string, Tensor>, grads: readonly Tensor[], lr: number, step: number): void {
    if (grads.length !== this.params.length) throw new FusedOptimizerError(`the fused optimizer got ${grads.length} gradients for ${this.params.length} parameters`);
    const params = this.params.map((p, i) => this.array(state.get(p.name), p.name, i));
    const gradients = grads.map((g, i) => this.array(g, `${this.params[i]!.name}_grad`, i));
    const slots = this.slots.map((slot) => this.params.map((p, i) => this.array(state.get(`optimizer.${p.name}.${slot}`), `optimizer.${p.name}.${slot}`, i)));
    const clipScale = this.clipScale(gradients);
    const rate = f32(lr);
    const rates = this.params.map((p) => (p.lrScale === undefined || p.lrScale === 1 ? rate : f32(rate * f32(p.lrScale))));
    if (this.config.kind === 'sgd') {
      const c = this.config;
      const dampening = c.dampening ?? 0;
      this.addon.sgd(params, gradients, slots[0] ?? null, Float32Array.from(rates), {
        clip: clipScale !== undefined, clipScale: clipScale ?? 1,
        decay: (c.weightDecay ?? 0) > 0, weightDecay: f32(c.weightDecay ?? 0),
        momentum: (c.momentum ?? 0) > 0, mu: f32(c.momentum ?? 0),
        // The graph's (1 - dampening * min(step - 1, 1)): 1 on the first step, so that the buffer starts as the gradient.
        dampening: dampening !== 0, bufferScale: f32(1 - f32(Math.min(step - 1, 1) * f32(dampening))),
        nesterov: c.nesterov === true,
      }, this.threads);
      return;
    }
    const c = this.config;
    const wd = c.weightDecay ?? (c.kind === 'adamw' ? 0.01 : 0);
    // sqrt(1 - beta2^t) and 1 - beta1^t, each operation rounded to float32 as the graph's Pow, Sub and Sqrt are.
    const rootC2 = f32(Math.sqrt(f32(1 - f32(Math.pow(f32(c.beta2 ?? 0.999), step)))));
    const c1 = f32(1 - f32(Math.pow(f32(c.beta1 ?? 0.9), step)));
    const epsilon = f32(rootC2 * f32(c.eps ?? 1e-8));
    const scalars = new Float32Array(3 * this.params.length);
    rates.forEach((r, i) => scalars.set([f32(f32(r * rootC2) / c1), epsilon, f32(1 - f32(r * f32(wd)))], 3 * i));
    this.addon.adam(params, gradients, slots[0]!, slots[1]!, scalars, {
      clip: clipScale !== undefined, clipScale: clipScale ?? 1,
      l2: wd > 0 && c.kind === 'adam', decoupled: wd > 0 && c.kind === 'adamw', weightDecay: f32(wd),
      oneMinusBeta1: f32(1 - (c.beta1 ?? 0.9)), oneMinusBeta2: f32(1 - (c.beta2 ?? 0.999)),
    }, this.threads);
  }

  /** With clipGradNorm, the graph's min(1, max_norm / (norm + 1e-6)) (the norm summed in float64 here). */
  private clipScale(gradients: Float32Array[]): number | undefined {
    const maxNorm = this.options.clipGradNorm;
    if (maxNorm === undefined) return undefined;
    const norm = f32(Math.sqrt(this.addon.sumOfSquares(gradients, this.threads)));
    return Math.min(f32(f32(maxNorm) / f32(norm + f32(1e-6))), 1);
  }

  /** A state or gradient tensor's float32 array, checked against the parameter it belongs to. */
  private array(t: Tensor | undefined, name: string, param: number): Float32Array {
    if (t === undefined) throw new FusedOptimizerError(`the fused optimizer has no value for '${name}' in the training state`);
    if (t.location !== 'cpu' || !(t.data instanceof Float32Array)) throw new FusedOptimizerError(`'${name}' is not a float32 tensor in host memory (${t.type} on ${t.location})`);
    if (t.data.length !== this.sizes[param]) {
      throw new FusedOptimizerError(`'${name}' has ${t.data.length} values but the parameter '${this.params[param]!.name}' has shape [${this.params[param]!.shape.join(', ')}] (${this.sizes[param]} values): the state does not match the model the optimizer was made for`);
    }
    return t.data;
  }
}
