import { Graph, Node, removeNode, Value } from '../ir/graph';
import { defaultOpset, Model } from '../ir/model';
import { TensorData } from '../ir/tensor';
import { topologicalSort } from './topological-sort';

/**
 * WebGPU binds each input and output of a kernel as a storage buffer, and a shader stage may bind only so many:
 * 16 on an H200's Vulkan driver, 8 by default in browsers. A Split into more parts fails at run time ("Too many
 * storage buffers in shader"), and unrolled sequence models make such Splits: the LSTM over 22 time steps, the
 * gradient of a Concat of 22 per-step outputs. This pass rewrites each Split with more than `maxOutputs` outputs
 * into a tree of Splits (first into groups of consecutive parts, then each group into its parts); the result is
 * the same tensors under the same names. Returns the number of Splits rewritten.
 */
export function limitSplitOutputs(model: Model, maxOutputs = 7): number {
  if (!Number.isInteger(maxOutputs) || maxOutputs < 2) throw new Error(`maxOutputs must be an integer of at least 2, got ${maxOutputs}`);
  // Before opset 13 the parts' sizes are an attribute, which this rewrite does not write: such models stay as they are.
  if ((defaultOpset(model) ?? 0) < 13) return 0;
  const graph = model.graph;
  let rewritten = 0;
  let fresh = 0;
  const freshValue = (base: string, like: Value) => {
    let name: string;
    do name = `${base}/split_group_${fresh++}`; while (graph.values.has(name));
    return graph.addValue(new Value(name, like.dtype));
  };
  const constant = (base: string, sizes: number[]) => {
    const v = freshValue(`${base}/sizes`, new Value('', 'int64'));
    v.shape = [sizes.length];
    graph.initializers.set(v.name, TensorData.int64([sizes.length], sizes));
    return v;
  };
  // New Splits may themselves have too many outputs (more than maxOutputs groups): a worklist until none has.
  const pending = graph.nodes.filter((n) => isWideSplit(n, maxOutputs));
  for (let node = pending.pop(); node !== undefined; node = pending.pop()) {
    const x = node.inputs[0]!;
    const sizes = splitSizes(graph, node);
    if (sizes === undefined) continue;
    const axis = node.attr('axis', 'int') ?? 0;
    const base = node.name || node.outputs.find((o) => o !== undefined)?.name || 'split';
    const outputs = node.outputs.map((o) => o ?? freshValue(base, x));
    const groups: number[][] = [];
    const perGroup = Math.ceil(outputs.length / Math.min(maxOutputs, Math.ceil(outputs.length / maxOutputs)));
    for (let i = 0; i < outputs.length; i += perGroup) groups.push(Array.from({ length: Math.min(perGroup, outputs.length - i) }, (_, k) => i + k));
    const sum = (idx: number[]) => idx.reduce((s, i) => s + sizes[i]!, 0);
    const top = new Node('Split', `${base}/groups`);
    top.addInput(x);
    top.addInput(constant(base, groups.map(sum)));
    top.attributes.set('axis', { type: 'int', value: axis });
    const inner: Node[] = [];
    for (const group of groups) {
      if (group.length === 1) {
        top.addOutput(outputs[group[0]!]);
        continue;
      }
      const part = freshValue(base, x);
      top.addOutput(part);
      const split = new Node('Split', `${part.name}/parts`);
      split.addInput(part);
      split.addInput(constant(base, group.map((i) => sizes[i]!)));
      split.attributes.set('axis', { type: 'int', value: axis });
      for (const i of group) split.addOutput(outputs[i]);
      inner.push(split);
    }
    // Drop the old node first: its outputs now belong to the new Splits, so they stay in the graph.
    removeNode(graph, node);
    const oldSizes = node.inputs[1];
    if (oldSizes !== undefined && oldSizes.uses.length === 0 && graph.initializers.has(oldSizes.name) && !graph.outputs.includes(oldSizes)) {
      graph.initializers.delete(oldSizes.name);
      graph.values.delete(oldSizes.name);
    }
    for (const n of [top, ...inner]) {
      graph.addNode(n);
      if (isWideSplit(n, maxOutputs)) pending.push(n);
    }
    rewritten++;
  }
  if (rewritten > 0) topologicalSort(graph);
  return rewritten;
}

function isWideSplit(node: Node, maxOutputs: number): boolean {
  return node.domain === '' && node.opType === 'Split' && node.outputs.length > maxOutputs;
}

/** The parts' sizes: the constant `split` input, else equal parts of a known dimension; undefined if unknown. */
function splitSizes(graph: Graph, node: Node): number[] | undefined {
  const given = node.inputs[1];
  if (given !== undefined) {
    const data = graph.initializers.get(given.name);
    return data === undefined ? undefined : Array.from(data.typed() as BigInt64Array, Number);
  }
  // Opset 13-17 without `split`: equal parts (the dimension divides evenly, or the model is invalid).
  const x = node.inputs[0]!;
  const rank = x.shape?.length;
  if (rank === undefined) return undefined;
  const axis = node.attr('axis', 'int') ?? 0;
  const dim = x.shape![axis < 0 ? axis + rank : axis];
  if (typeof dim !== 'number' || dim % node.outputs.length !== 0) return undefined;
  return new Array<number>(node.outputs.length).fill(dim / node.outputs.length);
}
