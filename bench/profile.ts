/**
 * Where the time of one training step goes: runs the training graph with ORT's profiler and sums the kernel time
 * by op type (and lists the slowest nodes).
 *
 *   node bench/run.js bench/profile.ts [reference|seed|mobilenet] [--threads N] [--standard] [--device webgpu]
 *
 * `mobilenet` is the fine-tuning step of every layer of the shared MobileNetV2 at 224 px, batch 32 (BATCH=N to change).
 *
 * Profiles the graph as the trainer runs it on the CPU (convolutions lowered to the blocked kernels; the first block
 * the native stem runs and the weight gradients the native kernels take, where they load, left out: this profile
 * does not time them), or with --standard the
 * plain ONNX graph. With --device webgpu, the graph as the trainer's WebGPU sessions get it, on the
 * WebGPU provider: node times are then the host's time to dispatch each kernel, and the wall time per run shows how
 * much waiting for the GPU adds.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import cnn from '../graphs/cnn';
import referenceCnn from '../graphs/reference-cnn';
import transfer from '../graphs/transfer';
import { buildEvalGraph, buildTrainingGraph } from '../src/model/training-graph';
import { encodeModel } from '../src/onnx/write';
import { modelForCpu } from '../src/runtime/nchwc';
import { modelForWebGpu } from '../src/runtime/webgpu-model';
import { nativeConvStem, nativeWeightGrads } from '../src/train/training-sessions';
import { Rng } from '../src/util/rng';

(async () => {
  const which = ['seed', 'mobilenet'].includes(process.argv[2] ?? '') ? process.argv[2]! : 'reference';
  const ti = process.argv.indexOf('--threads');
  const threads = ti >= 0 ? Number(process.argv[ti + 1]) : os.cpus().length;
  const backbone = path.join(process.env.DEEPVISION_SHARED ?? path.resolve(__dirname, '..', '..', 'shared'), 'models', 'mobilenetv2-7-fp32.onnx');
  const workloads = {
    reference: { definition: referenceCnn, config: { imageSize: 32, numClasses: 10 }, batch: 64 },
    seed: { definition: cnn, config: { imageSize: 64, numClasses: 30 }, batch: 64 },
    mobilenet: { definition: transfer, config: { imageSize: 224, numClasses: 10, backbone, trainable: 'all' }, batch: Number(process.env.BATCH ?? 32) },
  };
  const { definition, config, batch } = workloads[which as keyof typeof workloads];
  const graph = buildTrainingGraph(definition, { config });
  const size = config.imageSize;
  const rng = new Rng(0);
  const feeds: Record<string, ort.Tensor> = {
    input: new ort.Tensor('float32', Float32Array.from({ length: batch * 3 * size * size }, () => rng.normal()), [batch, 3, size, size]),
    labels: new ort.Tensor('int64', BigInt64Array.from({ length: batch }, () => BigInt(rng.int(config.numClasses))), [batch]),
  };
  for (const [name, value] of graph.values) feeds[name] = new ort.Tensor('float32', value.typed() as Float32Array, [...value.dims]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-profile-'));
  const webgpu = process.argv.includes('--device') && process.argv[process.argv.indexOf('--device') + 1] === 'webgpu';
  const standard = process.argv.includes('--standard');
  // The trainer's own rewrites (src/train/training-sessions.ts), where the native kernels load: the first block cut
  // out for the native stem, and convolution weight gradients left to the native kernels.
  const stem = webgpu || standard ? undefined : nativeConvStem({ trainingGraphWith: (gradientOf) => buildTrainingGraph(definition, { config, gradientOf }), evalModel: buildEvalGraph(definition, { config }).model }, threads);
  if (stem !== undefined) {
    console.log(`the first block (${stem.stem.stem.weight.replace(/\.weight$/, '')} to the max pool) runs natively around the session (not in this profile)`);
    const state = new Map([...graph.values.keys()].map((name) => [name, feeds[name]!]));
    Object.assign(feeds, stem.stem.forward(state, { input: feeds.input!, labels: feeds.labels! }));
  }
  const cpuModel = () => {
    const base = stem?.model ?? graph.model;
    const native = nativeWeightGrads(base, threads);
    if (native === undefined) return base;
    const grads = (m: typeof graph.model) => m.graph.outputs.filter((o) => o.name.endsWith('_grad')).length;
    console.log(`${grads(base) - grads(native.model)} convolution weight gradients left to the native kernels (not in this profile)`);
    return native.model;
  };
  const model = webgpu ? modelForWebGpu(graph.model) : standard ? encodeModel(graph.model) : (await modelForCpu(cpuModel())).bytes;
  const session = await ort.InferenceSession.create(model, {
    executionProviders: webgpu ? ['webgpu', 'cpu'] : ['cpu'],
    intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: (process.env.ORT_LEVEL ?? 'extended') as 'extended',
    enableMemPattern: process.env.MEMPAT !== '0', enableCpuMemArena: process.env.ARENA !== '0', enableProfiling: true, profileFilePrefix: path.join(dir, 'p'), optimizedModelFilePath: path.join(dir, 'optimized.onnx'),
  });
  // Warm-up runs allocate and touch fresh memory: a mean over all runs would charge that to a few big nodes, so
  // each node's time is its median over the runs after the warm-up.
  const warmup = 3;
  const runs = Number(process.env.RUNS ?? 10);
  const wall: number[] = [];
  for (let i = 0; i < warmup + runs; i++) {
    const t0 = performance.now();
    await session.run(Object.fromEntries(session.inputNames.map((name) => [name, feeds[name]!])));
    if (i >= warmup) wall.push(performance.now() - t0);
  }
  session.endProfiling();
  const file = fs.readdirSync(dir).find((f) => f.startsWith('p'))!;
  const events = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as { cat: string; name: string; dur: number; args?: { op_name?: string; provider?: string } }[];
  const perNode = new Map<string, { op: string; provider: string; times: number[] }>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const key = e.name.replace('_kernel_time', '');
    if (!perNode.has(key)) perNode.set(key, { op: e.args?.op_name ?? '?', provider: e.args?.provider ?? '?', times: [] });
    perNode.get(key)!.times.push(e.dur);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const providers = new Map<string, number>();
  const byOp = new Map<string, number>();
  const byNode = new Map<string, number>();
  let total = 0;
  for (const [name, { op, times, provider }] of perNode) {
    providers.set(provider, (providers.get(provider) ?? 0) + 1);
    const us = median(times.slice(warmup));
    byOp.set(op, (byOp.get(op) ?? 0) + us);
    byNode.set(`${op} ${name}`, us);
    total += us;
  }
  console.log(`${which} training step, batch ${batch}: ${(total / 1000).toFixed(1)} ms of kernel time per step, ${median(wall).toFixed(1)} ms wall (medians of ${runs} runs after ${warmup} warm-up runs)`);
  console.log(`nodes by provider: ${[...providers].map(([p, n]) => `${p} ${n}`).join(', ')}`);
  for (const [op, us] of [...byOp].sort((a, b) => b[1] - a[1])) console.log(`  ${op.padEnd(24)}${(us / 1000).toFixed(2).padStart(8)} ms  ${((100 * us) / total).toFixed(1).padStart(5)} %`);
  console.log('slowest nodes:');
  for (const [node, us] of [...byNode].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 25))) console.log(`  ${(us / 1000).toFixed(2).padStart(8)} ms  ${node}`);
  console.log(`optimized graph: ${path.join(dir, 'optimized.onnx')}`);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
