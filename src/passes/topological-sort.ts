import type { Graph, Node } from '../ir/graph';

/**
 * Orders a graph's nodes so that every node comes after the producers of its inputs (ONNX requires it), keeping
 * the existing order wherever it is already valid. Guarantees: same node set, topological order. Throws on a cycle.
 */
export function topologicalSort(graph: Graph): void {
  const nodes = graph.nodes;
  const position = new Map<Node, number>(nodes.map((n, i) => [n, i]));
  const done = new Set<Node>();
  const visiting = new Set<Node>();
  const order: Node[] = [];
  const visit = (node: Node) => {
    if (done.has(node)) return;
    if (visiting.has(node)) throw new Error(`graph '${graph.name}' has a cycle through node '${node.name}'`);
    visiting.add(node);
    for (const v of node.inputs) {
      const producer = v?.producer;
      if (producer !== undefined && position.has(producer)) visit(producer);
    }
    visiting.delete(node);
    done.add(node);
    order.push(node);
  };
  nodes.forEach(visit);
  nodes.splice(0, nodes.length, ...order);
}
