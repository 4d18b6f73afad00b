/**
 * Additive attention (Bahdanau et al. 2015; over image regions as in Show, Attend and Tell, Xu et al. 2015), from
 * standard ONNX ops so that it differentiates with the ordinary rules and runs on every provider.
 */
import * as F from '../dsl/functional';
import { Tensor } from '../dsl/builder';
import { isFloatingDType } from '../ir/dtype';
import { dimsCompatible, formatShape } from '../ir/shape';
import { Linear } from './layers';
import { Module } from './module';

export interface AdditiveAttentionOptions {
  /** [N, R], float or bool, 1 for regions to attend to and 0 for ones to leave out (padding). */
  mask?: Tensor;
  /**
   * `projectFeatures(features)` computed once outside a decoding loop: the features do not change from step to
   * step, so a decoder need not project them again at every step.
   */
  projectedFeatures?: Tensor;
}

export interface AttentionOutput {
  /** The attention-weighted sum of the features, [N, D]. */
  context: Tensor;
  /** The attention weights over the regions, [N, R]; each row sums to 1. */
  weights: Tensor;
}

/**
 * e = v^T tanh(W_f f + b_f + W_h h + b_h) per region, alpha = softmax(e) over the regions (masked ones get none),
 * context = sum alpha * f. Parameters: featureProjection (Linear D -> A), queryProjection (Linear H -> A) and
 * score (Linear A -> 1 without bias: a bias adds the same to every score and cancels in the softmax).
 * forward(features [N, R, D], query [N, H], { mask, projectedFeatures }) -> { context [N, D], weights [N, R] };
 * forward(features, query, mask) is short for forward(features, query, { mask }).
 */
export class AdditiveAttention extends Module {
  readonly featureProjection: Linear;
  readonly queryProjection: Linear;
  readonly score: Linear;

  constructor(readonly featureSize: number, readonly hiddenSize: number, readonly attentionSize: number) {
    super();
    for (const [name, v] of [['featureSize', featureSize], ['hiddenSize', hiddenSize], ['attentionSize', attentionSize]] as const) {
      if (!Number.isInteger(v) || v <= 0) throw new Error(`AdditiveAttention: ${name} must be a positive integer, got ${v}`);
    }
    this.featureProjection = new Linear(featureSize, attentionSize);
    this.queryProjection = new Linear(hiddenSize, attentionSize);
    this.score = new Linear(attentionSize, 1, { bias: false });
  }

  /** W_f f + b_f for features [N, R, D]: [N, R, A]. */
  projectFeatures(features: Tensor): Tensor {
    this.checkFeatures(features);
    return this.featureProjection.forward(features);
  }

  forward(features: Tensor, query: Tensor, optionsOrMask: AdditiveAttentionOptions | Tensor = {}): AttentionOutput {
    const b = features.builder;
    const options = optionsOrMask instanceof Tensor ? { mask: optionsOrMask } : optionsOrMask;
    this.checkFeatures(features);
    const [batch, regions] = features.shape;
    if (query.rank !== 2 || query.dtype !== features.dtype || !dimsCompatible(query.dim(0), batch!) || query.dim(1) !== this.hiddenSize) {
      throw b.error('additiveAttention', `query must be ${features.dtype}[N, H] = ${formatShape([batch!, this.hiddenSize])}, got ${query.dtype}${formatShape(query.shape)}`);
    }
    const { mask, projectedFeatures } = options;
    if (mask !== undefined && (mask.rank !== 2 || !dimsCompatible(mask.dim(0), batch!) || !dimsCompatible(mask.dim(1), regions!))) {
      throw b.error('additiveAttention', `mask must be [N, R] = ${formatShape([batch!, regions!])}, got ${mask.dtype}${formatShape(mask.shape)}`);
    }
    const expected = [batch!, regions!, this.attentionSize];
    if (projectedFeatures !== undefined && (projectedFeatures.rank !== 3 || !expected.every((d, i) => dimsCompatible(projectedFeatures.dim(i), d)))) {
      throw b.error('additiveAttention', `projectedFeatures must be [N, R, A] = ${formatShape(expected)}, got ${formatShape(projectedFeatures.shape)}`);
    }
    const projected = projectedFeatures ?? this.featureProjection.forward(features);
    // [N, A] -> [N, 1, A] broadcasts over the regions.
    const hidden = F.tanh(F.add(projected, F.unsqueeze(this.queryProjection.forward(query), [1])));
    let scores = F.squeeze(this.score.forward(hidden), [2]);
    // A large finite score rather than -inf: a row masked entirely gets uniform weights, not NaN.
    if (mask !== undefined) scores = F.where(mask.dtype === 'bool' ? mask : F.greater(mask, 0), scores, -1e30);
    const weights = F.softmax(scores, 1);
    // One batched MatMul [N, 1, R] x [N, R, D] sums the weighted features.
    const context = F.squeeze(F.matmul(F.unsqueeze(weights, [1]), features), [1]);
    return { context, weights };
  }

  private checkFeatures(features: Tensor): void {
    if (features.rank !== 3 || !isFloatingDType(features.dtype) || features.dim(2) !== this.featureSize) {
      throw features.builder.error('additiveAttention', `features must be a float tensor [N, R, ${this.featureSize}] (R regions of D = featureSize), got ${features.dtype}${formatShape(features.shape)}`);
    }
  }
}
