import { Graph, Node, removeNode } from '../ir/graph';

/**
 * Removes nodes none of whose outputs is used by another node or is a graph output, and initializers nothing
 * uses. Guarantees: the graph's outputs are computed by the same nodes as before; nothing unused remains.
 */
export function eliminateDeadNodes(graph: Graph): number {
  const live = new Set<Node>();
  const needed = new Set(graph.outputs);
  const stack = graph.outputs.map((v) => v.producer).filter((n): n is Node => n !== undefined);
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (live.has(node)) continue;
    live.add(node);
    for (const v of node.inputs) {
      if (v === undefined) continue;
      needed.add(v);
      if (v.producer !== undefined) stack.push(v.producer);
    }
    for (const a of node.attributes.values()) {
      // Subgraphs may read outer values by name.
      if (a.type === 'graph' || a.type === 'graphs') for (const name of graph.values.keys()) needed.add(graph.values.get(name)!);
    }
  }
  const dead = graph.nodes.filter((n) => !live.has(n));
  removeNode(graph, dead);
  for (const name of [...graph.initializers.keys()]) {
    const v = graph.values.get(name);
    if (v !== undefined && !needed.has(v) && !graph.inputs.includes(v)) {
      graph.initializers.delete(name);
      graph.values.delete(name);
    }
  }
  return dead.length;
}
