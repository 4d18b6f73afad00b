/**
 * Loss functions, built from primitive ops so that the gradient builder differentiates them with the ordinary
 * rules. Each returns a scalar (mean over the batch).
 */
import { isFloatingDType } from '../ir/dtype';
import { dimsCompatible, formatShape } from '../ir/shape';
import { TensorData } from '../ir/tensor';
import { activeBuilder } from './builder';
import * as F from './functional';
import type { Tensor } from './builder';

export interface CrossEntropyOptions {
  /** Labels equal to this are padding: they neither count in the mean nor get a gradient (PyTorch: -100). */
  ignoreIndex?: number;
  /** Mixes the one-hot target with the uniform distribution: (1 - s) * onehot + s / classes. */
  labelSmoothing?: number;
}

/**
 * Softmax cross-entropy of logits [N, C] against integer labels [N], as PyTorch's F.cross_entropy: LogSoftmax
 * keeps it stable for large logits; the mean is over the items whose label is not ignoreIndex.
 */
export function crossEntropy(logits: Tensor, labels: Tensor, options: CrossEntropyOptions = {}): Tensor {
  const b = logits.builder;
  if (logits.rank !== 2) throw b.error('crossEntropy', `logits must be [N, classes], got [${logits.shape.join(', ')}]`);
  if (labels.rank !== 1 || (labels.dtype !== 'int64' && labels.dtype !== 'int32')) {
    throw b.error('crossEntropy', `labels must be int64 [N], got ${labels.dtype}[${labels.shape.join(', ')}]`);
  }
  const classes = logits.dim(1);
  if (typeof classes !== 'number') throw b.error('crossEntropy', 'the number of classes must be static');
  const smoothing = options.labelSmoothing ?? 0;
  if (!(smoothing >= 0 && smoothing < 1)) throw b.error('crossEntropy', `labelSmoothing must be in [0, 1), got ${smoothing}`);
  const ignoreIndex = options.ignoreIndex ?? -100;

  const labels64 = labels.dtype === 'int64' ? labels : F.cast(labels, 'int64');
  const perItem = negativeLogLikelihood(logits, labels64, smoothing);
  const valid = F.cast(b.op('Not', [F.equal(labels64, b.scalar(ignoreIndex, 'int64'))], {}, 'crossEntropy'), logits.dtype);
  const count = F.maximum(F.reduceSum(valid, [0], false), 1);
  return F.div(F.reduceSum(F.mul(perItem, valid), [0], false), count);
}

/**
 * -sum(target * logSoftmax(logits)) over the last axis, with target the (smoothed) one-hot of the labels; labels
 * outside [0, classes) get an all-zero target, so a padding label such as -100 contributes 0.
 */
function negativeLogLikelihood(logits: Tensor, labels64: Tensor, smoothing: number): Tensor {
  const b = logits.builder;
  const axis = logits.rank - 1;
  const classes = logits.dim(axis) as number;
  const classIds = b.constant(TensorData.int64([...Array<number>(axis).fill(1), classes], [...Array(classes).keys()]));
  const oneHot = F.cast(F.equal(F.unsqueeze(labels64, [axis]), classIds), logits.dtype);
  const target = smoothing > 0 ? F.add(F.mul(oneHot, 1 - smoothing), smoothing / classes) : oneHot;
  return F.neg(F.reduceSum(F.mul(target, F.logSoftmax(logits, axis)), [axis], false));
}

export interface MaskedCrossEntropyOptions {
  /** Targets equal to this are left out as well, as if masked (PyTorch: -100). */
  ignoreIndex?: number;
  /** As crossEntropy's. */
  labelSmoothing?: number;
}

/**
 * Softmax cross-entropy of sequence logits [N, T, V] against integer targets [N, T], averaged over the real
 * tokens only: sum(mask * nll) / sum(mask), with mask [N, T] (float or bool, 1 for real tokens and 0 for padding)
 * and targets equal to ignoreIndex counted as masked too. Matches PyTorch's F.cross_entropy with ignore_index on
 * the flattened tokens; padding gets no gradient. With nothing left to count the loss is 0.
 */
export function maskedCrossEntropy(logits: Tensor, targets: Tensor, mask?: Tensor, options: MaskedCrossEntropyOptions = {}): Tensor {
  const b = logits.builder;
  const op = 'maskedCrossEntropy';
  if (logits.rank !== 3 || !isFloatingDType(logits.dtype)) throw b.error(op, `logits must be a float tensor [N, T, classes], got ${logits.dtype}${formatShape(logits.shape)}`);
  const classes = logits.dim(2);
  if (typeof classes !== 'number') throw b.error(op, 'the number of classes must be static');
  const tokens = logits.shape.slice(0, 2);
  const sameTokens = (t: Tensor) => t.rank === 2 && tokens.every((d, i) => dimsCompatible(t.dim(i), d));
  if (!sameTokens(targets) || (targets.dtype !== 'int64' && targets.dtype !== 'int32')) {
    throw b.error(op, `targets must be int64 [N, T] = ${formatShape(tokens)} like the logits, got ${targets.dtype}${formatShape(targets.shape)}`);
  }
  if (mask !== undefined && !sameTokens(mask)) throw b.error(op, `mask must be [N, T] = ${formatShape(tokens)} like the logits, got ${mask.dtype}${formatShape(mask.shape)}`);
  const smoothing = options.labelSmoothing ?? 0;
  if (!(smoothing >= 0 && smoothing < 1)) throw b.error(op, `labelSmoothing must be in [0, 1), got ${smoothing}`);

  const targets64 = targets.dtype === 'int64' ? targets : F.cast(targets, 'int64');
  const perToken = negativeLogLikelihood(logits, targets64, smoothing);
  const notIgnored = b.op('Not', [F.equal(targets64, b.scalar(options.ignoreIndex ?? -100, 'int64'))], {}, op);
  const notIgnoredWeight = F.cast(notIgnored, logits.dtype);
  const weight = mask === undefined ? notIgnoredWeight : F.where(mask.dtype === 'bool' ? mask : F.greater(mask, 0), notIgnoredWeight, 0);
  // The 0/1 weights sum to a whole count; max(count, 1) keeps an all-padding batch at 0 instead of 0/0.
  const count = F.maximum(F.reduceSum(weight, undefined, false), 1);
  return F.div(F.reduceSum(F.mul(perToken, weight), undefined, false), count);
}

/** Mean squared error over all elements. */
export function mseLoss(prediction: Tensor, target: Tensor): Tensor {
  const d = F.sub(prediction, target);
  return F.reduceMean(F.mul(d, d), undefined, false);
}

/**
 * Binary cross-entropy on logits, stable for any magnitude: max(x, 0) - x*y + log(1 + exp(-|x|)), averaged.
 */
export function bceWithLogits(logits: Tensor, target: Tensor): Tensor {
  const perItem = F.add(F.sub(F.relu(logits), F.mul(logits, target)), F.log(F.add(F.exp(F.neg(F.abs(logits))), 1)));
  return F.reduceMean(perItem, undefined, false);
}

/**
 * Show, Attend and Tell's doubly stochastic attention penalty (Xu et al. 2015, eq. 14): over a caption, the weights
 * each region gets should add up to about 1, so that the decoder looks at every part of the image at some word.
 * mean over images and regions of (1 - sum_t mask_t * alpha_ti)^2, for weights [N, T, R] (each row over R sums to
 * 1) and mask [N, T] (1 for real steps, 0 for padding, which must not count). The paper sums over the regions; the
 * mean keeps the term's size apart from the number of regions, beside a cross-entropy averaged per token.
 */
export function attentionPenalty(weights: Tensor, mask?: Tensor): Tensor {
  const b = weights.builder;
  if (weights.rank !== 3 || !isFloatingDType(weights.dtype)) throw b.error('attentionPenalty', `weights must be a float tensor [N, T, R], got ${weights.dtype}${formatShape(weights.shape)}`);
  if (mask !== undefined && (mask.rank !== 2 || !dimsCompatible(mask.dim(0), weights.dim(0)) || !dimsCompatible(mask.dim(1), weights.dim(1)))) {
    throw b.error('attentionPenalty', `mask must be [N, T] = ${formatShape(weights.shape.slice(0, 2))}, got ${mask.dtype}${formatShape(mask.shape)}`);
  }
  const counted = mask === undefined ? weights : F.mul(weights, F.unsqueeze(F.cast(mask, weights.dtype), [2]));
  const shortfall = F.sub(1, F.reduceSum(counted, [1], false));
  return F.reduceMean(F.mul(shortfall, shortfall), [0, 1], false);
}

/**
 * Adds a float scalar, times `weight`, to the loss a training graph minimizes: for regularizers that a model computes
 * from its own activations. `term` is only called when a training graph is built; evaluation graphs leave it out,
 * so their loss stays the data term (the cross-entropy) and compares across models.
 */
export function addTrainingLoss(name: string, term: () => Tensor, weight = 1): void {
  const b = activeBuilder();
  if (!Number.isFinite(weight) || weight < 0) throw b.error('addTrainingLoss', `the weight of '${name}' must be a finite number >= 0, got ${weight}`);
  if (b.trainingLosses.has(name)) throw b.error('addTrainingLoss', `a training loss named '${name}' was already added`);
  if (!b.training || weight === 0) return;
  const value = term();
  if (value.rank !== 0 || !isFloatingDType(value.dtype)) throw b.error('addTrainingLoss', `'${name}' must be a float scalar, got ${value.dtype}${formatShape(value.shape)}`);
  b.trainingLosses.set(name, weight === 1 ? value : F.mul(value, weight));
}
