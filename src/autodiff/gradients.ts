import type { GraphBuilder } from '../dsl/builder';
import { Tensor } from '../dsl/builder';
import { isFloatingDType } from '../ir/dtype';
import type { Node, Value } from '../ir/graph';
import { formatShape, isStatic } from '../ir/shape';
import { TensorData } from '../ir/tensor';
import { isKnownOp } from '../ops/registry';
import { GradContext, NO_GRADIENT } from './gradient-rule';
import { GRADIENT_RULES } from './gradient-rules';
import { zerosLike } from './helpers';

/** A gradient rule that failed or produced a tensor of the wrong shape, naming the forward node. */
export class GradientError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GradientError';
  }
}

/**
 * Reverse-mode differentiation: adds to `loss`'s graph the nodes that compute d loss / d t for each t in `wrt`
 * and returns those gradient tensors (same order). Only the part of the graph that lies between `wrt` and the loss
 * is differentiated: frozen parameters, integer paths and branches that do not reach the loss get no gradient
 * work. A value used by several nodes gets the sum of their contributions. Inputs that do not affect the loss
 * get zeros.
 */
export function gradients(loss: Tensor, wrt: readonly Tensor[]): Tensor[] {
  const b = loss.builder;
  const size = isStatic(loss.shape) ? loss.shape.reduce((x, y) => x * y, 1) : NaN;
  if (size !== 1) throw new GradientError(`the loss must be a single number, got shape ${formatShape(loss.shape)}`);
  const nodes = [...b.graph.nodes];
  const forward = new Set(nodes);
  const dependsOnWrt = forwardReach(nodes, new Set(wrt.map((t) => t.value)));
  const reachesLoss = backwardReach(nodes, loss.value);
  const relevant = (v: Value | undefined): v is Value => v !== undefined && dependsOnWrt.has(v) && reachesLoss.has(v) && isFloatingDType(v.dtype!);

  const contributions = new Map<Value, Tensor[]>();
  const total = (v: Value): Tensor | undefined => {
    const parts = contributions.get(v);
    if (parts === undefined || parts.length === 0) return undefined;
    if (parts.length > 1) {
      const sum = b.withScope('backward/accumulate', () => parts.reduce((acc, t) => b.op('Add', [acc, t], {}, 'accumulate')));
      contributions.set(v, [sum]);
    }
    return contributions.get(v)![0];
  };
  contributions.set(loss.value, [b.constant(TensorData.fromArray(loss.dtype, loss.shape as number[], [1]))]);

  b.run(() => {
    for (let n = nodes.length - 1; n >= 0; n--) {
      const node = nodes[n]!;
      if (!node.outputs.some(relevant)) continue;
      const needs = node.inputs.map(relevant);
      if (!needs.some(Boolean)) continue;
      const outputGrads = node.outputs.map((o) => (o !== undefined && relevant(o) ? total(o) : undefined));
      if (outputGrads.every((g) => g === undefined)) continue;
      const scope = `backward${node.origin?.scope ? `/${node.origin.scope}` : ''}`;
      const where = `${node.opType} '${node.name}'${node.origin ? ` (${node.origin.op} in '${node.origin.scope || b.graph.name}')` : ''}`;
      if (!isKnownOp(node.opType) || node.domain !== '') throw new GradientError(`no gradient rule for ${node.domain ? `${node.domain}.` : ''}${node.opType} (node '${node.name}')`);
      const rule = GRADIENT_RULES[node.opType];
      if (rule === NO_GRADIENT) continue;
      const ctx = gradContext(b, node, outputGrads, needs, forward);
      b.withScope(scope, () => {
        let thunks;
        try {
          thunks = rule(ctx);
        } catch (err) {
          throw new GradientError(`gradient of ${where}: ${(err as Error).message}`);
        }
        node.inputs.forEach((v, i) => {
          const thunk = thunks[i];
          if (!needs[i] || thunk === undefined) return;
          let g: Tensor;
          try {
            g = thunk();
          } catch (err) {
            if (err instanceof GradientError) throw err;
            throw new GradientError(`gradient of ${where}, input ${i}: ${(err as Error).message}`);
          }
          checkShape(g, v!, where, i);
          const list = contributions.get(v!) ?? [];
          list.push(g);
          contributions.set(v!, list);
        });
      });
    }
  });
  return b.run(() => wrt.map((t) => total(t.value) ?? b.withScope('backward', () => zerosLike(t))));
}

/** Marks each trainable tensor's gradient as a graph output named `<name>_grad`, as ONNX Runtime's artifacts do. */
export function addGradientOutputs(loss: Tensor, wrt: readonly Tensor[]): Tensor[] {
  const grads = gradients(loss, wrt);
  return grads.map((g, i) => loss.builder.output(`${wrt[i]!.name}_grad`, g));
}

function forwardReach(nodes: readonly Node[], start: Set<Value>): Set<Value> {
  const reach = new Set(start);
  for (const node of nodes) {
    if (isKnownOp(node.opType) && GRADIENT_RULES[node.opType] === NO_GRADIENT) continue;
    if (node.inputs.some((v) => v !== undefined && reach.has(v))) node.outputs.forEach((o) => o && reach.add(o));
  }
  return reach;
}

function backwardReach(nodes: readonly Node[], loss: Value): Set<Value> {
  const reach = new Set<Value>([loss]);
  for (let n = nodes.length - 1; n >= 0; n--) {
    const node = nodes[n]!;
    if (node.outputs.some((o) => o !== undefined && reach.has(o))) node.inputs.forEach((v) => v && reach.add(v));
  }
  return reach;
}

function gradContext(b: GraphBuilder, node: Node, outputGrads: (Tensor | undefined)[], needs: boolean[], forward: ReadonlySet<Node>): GradContext {
  const attr = (name: string) => node.attributes.get(name);
  const constant = (i: number) => {
    const v = node.inputs[i];
    return v === undefined ? undefined : b.knownValue(new Tensor(b, v));
  };
  const tensorOf = (v: Value | undefined, what: string) => {
    if (v === undefined) throw new GradientError(`${node.opType} '${node.name}' has no ${what}`);
    return new Tensor(b, v);
  };
  return {
    builder: b,
    node,
    input: (i) => tensorOf(node.inputs[i], `input ${i}`),
    output: (i) => tensorOf(node.outputs[i], `output ${i}`),
    gradOutput: (i) => outputGrads[i],
    outputGrad: (i = 0) => {
      const g = outputGrads[i];
      if (g === undefined) throw new GradientError(`${node.opType} '${node.name}': no gradient flows into output ${i}, which its rule needs`);
      return g;
    },
    needsGrad: (i) => needs[i] ?? false,
    forwardReaders: (i) => (node.outputs[i]?.uses ?? []).map((u) => u.node).filter((n) => forward.has(n)),
    int: (name, fallback) => (attr(name)?.value as number | undefined) ?? fallback,
    float: (name, fallback) => (attr(name)?.value as number | undefined) ?? fallback,
    ints: (name) => attr(name)?.value as number[] | undefined,
    string: (name, fallback) => (attr(name)?.value as string | undefined) ?? fallback,
    constant,
    requireConstant: (i, what) => {
      const value = constant(i);
      if (value === undefined) throw new GradientError(`${node.opType} '${node.name}': its gradient needs ${what} (input ${i}) known when the graph is built, and it is computed`);
      return value;
    },
  };
}

function checkShape(g: Tensor, v: Value, where: string, index: number): void {
  const want = v.shape!;
  const ok = g.rank === want.length && g.shape.every((d, k) => typeof d !== 'number' || typeof want[k] !== 'number' || d === want[k]);
  if (!ok) throw new GradientError(`gradient of ${where}, input ${index}: rule produced ${formatShape(g.shape)} for an input of shape ${formatShape(want)}`);
}
