/** The WebGPU rewrite of wide Splits (src/passes/limit-split-outputs.ts) keeps every result under its name. */
import * as ort from 'onnxruntime-node';
import captioner from '../graphs/captioner';
import { GraphBuilder } from '../src/dsl/builder';
import * as F from '../src/dsl/functional';
import { buildTrainingGraph } from '../src/model/training-graph';
import { decodeModel } from '../src/onnx/read';
import { encodeModel } from '../src/onnx/write';
import { limitSplitOutputs } from '../src/passes/limit-split-outputs';
import { Rng } from '../src/util/rng';

const widest = (m: ReturnType<typeof decodeModel>) => Math.max(0, ...m.graph.nodes.filter((n) => n.opType === 'Split').map((n) => n.outputs.length));

async function runBoth(before: Uint8Array, after: Uint8Array, feeds: Record<string, ort.Tensor>) {
  const [expected, actual] = await Promise.all([before, after].map(async (bytes) => (await ort.InferenceSession.create(bytes)).run(feeds)));
  return { expected: expected!, actual: actual! };
}

test('Splits of 22 given sizes and of 100 equal parts become trees of Splits of at most 7 parts, with the same outputs', async () => {
  const b = new GraphBuilder('wide');
  const x = b.input('x', 'float32', [2, 122, 3]);
  b.run(() => {
    const sizes = Array.from({ length: 22 }, (_, i) => 1 + (i % 2));
    F.split(F.slice(x, [0], [33], [1]), sizes, 1).forEach((t, i) => b.output(`given_${i}`, t));
    F.split(F.slice(x, [22], [122], [1]), 100, 1).forEach((t, i) => b.output(`equal_${i}`, t));
  });
  const model = decodeModel(encodeModel(b.toModel()));
  expect(widest(model)).toBe(100);
  expect(limitSplitOutputs(model)).toBe(2 + 7);
  expect(widest(model)).toBeLessThanOrEqual(7);
  expect(model.graph.outputs.map((o) => o.name)).toEqual([...Array.from({ length: 22 }, (_, i) => `given_${i}`), ...Array.from({ length: 100 }, (_, i) => `equal_${i}`)]);
  const rng = new Rng(1);
  const feeds = { x: new ort.Tensor('float32', Float32Array.from({ length: 2 * 122 * 3 }, () => rng.normal()), [2, 122, 3]) };
  const { expected, actual } = await runBoth(encodeModel(b.toModel()), encodeModel(model), feeds);
  for (const name of Object.keys(expected)) {
    expect([name, actual[name]!.dims]).toEqual([name, expected[name]!.dims]);
    expect(Array.from(actual[name]!.data as Float32Array)).toEqual(Array.from(expected[name]!.data as Float32Array));
  }
});

test('an attention captioner\'s training graph (22 unrolled steps) keeps its loss and gradients exactly', async () => {
  const config = { vocabularySize: 9, maxLength: 22, imageSize: 16, embedding: 4, hidden: 5, attentionSize: 3, decoder: 'attention' };
  const graph = buildTrainingGraph(captioner, { config, seed: 1 });
  const lowered = decodeModel(encodeModel(graph.model));
  expect(widest(lowered)).toBeGreaterThan(16);
  expect(limitSplitOutputs(lowered)).toBeGreaterThan(0);
  expect(widest(lowered)).toBeLessThanOrEqual(7);
  const rng = new Rng(2);
  const N = 2;
  const feeds: Record<string, ort.Tensor> = {
    input: new ort.Tensor('float32', Float32Array.from({ length: N * 3 * 16 * 16 }, () => rng.normal()), [N, 3, 16, 16]),
    captions: new ort.Tensor('int64', BigInt64Array.from({ length: N * 22 }, () => BigInt(1 + rng.int(8))), [N, 22]),
    targets: new ort.Tensor('int64', BigInt64Array.from({ length: N * 22 }, () => BigInt(1 + rng.int(8))), [N, 22]),
    mask: new ort.Tensor('float32', Float32Array.from({ length: N * 22 }, (_, i) => (i % 22 < 15 ? 1 : 0)), [N, 22]),
  };
  for (const [name, value] of graph.values) feeds[name] = new ort.Tensor('float32', value.typed() as Float32Array, [...value.dims]);
  const { expected, actual } = await runBoth(encodeModel(graph.model), encodeModel(lowered), feeds);
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
  for (const name of Object.keys(expected)) expect([name, Array.from(actual[name]!.data as Float32Array)]).toEqual([name, Array.from(expected[name]!.data as Float32Array)]);
});
