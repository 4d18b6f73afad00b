import { batchStatistics, countOver, nonChannelAxes, once, perChannel } from '../autodiff/helpers';
import * as F from '../dsl/functional';
import { dimsCompatible } from '../ir/shape';
import { requireFloat } from './common';
import { describe } from './infer-context';
import type { GradContext, OpRule } from './types';

/**
 * BatchNormalization (opset 15): X [N, C, ...] with per-channel scale, bias, mean, var. In training mode it also
 * outputs the updated running mean and variance.
 */
export const BatchNormalization: OpRule = {
  infer(ctx) {
    const x = ctx.input(0, 'input');
    requireFloat(ctx, x, 'input');
    if (x.shape.length < 2) ctx.fail(`input must be [N, C, ...], got ${describe(x)}`);
    const c = x.shape[1]!;
    const roles = ['scale', 'bias', 'running mean', 'running variance'];
    roles.forEach((role, i) => {
      const t = ctx.input(i + 1, role);
      if (t.shape.length !== 1 || !dimsCompatible(t.shape[0]!, c)) ctx.fail(`input has ${c} channels, ${role} is ${describe(t)}`);
    });
    const training = ctx.int('training_mode', 0) === 1;
    const stat = { dtype: x.dtype, shape: [c] };
    if (!training && ctx.outputCount > 1) ctx.fail('running statistics are outputs only in training mode');
    return training ? [x, stat, stat].slice(0, Math.max(1, ctx.outputCount)) : [x];
  },
  grad: (ctx) => (ctx.int('training_mode', 0) === 1 ? batchNormTrainingGrad(ctx) : batchNormEvalGrad(ctx)),
};

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

/** Dropout (opset 13): data, optional ratio and training_mode -> output and optional bool mask. */
export const Dropout: OpRule = {
  infer(ctx) {
    const x = ctx.input(0, 'input');
    requireFloat(ctx, x, 'input');
    const ratio = ctx.constant(1);
    if (ratio !== undefined) {
      const r = ratio.toNumbers()[0]!;
      if (!(r >= 0 && r < 1)) ctx.fail(`ratio must be in [0, 1), got ${r}`);
    }
    const training = ctx.optionalInput(2);
    if (training !== undefined && training.dtype !== 'bool') ctx.fail(`training_mode must be bool, got ${training.dtype}`);
    return ctx.outputCount > 1 ? [x, { dtype: 'bool', shape: x.shape }] : [x];
  },
  // The forward pass's mask is reused: dX = dY * mask / (1 - ratio).
  grad: (ctx) => [() => {
    const g = ctx.outputGrad();
    const training = ctx.node.inputs[2] === undefined ? false : ctx.constant(2)?.toNumbers()[0] !== 0;
    if (!training) return g;
    if (ctx.node.outputs[1] === undefined) throw new Error('the gradient of a training-mode Dropout needs its mask output');
    const ratio = ctx.node.inputs[1] === undefined ? 0.5 : ctx.constant(1)?.toNumbers()[0];
    if (ratio === undefined) throw new Error('the gradient of Dropout needs a constant ratio');
    return F.where(ctx.output(1), F.mul(g, 1 / (1 - ratio)), 0);
  }],
};
