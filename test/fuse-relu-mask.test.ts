/**
 * The pass that moves a ReLU gradient's mask onto the grid of the max pool after it (src/passes/fuse-relu-mask.ts):
 * which nodes it replaces, the graphs it must leave alone, and that gradients are the same before and after it.
 * Also the IR's removeNode, which the passes use to drop nodes.
 */
import * as ort from 'onnxruntime-node';
import referenceCnn from '../graphs/reference-cnn';
import { gradients } from '../src/autodiff/gradients';
import { GraphBuilder } from '../src/dsl/builder';
import * as F from '../src/dsl/functional';
import type { Tensor } from '../src/dsl/builder';
import { Graph, Node, removeNode, Value } from '../src/ir/graph';
import { TensorData } from '../src/ir/tensor';
import { buildTrainingGraph } from '../src/model/training-graph';
import { encodeModel } from '../src/onnx/write';
import { fuseReluMask } from '../src/passes/fuse-relu-mask';
import { Rng } from '../src/util/rng';
import { expectTopologicalWithConsistentUses } from './support/graph-checks';

type Body = (b: GraphBuilder, x: Tensor, w: Tensor) => Tensor;

/**
 * conv 3x3 (4 -> 6 channels) -> body -> sum((y - 0.5)^2), with the gradients of x and w as outputs. (Not sum(y^2),
 * whose gradient vanishes where y = 0: exactly where the ReLU mask matters.)
 */
function trainingGraph(body: Body): GraphBuilder {
  const b = new GraphBuilder('fuse_relu_mask');
  const x = b.input('x', 'float32', [2, 4, 8, 8]);
  const w = b.input('w', 'float32', [6, 4, 3, 3]);
  const loss = b.run(() => {
    const y = F.sub(body(b, x, w), 0.5);
    return F.reduceSum(F.mul(y, y), undefined, false);
  });
  const [dx, dw] = gradients(loss, [x, w]);
  b.output('loss', loss);
  b.output('dx', dx!);
  b.output('dw', dw!);
  return b;
}

const convRelu = (x: Tensor, w: Tensor) => F.relu(F.conv2d(x, w, undefined, { padding: 1 }));
const convReluPool: Body = (_b, x, w) => F.maxPool2d(convRelu(x, w), 2);

/** Inputs with constant 4x4 patches (so that windows of the ReLU tie, at positive values too) and negative areas. */
function feeds(seed: number): Record<string, ort.Tensor> {
  const rng = new Rng(seed);
  const patch = Array.from({ length: 2 * 4 * 2 * 2 }, () => rng.normal());
  const x = Float32Array.from({ length: 2 * 4 * 8 * 8 }, (_, i) => {
    const [plane, h, w] = [Math.floor(i / 64), Math.floor(i / 8) % 8, i % 8];
    return (h + w) % 5 === 0 ? rng.normal() : patch[plane * 4 + Math.floor(h / 4) * 2 + Math.floor(w / 4)]!;
  });
  return {
    x: new ort.Tensor('float32', x, [2, 4, 8, 8]),
    w: new ort.Tensor('float32', Float32Array.from({ length: 6 * 4 * 9 }, () => rng.normal() * 0.3), [6, 4, 3, 3]),
  };
}

async function run(bytes: Uint8Array, input: Record<string, ort.Tensor>): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'extended' });
  try {
    const out = await session.run(input);
    return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, t.data as Float32Array]));
  } finally {
    await session.release();
  }
}

const signature = (n: Node) => `${n.opType}[${n.outputs[0]?.shape?.join(',')}]`;
const opCounts = (g: Graph) => g.nodes.reduce((m, n) => m.set(n.opType, (m.get(n.opType) ?? 0) + 1), new Map<string, number>());

describe('fuseReluMask', () => {
  test('Conv-ReLU-MaxPool: the full-size Greater and Where become pooled-size ones, nothing else changes', () => {
    const b = trainingGraph(convReluPool);
    const graph = b.graph;
    const before = new Set(graph.nodes);
    const counts = opCounts(graph);
    const reluOut = graph.nodes.find((n) => n.opType === 'Relu')!.outputs[0]!;
    const oldWhere = graph.nodes.find((n) => n.opType === 'Where' && n.inputs[0]?.producer?.inputs[0] === reluOut)!;
    const gradient = oldWhere.outputs[0]!;
    const readers = gradient.uses.map((u) => u.node);

    expect(fuseReluMask(graph)).toBe(1);

    const removed = [...before].filter((n) => !graph.nodes.includes(n)).map(signature).sort();
    const added = graph.nodes.filter((n) => !before.has(n)).map(signature).sort();
    expect(removed).toEqual(['Greater[2,6,8,8]', 'Mul[2,6,8,8]', 'Resize[2,6,8,8]', 'Where[2,6,8,8]']);
    expect(added).toEqual(['Greater[2,6,4,4]', 'Mul[2,6,8,8]', 'Resize[2,6,8,8]', 'Where[2,6,4,4]']);
    expect(opCounts(graph)).toEqual(counts);
    // The pooled mask reads the MaxPool output; the gradient value keeps its name, readers and a new producer.
    const greater = graph.nodes.find((n) => n.opType === 'Greater')!;
    expect(greater.inputs[0]!.producer!.opType).toBe('MaxPool');
    expect(gradient.producer!.opType).toBe('Mul');
    expect(graph.nodes).toContain(gradient.producer);
    expect(gradient.uses.map((u) => u.node)).toEqual(readers);
    expect(reluOut.uses.map((u) => u.node.opType).sort()).toEqual(['Equal', 'MaxPool']);
    expectTopologicalWithConsistentUses(graph);
    expect(fuseReluMask(graph)).toBe(0);
  });

  test('loss and gradients are the same before and after the pass (signs of zero aside), ties and all-zero windows included', async () => {
    for (const [name, body] of [['conv-relu-pool', convReluPool], ['two blocks', (_b: GraphBuilder, x: Tensor, w: Tensor) => {
      const h = convReluPool(_b, x, w);
      return F.maxPool2d(F.relu(F.mul(h, h)), 2);
    }]] as [string, Body][]) {
      const b = trainingGraph(body);
      const before = encodeModel(b.toModel());
      expect([name, fuseReluMask(b.graph)]).toEqual([name, name === 'two blocks' ? 2 : 1]);
      const after = encodeModel(b.toModel());
      for (const seed of [1, 2, 3]) {
        const input = feeds(seed);
        const [expected, actual] = [await run(before, input), await run(after, input)];
        for (const key of ['loss', 'dx', 'dw']) {
          const e = expected[key]!;
          const a = actual[key]!;
          const differing = e.filter((v, i) => v !== a[i]).length;
          expect([name, seed, key, differing, e.some((v) => v !== 0)]).toEqual([name, seed, key, 0, true]);
        }
      }
    }
  });

  test('the training graph of the reference CNN gets it from finishGraph: its three pooled ReLUs are masked on the pooled grid', () => {
    const graph = buildTrainingGraph(referenceCnn, { config: { imageSize: 32, numClasses: 10 }, seed: 3 }).model.graph;
    const masked = graph.nodes.filter((n) => n.opType === 'Greater').map((n) => n.inputs[0]!.producer!.opType).sort();
    expect(masked).toEqual(['MaxPool', 'MaxPool', 'MaxPool', 'Relu']);
  });

  test.each<[string, Body]>([
    ['a ReLU output that something else reads too (its gradient is a sum)', (_b, x, w) => {
      const r = convRelu(x, w);
      return F.add(F.maxPool2d(r, 2), F.avgPool2d(r, 2));
    }],
    ['a max pool with padding (overlapping windows, the other gradient form)', (_b, x, w) => F.maxPool2d(convRelu(x, w), 3, { stride: 2, padding: 1 })],
    ['a max pool that does not follow the ReLU', (_b, x, w) => F.relu(F.maxPool2d(F.conv2d(x, w, undefined, { padding: 1 }), 2))],
  ])('leaves alone %s', (_name, body) => {
    const graph = trainingGraph(body).graph;
    const nodes = [...graph.nodes];
    expect(fuseReluMask(graph)).toBe(0);
    expect(graph.nodes).toEqual(nodes);
  });

  /** The pattern by hand: Where(R > t, Cast(Equal(R, up(P))) * up2(S), e), with up/up2 Resize as given. */
  function handGraph(up2: Record<string, string>, threshold = 0, otherwise = 0, mode = 'nearest') {
    const b = new GraphBuilder('hand');
    const x = b.input('x', 'float32', [1, 2, 4, 4]);
    const p = b.input('p', 'float32', [1, 2, 2, 2]);
    const s = b.input('s', 'float32', [1, 2, 2, 2]);
    const scales = b.constant(TensorData.float32([4], [1, 1, 2, 2]));
    const resize = (t: Tensor, attributes: Record<string, string>) => b.op('Resize', [t, undefined, scales], attributes, 'up');
    const asymmetric = { mode, coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' };
    b.output('out', b.run(() => {
      const r = F.relu(x);
      const g = F.mul(F.cast(F.equal(r, resize(p, asymmetric)), 'float32'), resize(s, { ...asymmetric, ...up2 }));
      return F.where(F.greater(r, threshold), g, otherwise);
    }));
    return b;
  }

  test.each<[string, Record<string, string>, number, number, string, number]>([
    ['the same nearest upsampling on both sides', {}, 0, 0, 'nearest', 1],
    ['a share upsampled with another nearest_mode', { nearest_mode: 'ceil' }, 0, 0, 'nearest', 0],
    ['linear upsampling', {}, 0, 0, 'linear', 0],
    ['a threshold other than 0', {}, 0.5, 0, 'nearest', 0],
    ['a value other than 0 where the mask is off', {}, 0, 1, 'nearest', 0],
  ])('a hand-built mask pattern with %s', async (_name, up2, threshold, otherwise, mode, moves) => {
    const b = handGraph(up2, threshold, otherwise, mode);
    const before = encodeModel(b.toModel());
    expect(fuseReluMask(b.graph)).toBe(moves);
    if (moves === 0) return;
    // P is the max pool of R on some planes and arbitrary on others: the mask alone makes the rewrite exact.
    const rng = new Rng(7);
    const x = Float32Array.from({ length: 32 }, () => rng.normal());
    // On plane 0, one window all negative (max 0, four ties at 0) and one with a tie at a positive maximum.
    [0, 1, 4, 5].forEach((i) => (x[i] = -Math.abs(x[i]!)));
    [2, 3].forEach((i) => (x[i] = Math.abs(x[i]!) + 5));
    x[3] = x[2]!;
    const p = Float32Array.from({ length: 8 }, (_, i) => (i < 4 ? Math.max(0, ...[0, 1, 4, 5].map((o) => x[(i >> 1) * 8 + (i & 1) * 2 + o]!)) : rng.normal()));
    const input = {
      x: new ort.Tensor('float32', x, [1, 2, 4, 4]),
      p: new ort.Tensor('float32', p, [1, 2, 2, 2]),
      s: new ort.Tensor('float32', Float32Array.from({ length: 8 }, () => rng.normal()), [1, 2, 2, 2]),
    };
    const [expected, actual] = [await run(before, input), await run(encodeModel(b.toModel()), input)];
    expect(Array.from(actual.out!, (v) => v + 0)).toEqual(Array.from(expected.out!, (v) => v + 0));
    expect(expected.out!.some((v) => v !== 0)).toBe(true);
  });
});

describe('removeNode', () => {
  function chain() {
    const g = new Graph('g');
    const x = g.addValue(new Value('x', 'float32', [1]));
    g.inputs.push(x);
    const make = (op: string, inputs: Value[], out: string) => {
      const n = new Node(op, out);
      inputs.forEach((v) => n.addInput(v));
      n.addOutput(g.addValue(new Value(out, 'float32', [1])));
      return g.addNode(n);
    };
    const a = make('Neg', [x], 'a');
    const b = make('Mul', [a.outputs[0]!, a.outputs[0]!], 'b');
    const c = make('Add', [x, b.outputs[0]!], 'c');
    return { g, x, a, b, c };
  }

  test('detaches the inputs\' uses and drops the outputs, of one node or several at once', () => {
    const { g, x, a, b, c } = chain();
    removeNode(g, b);
    expect(g.nodes).toEqual([a, c]);
    expect(a.outputs[0]!.uses).toEqual([]);
    expect(g.values.has('b')).toBe(false);
    removeNode(g, [a, c]);
    expect(g.nodes).toEqual([]);
    expect(x.uses).toEqual([]);
    expect([...g.values.keys()]).toEqual(['x']);
  });

  test('keeps an output that another node has taken over, and the uses of nodes that stay', () => {
    const { g, x, a, b, c } = chain();
    const bOut = b.outputs[0]!;
    const takeover = new Node('Identity', 'takeover');
    takeover.addInput(a.outputs[0]);
    takeover.outputs.push(bOut);
    bOut.producer = takeover;
    g.addNode(takeover);
    removeNode(g, b);
    expect(g.values.get('b')).toBe(bOut);
    expect(a.outputs[0]!.uses).toEqual([{ node: takeover, index: 0 }]);
    expect(x.uses).toEqual([{ node: a, index: 0 }, { node: c, index: 0 }]);
    expect(g.nodes).toEqual([a, c, takeover]);
  });
});
