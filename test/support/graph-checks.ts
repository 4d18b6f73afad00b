/** Checks a rewritten graph must pass: what passes promise about node order and uses. */
import type { Graph, Value } from '../../src/ir/graph';

/** Every node's inputs come from earlier nodes (or are inputs/initializers), and every value's uses match its readers. */
export function expectTopologicalWithConsistentUses(graph: Graph): void {
  const seen = new Set<Value>([...graph.inputs, ...[...graph.initializers.keys()].flatMap((k) => graph.values.get(k) ?? [])]);
  for (const n of graph.nodes) {
    for (const [i, v] of n.inputs.entries()) {
      if (v === undefined) continue;
      expect(seen.has(v)).toBe(true);
      expect(v.uses).toContainEqual({ node: n, index: i });
    }
    n.outputs.forEach((v) => v && seen.add(v));
  }
  for (const v of graph.values.values()) for (const u of v.uses) expect(graph.nodes).toContain(u.node);
}
