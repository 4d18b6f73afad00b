/**
 * The pass that turns a weight gradient summed over many Gemms into one Gemm over the stacked operands
 * (src/passes/merge-gemm-sums.ts): the nodes it replaces, the sums it must leave alone, and that the gradients are
 * the same before and after it.
 */
import * as ort from 'onnxruntime-node';
import { gradients } from '../src/autodiff/gradients';
import { GraphBuilder } from '../src/dsl/builder';
import * as F from '../src/dsl/functional';
import type { Tensor } from '../src/dsl/builder';
import type { Graph } from '../src/ir/graph';
import { defineModel } from '../src/model/definition';
import { buildTrainingGraph } from '../src/model/training-graph';
import { Module } from '../src/nn/module';
import { LSTM } from '../src/nn/recurrent';
import { encodeModel } from '../src/onnx/write';
import { mergeGemmSums } from '../src/passes/merge-gemm-sums';
import { Rng } from '../src/util/rng';
import { expectTopologicalWithConsistentUses } from './support/graph-checks';

const [N, H, STEPS] = [3, 4, 5];

/**
 * h_{t+1} = tanh(h_t W^T + x_t) over STEPS steps from h_0 = x_0, loss = sum((h - 0.5)^2) over every step's h, with
 * the gradients of W and x as outputs. `extra` may add another reader or term to the recurrence.
 */
function recurrence(extra?: (b: GraphBuilder, h: Tensor, w: Tensor) => Tensor): GraphBuilder {
  const b = new GraphBuilder('merge_gemm_sums');
  const x = b.input('x', 'float32', [STEPS, N, H]);
  const w = b.input('w', 'float32', [H, H]);
  const loss = b.run(() => {
    const xs = F.split(x, STEPS, 0).map((t) => F.reshape(t, [N, H]));
    let h = xs[0]!;
    let total: Tensor | undefined;
    for (let t = 1; t < STEPS; t++) {
      h = F.tanh(b.op('Gemm', [h, w, xs[t]!], { transB: 1 }, 'recurrence'));
      if (extra !== undefined) h = extra(b, h, w);
      const d = F.sub(h, 0.5);
      const term = F.reduceSum(F.mul(d, d), undefined, false);
      total = total === undefined ? term : F.add(total, term);
    }
    return total!;
  });
  const [dx, dw] = gradients(loss, [x, w]);
  b.output('loss', loss);
  b.output('dx', dx!);
  b.output('dw', dw!);
  return b;
}

async function run(bytes: Uint8Array, seed: number): Promise<Record<string, Float32Array>> {
  const rng = new Rng(seed);
  const session = await ort.InferenceSession.create(bytes);
  try {
    const out = await session.run({
      x: new ort.Tensor('float32', Float32Array.from({ length: STEPS * N * H }, () => rng.normal()), [STEPS, N, H]),
      w: new ort.Tensor('float32', Float32Array.from({ length: H * H }, () => rng.normal() * 0.5), [H, H]),
    });
    return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, t.data as Float32Array]));
  } finally {
    await session.release();
  }
}

/** Gemms that compute A^T B (the weight-gradient form). */
const weightGradientGemms = (g: Graph) => g.nodes.filter((n) => n.opType === 'Gemm' && n.attr('transA', 'int') === 1);

describe('mergeGemmSums', () => {
  test('an unrolled recurrence: the weight gradient of its 4 steps becomes one Gemm over the stacked steps, with the same values', async () => {
    const b = recurrence();
    const graph = b.graph;
    const before = encodeModel(b.toModel());
    const dw = graph.outputs.find((v) => v.name === 'dw')!;
    expect(weightGradientGemms(graph)).toHaveLength(STEPS - 1);

    expect(mergeGemmSums(graph)).toBe(1);

    const [gemm] = weightGradientGemms(graph);
    expect(weightGradientGemms(graph)).toHaveLength(1);
    // The output keeps its value object (name, graph-output status) and is now that Gemm's, which reads two Concats
    // of STEPS - 1 parts along the rows.
    expect(graph.outputs).toContain(dw);
    expect(gemm!.outputs[0]).toBe(dw);
    expect(gemm!.inputs.map((v) => [v!.producer!.opType, v!.producer!.inputs.length, v!.shape])).toEqual([
      ['Concat', STEPS - 1, [(STEPS - 1) * N, H]], ['Concat', STEPS - 1, [(STEPS - 1) * N, H]],
    ]);
    expect(graph.nodes.some((n) => n.opType === 'Add' && n.outputs[0]?.shape?.join() === `${H},${H}`)).toBe(false);
    expectTopologicalWithConsistentUses(graph);
    expect(mergeGemmSums(graph)).toBe(0);

    const after = encodeModel(b.toModel());
    for (const seed of [1, 2]) {
      const [expected, actual] = [await run(before, seed), await run(after, seed)];
      for (const key of ['loss', 'dx', 'dw']) {
        const e = expected[key]!;
        const a = actual[key]!;
        const scale = Math.max(...e.map(Math.abs));
        expect(scale).toBeGreaterThan(0);
        const worst = Math.max(...e.map((v, i) => Math.abs(v - a[i]!))) / scale;
        expect([seed, key, worst < 1e-6]).toEqual([seed, key, true]);
      }
    }
  });

  test.each<[string, (b: GraphBuilder, h: Tensor, w: Tensor) => Tensor]>([
    // W's gradient then has a term that is not a Gemm of the A^T B form (the Mul's rule), so the sum is left alone.
    ['a term of another kind', (_b, h, w) => F.add(h, F.reduceSum(F.mul(w, 0.1), [1], false))],
  ])('a sum with %s is left alone', (_name, extra) => {
    const b = recurrence(extra);
    const counts = b.graph.nodes.length;
    expect(mergeGemmSums(b.graph)).toBe(0);
    expect(b.graph.nodes.length).toBe(counts);
  });

  test('fewer terms than asked for are left alone', () => {
    const b = recurrence();
    expect(mergeGemmSums(b.graph, STEPS)).toBe(0);
    expect(weightGradientGemms(b.graph)).toHaveLength(STEPS - 1);
  });

  test('an LSTM training graph gets it from finishGraph: one Gemm for W_hh\'s gradient over all steps', () => {
    const steps = 6;
    const model = defineModel({
      name: 'lstm-sum',
      defaults: {},
      inputs: () => [{ name: 'x', shape: ['batch', steps, 3] }],
      create: () => new (class extends Module {
        readonly lstm = new LSTM(3, 5);
        forward(x: Tensor): Tensor {
          return F.reshape(F.slice(this.lstm.forward(x).output, [steps - 1], [steps], [1]), [-1, 5]);
        }
      })(),
    });
    const graph = buildTrainingGraph(model, { seed: 1 }).model.graph;
    const gradient = graph.outputs.find((v) => v.name === 'lstm.weight_hh_l0_grad')!;
    const producer = gradient.producer!;
    expect([producer.opType, producer.attr('transA', 'int')]).toEqual(['Gemm', 1]);
    expect(producer.inputs.map((v) => [v!.producer!.opType, v!.producer!.inputs.length])).toEqual([['Concat', steps - 1], ['Concat', steps - 1]]);
  });
});
