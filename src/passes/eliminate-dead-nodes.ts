import type { Graph, Node } from '../ir/graph';

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
  const before = graph.nodes.length;
  const kept = graph.nodes.filter((n) => live.has(n));
  for (const n of graph.nodes) {
    if (live.has(n)) continue;
    n.outputs.forEach((v) => v && graph.values.delete(v.name));
    n.inputs.forEach((v) => {
      if (v === undefined) return;
      const i = v.uses.findIndex((u) => u.node === n);
      if (i >= 0) v.uses.splice(i, 1);
    });
  }
  graph.nodes.splice(0, graph.nodes.length, ...kept);
  for (const name of [...graph.initializers.keys()]) {
    const v = graph.values.get(name);
    if (v !== undefined && !needed.has(v) && !graph.inputs.includes(v)) {
      graph.initializers.delete(name);
      graph.values.delete(name);
    }
  }
  return before - kept.length;
}
