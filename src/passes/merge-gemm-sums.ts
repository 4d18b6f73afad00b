import { Graph, Node, removeNode, Value } from '../ir/graph';
import type { Shape } from '../ir/shape';
import { GraphRewriter } from './graph-rewriter';

/**
 * A weight that several Gemms read (an unrolled recurrent layer's W_hh at every time step) gets the sum of their
 * weight gradients: one thin product per step, A_t^T B_t with A_t = the step's output gradient [N, 4H] and B_t its
 * input [N, H], then a chain of Adds. That is k products with inner dimension N (a batch of 32) that each write the
 * whole [4H, H] matrix, and k - 1 Adds over it. The same sum is one product over the stacked steps:
 *     sum_t A_t^T B_t  =  concat_t(A_t)^T concat_t(B_t),
 * with inner dimension k N. This pass makes that rewrite; it is faster on every provider (the decoder of
 * bench/decoder.ts: 20 products and 19 Adds of [2048, 512], about 16 ms a step on 2 cores, became one product).
 *
 * Conditions, checked on the graph (default domain): a tree of Adds whose inner Adds are read by the tree alone,
 * with at least `minTerms` leaves, each a Gemm with transA = 1, transB = 0, no C, the same alpha and A and B of
 * rank 2 with equal second dimensions (by number or name) across the leaves, read by the tree alone. Trees with
 * any other kind of leaf are left alone.
 *
 * Guarantees: the tree's root value keeps its name, readers and graph-output status; it equals the sum up to
 * float rounding (the products are summed in a different order); the Concats and the Gemm take the root Add's
 * place in the node order, after everything they read, so the order stays topological; the replaced Adds and
 * Gemms are removed. Returns the number of sums merged.
 */
export function mergeGemmSums(graph: Graph, minTerms = 3): number {
  const rewriter = new GemmSumRewriter(graph);
  let merged = 0;
  const outputs = new Set(graph.outputs);
  const removed = new Set<Node>();
  for (const root of [...graph.nodes]) {
    if (!isOp(root, 'Add') || removed.has(root)) continue;
    // Only roots: an Add read by a single Add belongs to that Add's tree.
    const out = root.outputs[0];
    if (out === undefined || (out.uses.length === 1 && isOp(out.uses[0]!.node, 'Add') && !outputs.has(out))) continue;
    const tree = collectTree(root, outputs);
    if (tree === undefined || tree.leaves.length < minTerms || !compatible(tree.leaves)) continue;
    rewriter.merge(root, tree);
    for (const node of [...tree.adds, ...tree.leaves]) removed.add(node);
    merged++;
  }
  return merged;
}

interface Tree {
  adds: Node[];
  leaves: Node[];
}

/** The Adds under `root` read by nothing but the tree, and the Gemm leaves; undefined if any leaf is not such a Gemm. */
function collectTree(root: Node, outputs: Set<Value>): Tree | undefined {
  const adds: Node[] = [];
  const leaves: Node[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const add = stack.pop()!;
    adds.push(add);
    if (add.inputs.length !== 2) return undefined;
    for (const input of add.inputs) {
      const producer = input?.producer;
      if (input === undefined || producer === undefined || input.uses.length !== 1 || outputs.has(input)) return undefined;
      if (isOp(producer, 'Add')) stack.push(producer);
      else if (isWeightGradientGemm(producer)) leaves.push(producer);
      else return undefined;
    }
  }
  return { adds, leaves };
}

/** Gemm(A, B) with transA = 1, transB = 0 and no C: A^T B. */
function isWeightGradientGemm(node: Node): boolean {
  return isOp(node, 'Gemm') && node.inputs.length === 2 && (node.attr('transA', 'int') ?? 0) === 1 && (node.attr('transB', 'int') ?? 0) === 0
    && node.inputs.every((v) => v?.shape?.length === 2);
}

function compatible(leaves: Node[]): boolean {
  const first = leaves[0]!;
  const alpha = first.attr('alpha', 'float') ?? 1;
  const [a, b] = [first.inputs[0]!.shape!, first.inputs[1]!.shape!];
  return leaves.every((g) => (g.attr('alpha', 'float') ?? 1) === alpha && sameDim(g.inputs[0]!.shape!, a, 1) && sameDim(g.inputs[1]!.shape!, b, 1)
    && g.inputs[0]!.dtype === first.inputs[0]!.dtype && g.inputs[1]!.dtype === first.inputs[1]!.dtype);
}

function sameDim(x: Shape, y: Shape, axis: number): boolean {
  return x[axis] === y[axis];
}

class GemmSumRewriter extends GraphRewriter {
  constructor(graph: Graph) {
    super(graph, 'gemmsum');
  }

  merge(root: Node, { adds, leaves }: Tree): void {
    const sum = root.outputs[0]!;
    const base = root.name || sum.name;
    const stacked = (operand: 0 | 1) => {
      const parts = leaves.map((g) => g.inputs[operand]!);
      const rows = parts.reduce<number | undefined>((total, v) => (typeof v.shape![0] === 'number' && total !== undefined ? total + v.shape![0] : undefined), 0);
      const shape: Shape = [rows ?? `${base}_rows`, parts[0]!.shape![1]!];
      return this.add('Concat', parts, { axis: 0 }, this.fresh(base, parts[0]!.dtype, shape));
    };
    const [a, b] = [stacked(0), stacked(1)];
    const product = this.add('Gemm', [a, b], { transA: 1 }, this.fresh(base, sum.dtype, sum.shape));
    const alpha = leaves[0]!.attributes.get('alpha');
    if (alpha !== undefined) product.producer!.attributes.set('alpha', alpha);
    // Placed where the root Add is: every leaf (and so every operand) comes before it.
    const added = [a, b, product].map((v) => v.producer!);
    const nodes = this.graph.nodes.filter((n) => !added.includes(n));
    nodes.splice(nodes.indexOf(root), 0, ...added);
    this.graph.nodes.length = 0;
    for (const n of nodes) this.graph.nodes.push(n);
    this.replace(root, product);
    removeNode(this.graph, [...adds.filter((n) => n !== root), ...leaves]);
  }
}

function isOp(node: Node, opType: string): boolean {
  return node.opType === opType && node.domain === '';
}
