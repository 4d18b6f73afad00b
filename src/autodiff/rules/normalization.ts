import * as F from '../../dsl/functional';
import type { GradContext, GradRule } from '../gradient-rule';
import { batchStatistics, countOver, nonChannelAxes, once, perChannel } from '../helpers';

export const BatchNormalization: GradRule = (ctx) => (ctx.int('training_mode', 0) === 1 ? batchNormTrainingGrad(ctx) : batchNormEvalGrad(ctx));

/**
 * Training mode normalizes with the batch statistics, which depend on X:
 *   dX = scale * invstd * (dY - mean(dY) - xhat * mean(dY * xhat)),  dScale = sum(dY * xhat),  dBias = sum(dY).
 * ONNX's BatchNormalization does not output the batch mean and variance, so they are recomputed here.
 * The running statistics (inputs 3 and 4) get no gradient.
 */
function batchNormTrainingGrad(ctx: GradContext) {
  const x = ctx.input(0);
  const axes = nonChannelAxes(x.rank);
  const eps = ctx.float('epsilon', 1e-5);
  const stats = once(() => batchStatistics(x, eps));
  const g = () => ctx.outputGrad();
  const sumG = once(() => F.reduceSum(g(), axes));
  const sumGXhat = once(() => F.reduceSum(F.mul(g(), stats().xhat()), axes));
  return [
    () => {
      // dX = g * k - xhat * (k * sum(g xhat) / n) - k * sum(g) / n with k = scale * invstd: the per-channel
      // factors are computed on [1, C, 1, 1] tensors, leaving four passes over the activation.
      const count = countOver(x, axes);
      const { invstd, xhat } = stats();
      const k = F.mul(perChannel(ctx.input(1), x.rank), invstd());
      const xhatFactor = F.div(F.mul(k, sumGXhat()), count);
      const offset = F.div(F.mul(k, sumG()), count);
      return F.sub(F.mul(g(), k), F.add(F.mul(xhat(), xhatFactor), offset));
    },
    () => F.reshape(sumGXhat(), [-1]),
    () => F.reshape(sumG(), [-1]),
  ];
}

/** Eval mode is an affine map per channel: dX = dY * scale / sqrt(var + eps). */
function batchNormEvalGrad(ctx: GradContext) {
  const x = ctx.input(0);
  const axes = nonChannelAxes(x.rank);
  const invstd = once(() => perChannel(F.reciprocal(F.sqrt(F.add(ctx.input(4), ctx.float('epsilon', 1e-5)))), x.rank));
  const g = () => ctx.outputGrad();
  const scaled = once(() => F.mul(perChannel(ctx.input(1), x.rank), invstd()));
  const centered = once(() => F.sub(x, perChannel(ctx.input(3), x.rank)));
  return [
    () => F.mul(g(), scaled()),
    () => F.reduceSum(F.mul(g(), F.mul(centered(), invstd())), axes, false),
    () => F.reduceSum(g(), axes, false),
    // Running statistics are constants in training, but a frozen model may still be differentiated through them.
    () => F.neg(F.reduceSum(F.mul(g(), scaled()), axes, false)),
    () => F.reduceSum(F.mul(F.mul(g(), scaled()), F.mul(centered(), F.mul(F.mul(invstd(), invstd()), -0.5))), axes, false),
  ];
}

/** The forward pass's mask is reused: dX = dY * mask / (1 - ratio). */
export const Dropout: GradRule = (ctx) => [() => {
  const g = ctx.outputGrad();
  const training = ctx.node.inputs[2] === undefined ? false : ctx.constant(2)?.toNumbers()[0] !== 0;
  if (!training) return g;
  if (ctx.node.outputs[1] === undefined) throw new Error('the gradient of a training-mode Dropout needs its mask output');
  const ratio = ctx.node.inputs[1] === undefined ? 0.5 : ctx.constant(1)?.toNumbers()[0];
  if (ratio === undefined) throw new Error('the gradient of Dropout needs a constant ratio');
  return F.where(ctx.output(1), F.mul(g, 1 / (1 - ratio)), 0);
}];
