/**
 * Where the time of one training step goes: runs the training graph with ORT's profiler and sums the kernel time
 * by op type (and lists the slowest nodes).
 *
 *   node bench/run.js bench/profile.ts [reference|seed] [--threads N] [--standard]
 *
 * Profiles the graph as the trainer runs it on the CPU (convolutions lowered to the blocked kernels), or with
 * --standard the plain ONNX graph.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import cnn from '../graphs/cnn';
import referenceCnn from '../graphs/reference-cnn';
import { buildTrainingGraph } from '../src/model/training-graph';
import { encodeModel } from '../src/onnx/write';
import { modelForCpu } from '../src/runtime/nchwc';
import { Rng } from '../src/util/rng';

(async () => {
  const which = process.argv[2] === 'seed' ? 'seed' : 'reference';
  const ti = process.argv.indexOf('--threads');
  const threads = ti >= 0 ? Number(process.argv[ti + 1]) : os.cpus().length;
  const [definition, config] = which === 'seed' ? [cnn, { imageSize: 64, numClasses: 30 }] : [referenceCnn, { imageSize: 32, numClasses: 10 }];
  const graph = buildTrainingGraph(definition, { config });
  const batch = 64;
  const size = config.imageSize;
  const rng = new Rng(0);
  const feeds: Record<string, ort.Tensor> = {
    input: new ort.Tensor('float32', Float32Array.from({ length: batch * 3 * size * size }, () => rng.normal()), [batch, 3, size, size]),
    labels: new ort.Tensor('int64', BigInt64Array.from({ length: batch }, () => BigInt(rng.int(config.numClasses))), [batch]),
  };
  for (const [name, value] of graph.values) feeds[name] = new ort.Tensor('float32', value.typed() as Float32Array, [...value.dims]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-profile-'));
  const model = process.argv.includes('--standard') ? encodeModel(graph.model) : (await modelForCpu(graph.model)).bytes;
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: (process.env.ORT_LEVEL ?? 'extended') as 'extended',
    enableMemPattern: process.env.MEMPAT !== '0', enableCpuMemArena: process.env.ARENA !== '0', enableProfiling: true, profileFilePrefix: path.join(dir, 'p'), optimizedModelFilePath: path.join(dir, 'optimized.onnx'),
  });
  for (let i = 0; i < 8; i++) await session.run(feeds);
  session.endProfiling();
  const file = fs.readdirSync(dir).find((f) => f.startsWith('p'))!;
  const events = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as { cat: string; name: string; dur: number; args?: { op_name?: string } }[];
  const byOp = new Map<string, number>();
  const byNode = new Map<string, number>();
  let total = 0;
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const op = e.args?.op_name ?? '?';
    byOp.set(op, (byOp.get(op) ?? 0) + e.dur);
    byNode.set(`${op} ${e.name.replace('_kernel_time', '')}`, (byNode.get(`${op} ${e.name.replace('_kernel_time', '')}`) ?? 0) + e.dur);
    total += e.dur;
  }
  const runsProfiled = 8;
  console.log(`${which} CNN training step, batch ${batch}: ${(total / runsProfiled / 1000).toFixed(1)} ms of kernel time per step`);
  for (const [op, us] of [...byOp].sort((a, b) => b[1] - a[1])) console.log(`  ${op.padEnd(24)}${(us / runsProfiled / 1000).toFixed(2).padStart(8)} ms  ${((100 * us) / total).toFixed(1).padStart(5)} %`);
  console.log('slowest nodes:');
  for (const [node, us] of [...byNode].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 25))) console.log(`  ${(us / runsProfiled / 1000).toFixed(2).padStart(8)} ms  ${node}`);
  console.log(`optimized graph: ${path.join(dir, 'optimized.onnx')}`);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
