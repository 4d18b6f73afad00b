/**
 * Training throughput: one full update (forward + generated backward + optimizer graph), median over steps after
 * warm-up, for (a) the reference CNN (batch 64, 32x32, plain SGD) and (b) the seed CNN (batch 64, 64x64).
 * Compare with PyTorch on the same machine: ../shared/bench/torch_cnn.py (reference CNN) and
 * bench/torch_fwd_bwd.py --update (seed CNN).
 *
 *   npm run bench [-- --steps N] [-- --json]
 *   node bench/run.js bench/training.ts --pytorch [--rounds R] [--model reference|seed]   # paired against PyTorch, see below
 *   node bench/run.js bench/training.ts --phases [--rounds R] [--model reference|seed]    # where an update's time goes
 */
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import cnn from '../graphs/cnn';
import referenceCnn from '../graphs/reference-cnn';
import { runPython } from './pytorch-run';
import { measure, prepareWorkload, StepPhases, throughput } from './training-throughput';

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const steps = option('--steps', 10);
const threads = option('--threads', os.cpus().length);

/** PyTorch's update of the reference CNN (../shared/bench/torch_cnn.py) or the seed CNN (bench/torch_fwd_bwd.py), in ms, or why it could not run. */
function pytorchStep(model: 'reference' | 'seed'): number | string {
  const out = model === 'reference'
    ? runPython(path.join(process.env.DEEPVISION_SHARED ?? path.join(__dirname, '..', '..', 'shared'), 'bench', 'torch_cnn.py'), ['--threads', String(threads), '--steps', String(steps)])
    : runPython(path.join(__dirname, 'torch_fwd_bwd.py'), ['--threads', String(threads), '--runs', String(steps), '--model', 'seed', '--update']);
  if (typeof out === 'string') return out;
  return model === 'reference' ? (out as { ms_per_step: number }).ms_per_step : (out as { rows: { updateMs: number }[] }).rows[0]!.updateMs;
}

/** The two CNNs --pytorch and --phases measure; --model reference|seed picks one. */
function chosenModels() {
  const models = [
    { key: 'reference' as const, label: 'reference CNN 32x32, SGD', definition: referenceCnn, config: { imageSize: 32, numClasses: 10 }, optimizer: { kind: 'sgd' as const } },
    { key: 'seed' as const, label: 'seed CNN 64x64, SGD momentum', definition: cnn, config: { imageSize: 64, numClasses: 30 }, optimizer: { kind: 'sgd' as const, momentum: 0.9 } },
  ];
  const only = args.includes('--model') ? args[args.indexOf('--model') + 1] : undefined;
  if (only !== undefined && !models.some((m) => m.key === only)) throw new Error(`--model must be reference or seed, got ${only}`);
  return models.filter((x) => only === undefined || x.key === only);
}

/**
 * This machine runs in slow and fast phases minutes long (the same run differs by 30 %), so absolute times taken
 * at different moments do not compare: --pytorch alternates our update and PyTorch's, R rounds per model, and
 * reports the ratio of each adjacent pair and their median.
 */
async function pairedWithPyTorch(rounds: number): Promise<void> {
  for (const m of chosenModels()) {
    console.log(`${m.label}, batch 64, ${threads} threads: deepvision vs PyTorch, ${rounds} alternating rounds of ${steps} steps`);
    const ratios: number[] = [];
    // One workload for all rounds, as the trainer keeps its sessions. Each round starts with 8 untimed updates:
    // starting the PyTorch process (a fork) leaves our pages copy-on-write, and the next ~6 updates page-fault
    // back in (measured: 222, 64, 56, 58, 56, 47 ms, then 37 ms), which no training run ever pays.
    const workload = await prepareWorkload(m.key, m.definition, m.config, m.optimizer, threads);
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < 8; i++) await workload.step();
      const times: number[] = [];
      for (let i = 0; i < steps; i++) times.push((await workload.step()).ms);
      const ours = [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
      const theirs = pytorchStep(m.key);
      if (typeof theirs === 'string') {
        console.log(`PyTorch skipped: ${theirs}`);
        break;
      }
      ratios.push(theirs / ours);
      console.log(`round ${round + 1}: deepvision ${ours.toFixed(1)} ms, PyTorch ${theirs.toFixed(1)} ms, throughput ratio ${(theirs / ours).toFixed(2)}`);
    }
    await workload.release();
    if (ratios.length === 0) continue;
    const median = [...ratios].sort((a, b) => a - b)[Math.floor(ratios.length / 2)]!;
    console.log(`median throughput ratio deepvision / PyTorch: ${median.toFixed(2)} (1.00 = parity)`);
  }
}

/**
 * The parts of the trainer's update in the order they run, medians of each round's `steps` updates: the native
 * stem's forward, the training session, the native weight gradients, the stem's backward, the optimizer.
 */
async function phases(rounds: number): Promise<void> {
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const names: (keyof StepPhases)[] = ['stemForward', 'session', 'nativeWeightGradients', 'stemBackward', 'optimizer'];
  for (const m of chosenModels()) {
    console.log(`${m.label}, batch 64, ${threads} threads: ms per part of an update, medians of ${steps} updates a round`);
    const workload = await prepareWorkload(m.key, m.definition, m.config, m.optimizer, threads);
    for (let i = 0; i < 8; i++) await workload.step();
    for (let round = 0; round < rounds; round++) {
      const runs: { ms: number; phases: StepPhases }[] = [];
      for (let i = 0; i < steps; i++) runs.push(await workload.step());
      const parts = names.map((name) => `${name} ${median(runs.map((r) => r.phases[name])).toFixed(1)}`);
      console.log(`round ${round + 1}: update ${median(runs.map((r) => r.ms)).toFixed(1)}; ${parts.join(', ')}`);
    }
    await workload.release();
  }
}

(async () => {
  if (args.includes('--phases')) {
    await phases(option('--rounds', 3));
    return;
  }
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
  console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
