/**
 * Convolutions' weight gradients computed natively (src/native/depthwise-weight-grad.cc, conv-weight-grad.cc) from
 * what the training session outputs in their place (src/passes/external-weight-grads.ts): x and dY, read once, where
 * the standard ONNX formulation writes an im2col of x kH*kW times over. The Node trainer on the CPU only; the
 * artifacts keep the standard formulation, and tests hold the two within float rounding of each other.
 */
import type { InferenceSession, Tensor } from 'onnxruntime-common';
import type { WeightGradRecipe } from '../passes/external-weight-grads';
import type { TensorClass } from '../portable/tensor-class';
import { outputOf } from '../portable/session-output';
import { nativeAddon } from './native-addon';
import type { NativeAddon } from './native-addon';

export class NativeWeightGrads {
  private constructor(
    private readonly addon: NativeAddon,
    private readonly recipes: readonly WeightGradRecipe[],
    private readonly TensorOf: TensorClass,
    private readonly threads: number,
  ) {}

  /** The kernels for these recipes, or why the native fast path is not available. */
  static create(recipes: readonly WeightGradRecipe[], TensorOf: TensorClass, threads: number): NativeWeightGrads | string {
    const addon = nativeAddon();
    if (typeof addon === 'string') return addon;
    return new NativeWeightGrads(addon, recipes, TensorOf, Math.max(1, Math.floor(threads)));
  }

  /**
   * Adds `<param>_grad` to the training session's outputs for every recipe, from its x and dY outputs, and takes
   * those out of `out`: nothing else reads them, and arrays that outlive the step until a garbage collection kept
   * MobileNetV2's fine-tuning at batch 16 at 2.49 GB (1.92 GB without them).
   */
  complete(out: InferenceSession.ReturnType): void {
    const outputs = out as Record<string, Tensor>;
    for (const r of this.recipes) {
      const x = outputOf(out, r.input, 'the training graph');
      const dy = outputOf(out, r.outputGrad, 'the training graph');
      const [n, c, h, w] = x.dims as number[];
      const [dn, m, oh, ow] = dy.dims as number[];
      if (x.dims.length !== 4 || dy.dims.length !== 4 || dn !== n || (r.kind === 'depthwise' && m !== c)) {
        throw new Error(`${r.kind} weight gradient of '${r.param}': x [${x.dims.join(', ')}] and dY [${dy.dims.join(', ')}] do not match`);
      }
      const geometry = [...r.kernel, ...r.strides, r.pads[0], r.pads[1], ...r.dilations];
      const [xs, dys] = [x.data as Float32Array, dy.data as Float32Array];
      if (r.kind === 'depthwise') {
        const dw = new Float32Array(c! * r.kernel[0] * r.kernel[1]);
        this.addon.depthwiseWeightGrad(xs, dys, dw, Int32Array.of(n!, c!, h!, w!, oh!, ow!, ...geometry), this.threads);
        outputs[`${r.param}_grad`] = new this.TensorOf('float32', dw, [c!, 1, ...r.kernel]);
      } else {
        const dw = new Float32Array(m! * c! * r.kernel[0] * r.kernel[1]);
        this.addon.convWeightGrad(xs, dys, dw, Int32Array.of(n!, c!, h!, w!, m!, oh!, ow!, ...geometry), this.threads);
        outputs[`${r.param}_grad`] = new this.TensorOf('float32', dw, [m!, c!, ...r.kernel]);
      }
    }
    // After the loop: two convolutions may read the same x.
    for (const r of this.recipes) {
      delete outputs[r.input];
      delete outputs[r.outputGrad];
    }
  }
}
