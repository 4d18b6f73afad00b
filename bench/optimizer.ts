/**
 * The optimizer update alone, and the trainer's memory over a long run:
 *  1. One update of 3.8 M parameters (the captioning decoder's size, in 20 tensors) with Adam and with SGD momentum:
 *     the optimizer graph in onnxruntime against the fused native optimizer (src/native) on 1 and on 2 threads,
 *     one update of each in turn (the machine's slow and fast phases hit all alike), medians.
 *  2. Resident memory over 2,000 updates of the trainer (the reference CNN on generated shapes, Adam) on the path it
 *     takes here (--portable: the optimizer graph): after 200, 1,000 and 2,000 updates. Flat means no leak per update.
 *     The same for a depthwise-separable model, whose weight gradients the fast path computes natively from x and dY
 *     that the training session hands out each update.
 *
 *   node bench/run.js bench/optimizer.ts [--portable] [--json]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import referenceCnn from '../graphs/reference-cnn';
import { defineModel, F, nn, Tensor } from '../src';
import type { ModelDefinition } from '../src/model/definition';
import { generateShapes } from '../src/data/shapes';
import { FusedOptimizer } from '../src/native/fused-optimizer';
import { encodeModel } from '../src/onnx/write';
import type { OptimizerConfig } from '../src/optim/config';
import { buildOptimizerGraph } from '../src/optim/optimizer-graph';
import { train } from '../src/train/trainer';

const args = process.argv.slice(2);
const threads = os.availableParallelism();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function updateTimes(config: OptimizerConfig): Promise<Record<string, number> | string> {
  const specs = Array.from({ length: 20 }, (_, i) => ({ name: `p${i}`, shape: [190_000] }));
  const fused = [1, threads].map((n) => FusedOptimizer.create(specs, config, {}, n));
  if (typeof fused[0] === 'string') return fused[0];
  const graph = buildOptimizerGraph(specs, config);
  const session = await ort.InferenceSession.create(encodeModel(graph.model), {
    intraOpNumThreads: threads, interOpNumThreads: 1, extra: { session: { intra_op: { allow_spinning: '0' } } },
  });
  const state = new Map<string, ort.Tensor>();
  const array = (fill: number) => new ort.Tensor('float32', new Float32Array(190_000).fill(fill), [190_000]);
  for (const p of specs) state.set(p.name, array(0.5));
  for (const slot of graph.stateNames) state.set(`optimizer.${slot}`, array(0));
  const grads = specs.map(() => array(0.01));
  const times = { graph: [] as number[], fused1: [] as number[], fusedN: [] as number[] };
  for (let step = 1; step <= 40; step++) {
    const feeds: Record<string, ort.Tensor> = {
      learning_rate: new ort.Tensor('float32', Float32Array.of(1e-3), [1]), step: new ort.Tensor('int64', BigInt64Array.of(BigInt(step)), [1]),
    };
    specs.forEach((p, i) => Object.assign(feeds, { [p.name]: state.get(p.name)!, [`${p.name}_grad`]: grads[i]! }));
    for (const slot of graph.stateNames) feeds[slot] = state.get(`optimizer.${slot}`)!;
    let t = performance.now();
    const out = await session.run(feeds);
    times.graph.push(performance.now() - t);
    for (const p of specs) state.set(p.name, out[`${p.name}_updated`] as ort.Tensor);
    for (const slot of graph.stateNames) state.set(`optimizer.${slot}`, out[`${slot}_updated`] as ort.Tensor);
    for (const [key, f] of [['fused1', fused[0]], ['fusedN', fused[1]]] as const) {
      t = performance.now();
      (f as FusedOptimizer).update(state, grads, 1e-3, step);
      times[key].push(performance.now() - t);
    }
  }
  await session.release();
  return { graph: median(times.graph.slice(5)), fused1: median(times.fused1.slice(5)), fusedN: median(times.fusedN.slice(5)) };
}

/** MobileNetV2's block in small (1x1 expand, depthwise 3x3 with stride 1 and 2, 1x1 project), for item 2. */
class DepthwiseSeparable extends nn.Module {
  readonly expand = new nn.Conv2d(3, 32, 1);
  readonly depthwise = new nn.Conv2d(32, 32, 3, { padding: 1, groups: 32 });
  readonly strided = new nn.Conv2d(32, 32, 3, { padding: 1, stride: 2, groups: 32 });
  readonly head = new nn.Sequential(new nn.Conv2d(32, 32, 1), new nn.GlobalAvgPool(), new nn.Flatten(), new nn.Linear(32, 10));
  forward(x: Tensor): Tensor {
    const relu6 = (t: Tensor) => F.clip(t, 0, 6);
    return this.head.forward(relu6(this.strided.forward(relu6(this.depthwise.forward(relu6(this.expand.forward(x)))))));
  }
}
const depthwiseSeparable = defineModel<{ numClasses: number; imageSize: number }>({
  name: 'depthwise-separable', defaults: { numClasses: 10, imageSize: 16 },
  inputs: (c) => [{ name: 'input', shape: ['batch', 3, c.imageSize, c.imageSize] }],
  create: () => new DepthwiseSeparable(),
});

async function residentMemory(definition: ModelDefinition): Promise<{ after: number; mb: number }[]> {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-bench-memory-'));
  const samples: { after: number; mb: number }[] = [];
  let updates = 0;
  try {
    await train({
      definition, config: {}, train: generateShapes({ count: 8000, imageSize: 16, seed: 0 }), val: generateShapes({ count: 200, imageSize: 16, seed: 1 }),
      epochs: 8, batchSize: 32, optimizer: { kind: 'adam' }, learningRate: 1e-3, outDir: folder, threads, seed: 0, maxSteps: 2000,
      nativeFastPath: !args.includes('--portable'), onNotice: (m) => console.log(m),
      onBatch: () => {
        updates++;
        if ([200, 1000, 2000].includes(updates)) samples.push({ after: updates, mb: process.memoryUsage().rss / 1e6 });
      },
    });
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
  return samples;
}

(async () => {
  const rows: Record<string, Record<string, number> | string> = {};
  for (const [label, config] of [['Adam', { kind: 'adam' }], ['SGD momentum', { kind: 'sgd', momentum: 0.9 }]] as const) rows[label] = await updateTimes(config);
  const memory = await residentMemory(referenceCnn);
  const depthwiseMemory = await residentMemory(depthwiseSeparable);
  if (args.includes('--json')) {
    console.log(JSON.stringify({ threads, updates: rows, memory, depthwiseMemory }));
    return;
  }
  console.log(`one update of 3.8 M parameters (20 tensors), median of 35 (${threads} threads for onnxruntime):`);
  for (const [label, r] of Object.entries(rows)) {
    console.log(typeof r === 'string'
      ? `  ${label}: fused optimizer not available (${r})`
      : `  ${label.padEnd(13)} optimizer graph ${r.graph!.toFixed(1)} ms, fused 1 thread ${r.fused1!.toFixed(1)} ms, fused ${threads} threads ${r.fusedN!.toFixed(1)} ms (${(r.graph! / r.fusedN!).toFixed(1)}x)`);
  }
  const updatePath = args.includes('--portable') ? 'optimizer graph' : 'its default update path';
  const samples = (m: { after: number; mb: number }[]) => `${m.map((s) => `${s.mb.toFixed(0)} MB after ${s.after}`).join(', ')} updates`;
  console.log(`trainer's resident memory (reference CNN, shapes 16 px, batch 32, Adam, ${updatePath}): ${samples(memory)}`);
  console.log(`the same for a depthwise-separable model (native depthwise weight gradients on the fast path): ${samples(depthwiseMemory)}`);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
