/**
 * Loss functions, built from primitive ops so that the gradient builder differentiates them with the ordinary
 * rules. Each returns a scalar (mean over the batch).
 */
import { TensorData } from '../ir/tensor';
import * as F from './functional';
import type { Tensor } from './tensor';

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
  const classIds = b.constant(TensorData.int64([1, classes], [...Array(classes).keys()]));
  const oneHot = F.cast(F.equal(F.unsqueeze(labels64, [1]), classIds), logits.dtype);
  const target = smoothing > 0 ? F.add(F.mul(oneHot, 1 - smoothing), smoothing / classes) : oneHot;
  const perItem = F.neg(F.reduceSum(F.mul(target, F.logSoftmax(logits, 1)), [1], false));
  const valid = F.cast(b.op('Not', [F.equal(labels64, b.scalar(ignoreIndex, 'int64'))], {}, 'crossEntropy'), logits.dtype);
  const count = F.maximum(F.reduceSum(valid, [0], false), 1);
  return F.div(F.reduceSum(F.mul(perItem, valid), [0], false), count);
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
