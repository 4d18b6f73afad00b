import { Graph, Node, removeNode, Value } from '../ir/graph';
import type { Shape } from '../ir/shape';
import { GraphRewriter } from './graph-rewriter';

/**
 * Moves the mask of a ReLU's gradient onto the grid of the max pool that reads the ReLU: per Conv-ReLU-MaxPool
 * block of a training graph, the Greater and the Where of the ReLU's rule then run on a quarter of the cells (2x2
 * windows). The rules stay their formulas; this form is faster on every provider, so finishGraph runs it for all
 * (reference CNN, CPU: about 9 % off a training step).
 *
 * Why it is exact: for windows that tile the input, MaxPool's rule (maxPoolBackprop in autodiff/rules/pool.ts) gives
 * dR = M * up(S), where M = cast(R == up(P)) marks the cells equal to their window's maximum P, S is each window's
 * share of the gradient and up() nearest-neighbour upsampling (Resize); the ReLU's rule then takes
 * Where(R > 0, dR, 0). Wherever M is 1, R equals up(P), so R > 0 exactly where up(P) > 0; wherever M is 0, both
 * forms give zero. Hence
 *     Where(R > 0, M * up(S), 0)  =  M * up(Where(P > 0, S, 0)),
 * the same number of nodes with the Greater and the Where on the pooled grid. Nothing else about P is needed (that
 * it is R's max pool): the equality mask alone ties R to P wherever the gradient can be non-zero.
 *
 * Conditions, checked on the graph (all in the default domain):
 * - Where(Greater(R, 0), G, 0), both zeros one-element constants;
 * - G = Mul(Cast(Equal(R, U)), V) (operands of Mul and Equal in either order), read by that Where alone, where
 *   U = Resize(P, ...) and V = Resize(S, ...) are one nearest-neighbour upsampling (same attributes, same other
 *   inputs or equal constants; P and S of one shape, U of R's shape, symbolic dimensions equal by name), and V is
 *   read by the Mul alone.
 * So a ReLU whose output something else reads too (its gradient is then a sum) and a pool whose gradient has the
 * other form (overlapping or padded windows) are left alone.
 *
 * Guarantees: the Where's output value keeps its name, readers and graph-output status; its elements are unchanged
 * wherever S is finite, except that a masked-out cell may become -0 instead of +0 (0 * S with S < 0); the nodes
 * the rewrite leaves unread are removed; the new nodes take the old Mul's place in the node order, which stays
 * topological. Returns the number of masks moved.
 */
export function fuseReluMask(graph: Graph): number {
  const rewriter = new ReluMaskRewriter(graph);
  let moved = 0;
  for (const where of [...graph.nodes]) {
    const match = matchMovableMask(graph, where);
    if (match === undefined) continue;
    rewriter.move(where, match);
    moved++;
  }
  return moved;
}

interface Match {
  greater: Node;
  mul: Node;
  /** Operand index of V = Resize(S) in the Mul. */
  upIndex: number;
  resize: Node;
  pooled: Value;
}

function matchMovableMask(graph: Graph, where: Node): Match | undefined {
  if (!isOp(where, 'Where')) return undefined;
  const [cond, g, zero] = where.inputs;
  const greater = cond?.producer;
  if (greater === undefined || !isOp(greater, 'Greater') || g === undefined || !isZero(graph, zero)) return undefined;
  const [r, threshold] = greater.inputs;
  if (r?.shape === undefined || !isZero(graph, threshold)) return undefined;
  const mul = g.producer;
  if (mul === undefined || !isOp(mul, 'Mul') || !onlyReader(graph, g, where)) return undefined;
  for (const upIndex of [0, 1]) {
    const mask = mul.inputs[1 - upIndex]?.producer;
    const resize = mul.inputs[upIndex]?.producer;
    const equal = mask !== undefined && isOp(mask, 'Cast') ? mask.inputs[0]?.producer : undefined;
    if (resize === undefined || equal === undefined || !isOp(equal, 'Equal') || !isNearestResize(resize)) continue;
    if (!onlyReader(graph, resize.outputs[0]!, mul)) continue;
    const [a, b] = equal.inputs;
    const pooledUp = a === r ? b : b === r ? a : undefined;
    const maskResize = pooledUp?.producer;
    if (maskResize === undefined || !isNearestResize(maskResize) || !sameShape(pooledUp!.shape, r.shape)) continue;
    if (!sameResize(graph, maskResize, resize)) continue;
    const pooled = maskResize.inputs[0];
    const share = resize.inputs[0];
    if (pooled?.shape === undefined || share === undefined || !sameShape(pooled.shape, share.shape)) continue;
    if (!rankAtMost(graph, threshold!, pooled.shape.length) || !rankAtMost(graph, zero!, pooled.shape.length)) continue;
    return { greater, mul, upIndex, resize, pooled };
  }
  return undefined;
}

class ReluMaskRewriter extends GraphRewriter {
  constructor(graph: Graph) {
    super(graph, 'relumask');
  }

  /** Builds M * up(Where(P > 0, S, 0)) in place of the Where, then drops what only the old form read. */
  move(where: Node, { greater, mul, upIndex, resize, pooled }: Match): void {
    const base = where.name || where.outputs[0]!.name;
    const share = resize.inputs[0]!;
    const cond = this.add('Greater', [pooled, greater.inputs[1]], {}, this.fresh(base, 'bool', pooled.shape));
    const masked = this.add('Where', [cond, share, where.inputs[2]], {}, this.fresh(base, share.dtype, share.shape));
    const up = resize.outputs[0]!;
    const upsampled = this.add('Resize', [masked, ...resize.inputs.slice(1)], {}, this.fresh(base, up.dtype, up.shape));
    for (const [key, value] of resize.attributes) upsampled.producer!.attributes.set(key, value);
    const operands = [...mul.inputs];
    operands[upIndex] = upsampled;
    const g = mul.outputs[0]!;
    const product = this.add('Mul', operands, {}, this.fresh(base, g.dtype, g.shape));
    // Placed where the old Mul is: what they read is computed before it, what reads them comes after the Where.
    const added = new Set([cond, masked, upsampled, product].map((v) => v.producer!));
    const nodes = this.graph.nodes.filter((n) => !added.has(n));
    nodes.splice(nodes.indexOf(mul), 0, ...added);
    this.graph.nodes.length = 0;
    for (const n of nodes) this.graph.nodes.push(n);
    this.replace(where, product);
    for (const node of [mul, resize, greater]) {
      if (node.outputs.every((v) => v === undefined || (v.uses.length === 0 && !this.graph.outputs.includes(v)))) removeNode(this.graph, node);
    }
  }
}

function isOp(node: Node, opType: string): boolean {
  return node.opType === opType && node.domain === '';
}

function onlyReader(graph: Graph, v: Value, reader: Node): boolean {
  return v.uses.length === 1 && v.uses[0]!.node === reader && !graph.outputs.includes(v);
}

/** A one-element constant (an initializer, not a graph input) equal to zero. */
function isZero(graph: Graph, v: Value | undefined): boolean {
  const data = constant(graph, v);
  return data !== undefined && data.size === 1 && data.toNumbers()[0] === 0;
}

function rankAtMost(graph: Graph, v: Value, rank: number): boolean {
  return constant(graph, v)!.dims.length <= rank;
}

function constant(graph: Graph, v: Value | undefined) {
  return v === undefined || graph.inputs.includes(v) ? undefined : graph.initializers.get(v.name);
}

/** Resize in nearest mode, where each output cell copies one input cell (tf_crop_and_resize may extrapolate instead). */
function isNearestResize(node: Node): boolean {
  return isOp(node, 'Resize') && (node.attr('mode', 'string') ?? 'nearest') === 'nearest'
    && node.attr('coordinate_transformation_mode', 'string') !== 'tf_crop_and_resize';
}

/** Two Resize nodes that map cells alike (given inputs of one shape): same attributes, same roi/scales/sizes or equal constants. */
function sameResize(graph: Graph, a: Node, b: Node): boolean {
  if (a.attributes.size !== b.attributes.size) return false;
  for (const [key, value] of a.attributes) {
    if (JSON.stringify(value) !== JSON.stringify(b.attributes.get(key))) return false;
  }
  const count = Math.max(a.inputs.length, b.inputs.length);
  for (let i = 1; i < count; i++) {
    const [u, v] = [a.inputs[i], b.inputs[i]];
    if (u === v) continue;
    const [p, q] = [constant(graph, u), constant(graph, v)];
    if (p === undefined || q === undefined || p.dtype !== q.dtype || !sameShape(p.dims, q.dims)) return false;
    if (!p.bytes.every((byte, k) => byte === q.bytes[k])) return false;
  }
  return true;
}

function sameShape(a: Shape | readonly number[] | undefined, b: Shape | readonly number[] | undefined): boolean {
  return a !== undefined && b !== undefined && a.length === b.length && a.every((d, i) => d === b[i]);
}
