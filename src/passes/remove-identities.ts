import { Graph, Node, removeNode, replaceAllUsesWith } from '../ir/graph';

/** Ops that are the identity at inference: Identity, and Dropout whose mask nobody reads (eval mode). */
function isInferenceIdentity(node: Node): boolean {
  if (node.domain !== '') return false;
  if (node.opType === 'Identity') return true;
  if (node.opType !== 'Dropout') return false;
  const mask = node.outputs[1];
  const trainingMode = node.inputs[2];
  return (mask === undefined || mask.uses.length === 0) && trainingMode === undefined;
}

/**
 * Removes Identity and inference-mode Dropout nodes, rewiring their readers to the input. When the removed node's
 * output is a graph output, the producer of its input is made to produce it instead (so graph outputs keep their
 * names); a node that copies a graph input straight to a graph output is kept. Returns the number removed.
 */
export function removeIdentities(graph: Graph): number {
  let removed = 0;
  for (const node of [...graph.nodes]) {
    if (!isInferenceIdentity(node)) continue;
    const x = node.inputs[0];
    const y = node.outputs[0];
    if (x === undefined || y === undefined) continue;
    if (graph.outputs.includes(y)) {
      const producer = x.producer;
      if (producer === undefined || graph.outputs.includes(x) || x.uses.length !== 1) continue;
      producer.outputs[producer.outputs.indexOf(x)] = y;
      y.producer = producer;
      graph.values.delete(x.name);
    } else {
      replaceAllUsesWith(y, x);
    }
    // Drops y (unless the producer of x took it over above) and an unread Dropout mask.
    removeNode(graph, node);
    removed++;
  }
  return removed;
}
