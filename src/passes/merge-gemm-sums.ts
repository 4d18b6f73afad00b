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
    const reader = out?.uses.length === 1 ? out.uses[0]?.node : undefined;
    if (out === undefined || (reader !== undefined && isOp(reader, 'Add') && !outputs.has(out))) continue;
    const tree = collectTree(root, outputs);
    if (tree === undefined || tree.leaves.length < minTerms || !compatible(tree.leaves)) continue;
    rewriter.merge(root, out, tree);
    for (const node of [...tree.adds, ...tree.leaves.map((l) => l.node)]) removed.add(node);
    merged++;
  }
  return merged;
}

/** A Gemm of the A^T B form, with its operands. */
interface Leaf {
  node: Node;
  a: Value & { shape: Shape };
  b: Value & { shape: Shape };
  alpha: number;
}

interface Tree {
  adds: Node[];
  leaves: Leaf[];
}

/** The Adds under `root` read by nothing but the tree, and the Gemm leaves; undefined if any leaf is not such a Gemm. */
function collectTree(root: Node, outputs: Set<Value>): Tree | undefined {
  const adds: Node[] = [];
  const leaves: Leaf[] = [];
  const stack = [root];
  for (let add = stack.pop(); add !== undefined; add = stack.pop()) {
    adds.push(add);
    if (add.inputs.length !== 2) return undefined;
    for (const input of add.inputs) {
      const producer = input?.producer;
      if (input === undefined || producer === undefined || input.uses.length !== 1 || outputs.has(input)) return undefined;
      if (isOp(producer, 'Add')) {
        stack.push(producer);
        continue;
      }
      const leaf = weightGradientGemm(producer);
      if (leaf === undefined) return undefined;
      leaves.push(leaf);
    }
  }
  return { adds, leaves };
}

/** Gemm(A, B) with transA = 1, transB = 0, no C and matrices of known rank: A^T B. */
function weightGradientGemm(node: Node): Leaf | undefined {
  if (!isOp(node, 'Gemm') || node.inputs.length !== 2 || (node.attr('transA', 'int') ?? 0) !== 1 || (node.attr('transB', 'int') ?? 0) !== 0) return undefined;
  const [a, b] = node.inputs;
  if (!isMatrix(a) || !isMatrix(b)) return undefined;
  return { node, a, b, alpha: node.attr('alpha', 'float') ?? 1 };
}

function isMatrix(v: Value | undefined): v is Value & { shape: Shape } {
  return v?.shape?.length === 2;
}

/** One alpha, one element type and equal second dimensions (by number or name) of A and of B across the leaves. */
function compatible([first, ...rest]: Leaf[]): boolean {
  return first !== undefined && rest.every((l) => l.alpha === first.alpha && l.a.dtype === first.a.dtype && l.b.dtype === first.b.dtype
    && l.a.shape[1] === first.a.shape[1] && l.b.shape[1] === first.b.shape[1]);
}

class GemmSumRewriter extends GraphRewriter {
  constructor(graph: Graph) {
    super(graph, 'gemmsum');
  }

  merge(root: Node, sum: Value, { adds, leaves }: Tree): void {
    const base = root.name || sum.name;
    const stacked = (parts: (Value & { shape: Shape })[]) => {
      const rows = parts.reduce<number | undefined>((total, v) => (typeof v.shape[0] === 'number' && total !== undefined ? total + v.shape[0] : undefined), 0);
      const shape: Shape = [rows ?? `${base}_rows`, parts[0]?.shape[1] ?? `${base}_cols`];
      return this.add('Concat', parts, { axis: 0 }, this.fresh(base, parts[0]?.dtype, shape));
    };
    const a = stacked(leaves.map((l) => l.a));
    const b = stacked(leaves.map((l) => l.b));
    const product = this.add('Gemm', [a, b], { transA: 1 }, this.fresh(base, sum.dtype, sum.shape));
    const added = [a, b, product].map((v) => v.producer).filter((n): n is Node => n !== undefined);
    const alpha = leaves[0]?.node.attributes.get('alpha');
    if (alpha !== undefined) added[2]?.attributes.set('alpha', alpha);
    // Placed where the root Add is: every leaf (and so every operand) comes before it.
    const nodes = this.graph.nodes.filter((n) => !added.includes(n));
    nodes.splice(nodes.indexOf(root), 0, ...added);
    this.graph.nodes.length = 0;
    for (const n of nodes) this.graph.nodes.push(n);
    this.replace(root, product);
    removeNode(this.graph, [...adds.filter((n) => n !== root), ...leaves.map((l) => l.node)]);
  }
}

function isOp(node: Node, opType: string): boolean {
  return node.opType === opType && node.domain === '';
}
