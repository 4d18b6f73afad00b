/**
 * Training throughput: one full update (forward + generated backward + optimizer graph), median over steps after
 * warm-up, for (a) the reference CNN (batch 64, 32x32, plain SGD) and (b) the seed CNN (batch 64, 64x64).
 * Compare with PyTorch on the same machine: ../shared/bench/torch_cnn.py (reference CNN) and
 * bench/torch_fwd_bwd.py.
 *
 *   npm run bench [-- --steps N] [-- --json]
 */
import * as os from 'node:os';
import * as ort from 'onnxruntime-node';
import cnn from '../graphs/cnn';
import referenceCnn from '../graphs/reference-cnn';
import { measure, prepareWorkload, throughput } from './training-throughput';

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const steps = option('--steps', 10);
const threads = option('--threads', os.cpus().length);

(async () => {
  // The reference step also with standard ONNX Conv only (what the GPU providers and the browser run), measured
  // in alternation with the default so that the machine's slow and fast phases hit both alike.
  const reference = { imageSize: 32, numClasses: 10 };
  const rows = [
    ...(await measure([
      await prepareWorkload('reference CNN 32x32, SGD', referenceCnn, reference, { kind: 'sgd' }, threads),
      await prepareWorkload('  same, standard Conv only', referenceCnn, reference, { kind: 'sgd' }, threads, false),
    ], steps)),
    await throughput('seed CNN 64x64, SGD momentum', cnn, { imageSize: 64, numClasses: 30 }, { kind: 'sgd', momentum: 0.9 }, steps, threads),
  ];
  if (args.includes('--json')) {
    console.log(JSON.stringify({ system: `deepvision (onnxruntime-node ${ort.env.versions.node})`, threads, steps, rows }));
    return;
  }
  console.log(`training throughput (onnxruntime-node ${ort.env.versions.node}, ${threads} threads, median of ${steps} steps)`);
  console.log('workload                          batch  ms/step  (optimizer)  images/s');
  for (const r of rows) console.log(`${r.workload.padEnd(34)}${String(r.batch).padStart(5)}${r.msPerStep.toFixed(1).padStart(9)}${r.optimizerMs.toFixed(1).padStart(13)}${r.imagesPerSecond.toFixed(0).padStart(10)}`);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
