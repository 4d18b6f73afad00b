/**
 * A network's first block (Conv -> [batch norm] -> ReLU -> 2x2 max pool) run natively around the training session
 * (src/native/conv-stem.cc; the cut: src/passes/cut-conv-stem.ts): before it, the block's forward turns the batch's
 * images into the pooled tensor the session starts from; after it, the pooled tensor's gradient becomes the block's
 * parameter gradients and running statistics. The Node trainer on the CPU only;
 * the artifacts keep the whole graph, and tests hold the two paths within float rounding of each other.
 */
import type { InferenceSession, Tensor } from 'onnxruntime-common';
import type { ConvStem } from '../passes/cut-conv-stem';
import type { TensorClass } from '../portable/tensor-class';
import { outputOf } from '../portable/session-output';
import { nativeAddon } from './native-addon';
import type { NativeAddon } from './native-addon';

/** What the forward keeps for the backward of the same batch. */
interface Saved {
  x: Float32Array;
  z: Float32Array;
  pooled: Float32Array;
  ties: Uint8Array;
  mean: Float32Array;
  invstd: Float32Array;
  gamma: Float32Array;
  runningMean: Float32Array;
  runningVar: Float32Array;
  geometry: Int32Array;
}

export class NativeConvStem {
  private saved: Saved | undefined;
  /**
   * The convolution output's buffer (67 MB at 64 x 64 x 64 x 64), the pooled output's and its ties, kept while the
   * batch size stays: an update reads them only until its backward, and fresh zeroed arrays would page-fault each time.
   */
  private scratch: { size: number; z: Float32Array; pooled: Float32Array; ties: Uint8Array } | undefined;

  private constructor(
    private readonly addon: NativeAddon,
    readonly stem: ConvStem,
    private readonly cutGradient: string,
    private readonly TensorOf: TensorClass,
    private readonly threads: number,
  ) {}

  /** The kernels for this stem, or why the native fast path is not available. */
  static create(stem: ConvStem, cutGradient: string, TensorOf: TensorClass, threads: number): NativeConvStem | string {
    const addon = nativeAddon();
    if (typeof addon === 'string') return addon;
    return new NativeConvStem(addon, stem, cutGradient, TensorOf, Math.max(1, Math.floor(threads)));
  }

  /** The session's data feeds for `batch`: its images replaced by the stem's pooled output. */
  forward(state: ReadonlyMap<string, Tensor>, batch: Record<string, Tensor>): Record<string, Tensor> {
    const s = this.stem;
    const images = batch[s.input];
    if (images === undefined || images.type !== 'float32' || images.dims.length !== 4) throw new Error(`the native stem needs '${s.input}' as a 4-D float32 batch`);
    const [n, c, h, w] = images.dims as number[];
    const [m, , kh, kw] = s.weightShape;
    const [oh, ow] = [h! + s.pads[0] + s.pads[2] - kh + 1, w! + s.pads[1] + s.pads[3] - kw + 1];
    const size = n! * m * oh * ow;
    if (this.scratch?.size !== size) this.scratch = { size, z: new Float32Array(size), pooled: new Float32Array(size / 4), ties: new Uint8Array(size / 4) };
    const floats = (name: string) => {
      const t = state.get(name);
      if (t === undefined || t.type !== 'float32') throw new Error(`the native stem has no float32 value for '${name}'`);
      return t.data as Float32Array;
    };
    const bn = s.batchNorm;
    // Without batch norm the kernel takes placeholders for its parameters (normalize 0 ignores them).
    const perChannel = (name: string | undefined, fill: number) => (name === undefined ? new Float32Array(m).fill(fill) : floats(name));
    const saved: Saved = {
      x: images.data as Float32Array, z: this.scratch.z, pooled: this.scratch.pooled, ties: this.scratch.ties,
      mean: new Float32Array(m), invstd: new Float32Array(m), gamma: perChannel(bn?.gamma, 1),
      runningMean: new Float32Array(m), runningVar: new Float32Array(m),
      geometry: Int32Array.of(n!, c!, h!, w!, m, kh, kw, ...s.pads),
    };
    this.addon.stemForward(
      [saved.x, floats(s.weight), perChannel(s.bias, 0), saved.gamma, perChannel(bn?.beta, 0), perChannel(bn?.runningMean, 0), perChannel(bn?.runningVar, 1),
        saved.z, saved.pooled, saved.mean, saved.invstd, saved.runningMean, saved.runningVar],
      saved.ties, saved.geometry, Float32Array.of(bn?.epsilon ?? 0, bn?.momentum ?? 0, bn === undefined ? 0 : 1), this.threads,
    );
    this.saved = saved;
    const feeds: Record<string, Tensor> = { ...batch };
    delete feeds[s.input];
    feeds[s.pooled] = new this.TensorOf('float32', saved.pooled, [n!, m, oh / 2, ow / 2]);
    return feeds;
  }

  /**
   * Adds the stem's parameter gradients and updated running statistics to the session's outputs, from the pooled
   * gradient it output (taken out of `out`, as nothing else reads it).
   */
  complete(out: InferenceSession.ReturnType): void {
    const s = this.stem;
    const saved = this.saved;
    if (saved === undefined) throw new Error('the native stem has no forward to complete');
    this.saved = undefined;
    const outputs = out as Record<string, Tensor>;
    const pooledGrad = outputOf(out, `${s.pooled}${this.cutGradient}`, 'the training graph');
    if (pooledGrad.data.length !== saved.pooled.length) throw new Error(`the pooled gradient has ${pooledGrad.data.length} values, the stem's output ${saved.pooled.length}`);
    const [m, c, kh, kw] = s.weightShape;
    const weightGrad = new Float32Array(m * c * kh * kw);
    const gammaGrad = new Float32Array(m);
    const betaGrad = new Float32Array(m);
    const bn = s.batchNorm;
    this.addon.stemBackward(
      [saved.x, saved.z, saved.pooled, pooledGrad.data as Float32Array, saved.gamma, saved.mean, saved.invstd, weightGrad, gammaGrad, betaGrad],
      saved.ties, saved.geometry, Float32Array.of(bn === undefined ? 0 : 1), this.threads,
    );
    const vector = (data: Float32Array) => new this.TensorOf('float32', data, [m]);
    outputs[`${s.weight}_grad`] = new this.TensorOf('float32', weightGrad, [...s.weightShape]);
    if (bn === undefined) {
      // Without batch norm, dZ is the ReLU's input gradient and betaGrad its sum: the bias's gradient.
      if (s.bias !== undefined) outputs[`${s.bias}_grad`] = vector(betaGrad);
    } else {
      // Batch norm cancels the bias: its gradient is exactly zero, as the graph emits it (autodiff/rules/conv.ts).
      if (s.bias !== undefined) outputs[`${s.bias}_grad`] = vector(new Float32Array(m));
      outputs[`${bn.gamma}_grad`] = vector(gammaGrad);
      outputs[`${bn.beta}_grad`] = vector(betaGrad);
      outputs[`${bn.runningMean}_updated`] = vector(saved.runningMean);
      outputs[`${bn.runningVar}_updated`] = vector(saved.runningVar);
    }
    delete outputs[`${s.pooled}${this.cutGradient}`];
  }
}
