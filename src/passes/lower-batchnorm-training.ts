import type { GraphBuilder } from '../dsl/builder';
import * as F from '../dsl/functional';
import { Tensor } from '../dsl/builder';
import { floatAttr } from '../ir/attribute';
import type { Node, Value } from '../ir/graph';
import { batchStatistics } from '../autodiff/helpers';
import { topologicalSort } from './topological-sort';

/**
 * Rewrites every training-mode BatchNormalization as standard ops that every execution provider runs (ORT's
 * WebGPU provider rejects training mode): batch statistics from ReduceMean, normalization by an inference-mode
 * BatchNormalization fed the batch statistics, running statistics updated as PyTorch does (the running variance
 * with the unbiased batch variance). Run it after the gradients are built: the gradient rule of the fused node
 * recomputes the same statistics with the same ops, which ORT's common-subexpression elimination then shares.
 * Guarantees: no BatchNormalization with training_mode=1 remains; output values keep their names and uses.
 */
export function lowerBatchNormTraining(builder: GraphBuilder): number {
  const graph = builder.graph;
  const targets = graph.nodes.filter((n) => n.opType === 'BatchNormalization' && n.attr('training_mode', 'int') === 1);
  for (const node of targets) {
    builder.withScope(node.origin?.scope ?? '', () => builder.run(() => lower(builder, node)));
    graph.nodes.splice(graph.nodes.indexOf(node), 1);
  }
  if (targets.length > 0) topologicalSort(graph);
  return targets.length;
}

function lower(b: GraphBuilder, node: Node): void {
  const [x, scale, bias, runningMean, runningVar] = node.inputs.map((v) => (v === undefined ? undefined : new Tensor(b, v)));
  const eps = node.attr('epsilon', 'float') ?? 1e-5;
  const momentum = node.attr('momentum', 'float') ?? 0.9;
  const { mean, variance, axes } = batchStatistics(x!, eps);
  const meanC = F.reshape(mean, [-1]);
  const varC = F.reshape(variance, [-1]);
  const y = b.op('BatchNormalization', [x!, scale!, bias!, meanC, varC], { epsilon: floatAttr(eps) }, 'batchNorm');
  adopt(b, y, node.outputs[0]!);
  if (node.outputs[1] !== undefined) adopt(b, F.add(F.mul(runningMean!, momentum), F.mul(meanC, 1 - momentum)), node.outputs[1]);
  if (node.outputs[2] !== undefined) {
    // PyTorch updates the running variance with the unbiased estimate: var * n / (n - 1), n = N * H * W.
    const n = F.cast(b.op('ReduceProd', [F.gather(b.op('Shape', [x!], {}, 'shape'), b.ints(axes))], { keepdims: 0 }, 'count'), x!.dtype);
    const unbiased = F.div(F.mul(varC, n), F.maximum(F.sub(n, 1), 1));
    adopt(b, F.add(F.mul(runningVar!, momentum), F.mul(unbiased, 1 - momentum)), node.outputs[2]);
  }
}

/** Makes the node that produced `fresh` produce the existing value `old` instead (keeping its name and uses). */
function adopt(b: GraphBuilder, fresh: Tensor, old: Value): void {
  const producer = fresh.value.producer!;
  const index = producer.outputs.indexOf(fresh.value);
  producer.outputs[index] = old;
  old.producer = producer;
  b.graph.values.delete(fresh.value.name);
}
