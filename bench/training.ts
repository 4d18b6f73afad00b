/**
 * Training throughput: one full update (forward + generated backward + optimizer graph), median over steps after
 * warm-up, for (a) the reference CNN (batch 64, 32x32, plain SGD) and (b) the seed CNN (batch 64, 64x64).
 * Compare with PyTorch on the same machine: ../shared/bench/torch_cnn.py (reference CNN) and
 * bench/torch_fwd_bwd.py.
 *
 *   npm run bench [-- --steps N] [-- --json]
 *   node bench/run.js bench/training.ts --pytorch [--rounds R]   # paired against PyTorch, see below
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import cnn from '../graphs/cnn';
import referenceCnn from '../graphs/reference-cnn';
import { measure, prepareWorkload, throughput } from './training-throughput';

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const steps = option('--steps', 10);
const threads = option('--threads', os.cpus().length);

/** PyTorch's reference CNN step (../shared/bench/torch_cnn.py) in ms, or why it could not run. */
function pytorchStep(): number | string {
  const script = path.join(__dirname, '..', '..', 'shared', 'bench', 'torch_cnn.py');
  if (!fs.existsSync(script)) return `${script} not found`;
  const openmpBlas = '/usr/lib/x86_64-linux-gnu/openblas-openmp';
  const env = { ...process.env, ...(fs.existsSync(openmpBlas) ? { LD_LIBRARY_PATH: openmpBlas } : {}) };
  const run = spawnSync('/usr/bin/python3', [script, '--threads', String(threads), '--steps', String(steps)], { env, encoding: 'utf8' });
  if (run.status !== 0) return `torch_cnn.py failed: ${(run.stderr || run.stdout).trim().split('\n').pop()}`;
  return (JSON.parse(run.stdout.trim().split('\n').pop()!) as { ms_per_step: number }).ms_per_step;
}

/**
 * This machine runs in slow and fast phases minutes long (the same run differs by 30 %), so absolute times taken
 * at different moments do not compare: --pytorch alternates our reference step and PyTorch's, R rounds, and
 * reports the ratio of each adjacent pair and their median.
 */
async function pairedWithPyTorch(rounds: number): Promise<void> {
  const reference = { imageSize: 32, numClasses: 10 };
  console.log(`reference CNN, batch 64, ${threads} threads: deepvision vs PyTorch, ${rounds} alternating rounds of ${steps} steps`);
  const ratios: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const [ours] = await measure([await prepareWorkload('reference', referenceCnn, reference, { kind: 'sgd' }, threads)], steps);
    const theirs = pytorchStep();
    if (typeof theirs === 'string') {
      console.log(`PyTorch skipped: ${theirs}`);
      return;
    }
    ratios.push(theirs / ours!.msPerStep);
    console.log(`round ${round + 1}: deepvision ${ours!.msPerStep.toFixed(1)} ms, PyTorch ${theirs.toFixed(1)} ms, throughput ratio ${(theirs / ours!.msPerStep).toFixed(2)}`);
  }
  const median = [...ratios].sort((a, b) => a - b)[Math.floor(ratios.length / 2)]!;
  console.log(`median throughput ratio deepvision / PyTorch: ${median.toFixed(2)} (1.00 = parity)`);
}

(async () => {
  if (args.includes('--pytorch')) {
    await pairedWithPyTorch(option('--rounds', 5));
    return;
  }
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
