/**
 * Transfer learning on the real MobileNetV2 (from the shared folder), batch 32 at 224 px:
 * - feature extraction with a frozen backbone, as the feature pass runs it (weights constant, optimization `all`),
 *   beside the same model at `extended` (what the pass used before);
 * - one fine-tuning update of every layer: forward, generated backward and SGD with momentum, as the trainer runs it.
 *
 *   node bench/run.js bench/transfer.ts [--runs N] [--batch N] [--json]
 *   node bench/run.js bench/transfer.ts --pytorch [--rounds R]   # alternating with ../shared/bench/torch_mobilenet.py
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import transfer from '../graphs/transfer';
import { buildModel } from '../src/model/build';
import { encodeModel } from '../src/onnx/write';
import { featureSessionOptions } from '../src/train/frozen-backbone';
import { Rng } from '../src/util/rng';
import { runPython } from './pytorch-run';
import { medianRunMs } from './session-timing';
import { prepareWorkload, Workload } from './training-throughput';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const runs = flag('--runs', 5);
const batch = flag('--batch', 32);
const size = 224;
const threads = os.availableParallelism();
const shared = process.env.DEEPVISION_SHARED ?? path.resolve(__dirname, '..', '..', 'shared');
const backbone = path.join(shared, 'models', 'mobilenetv2-7-fp32.onnx');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Ours {
  extract: (level: 'extended' | 'all') => Promise<number>;
  update: Workload;
  release(): Promise<void>;
}

async function prepare(): Promise<Ours> {
  const config = { backbone, imageSize: size, numClasses: 10 };
  const rng = new Rng(0);
  const input = new ort.Tensor('float32', Float32Array.from({ length: batch * 3 * size * size }, () => rng.normal()), [batch, 3, size, size]);
  // The frozen backbone in eval mode with its weights as constants, as the feature pass builds it.
  const bytes = encodeModel(buildModel(transfer, { config }).model);
  const base: ort.InferenceSession.SessionOptions = { intraOpNumThreads: threads, interOpNumThreads: 1 };
  const sessions = {
    all: await ort.InferenceSession.create(bytes, featureSessionOptions({}, base)),
    extended: await ort.InferenceSession.create(bytes, { ...base, graphOptimizationLevel: 'extended' }),
  };
  const update = await prepareWorkload('fine-tune every layer, SGD momentum', transfer, { ...config, trainable: 'all' }, { kind: 'sgd', momentum: 0.9 }, threads, true, batch);
  return {
    extract: async (level) => (batch * 1000) / (await medianRunMs(sessions[level], { input }, runs, 2)),
    update,
    release: async () => { await Promise.all([sessions.all.release(), sessions.extended.release(), update.release()]); },
  };
}

/** Median of `runs` fine-tuning updates after 2 untimed ones: total ms and the optimizer's share. */
async function updateMs(w: Workload): Promise<{ ms: number; optimizerMs: number }> {
  for (let i = 0; i < 2; i++) await w.step();
  const times: { ms: number; optimizerMs: number }[] = [];
  for (let i = 0; i < runs; i++) times.push(await w.step());
  return { ms: median(times.map((t) => t.ms)), optimizerMs: median(times.map((t) => t.optimizerMs)) };
}

interface Torch { extract_images_per_s: number; finetune_ms_per_step: number }

/** One run of ../shared/bench/torch_mobilenet.py, or why it could not run. */
function pytorch(): Torch | string {
  const out = runPython(path.join(shared, 'bench', 'torch_mobilenet.py'), ['--batch', String(batch), '--threads', String(threads), '--runs', String(runs)]);
  return typeof out === 'string' ? out : (out as Torch);
}

/** Alternates our measurement and PyTorch's, so that the machine's slow and fast phases hit both alike; ratios per round. */
async function pairedWithPyTorch(ours: Ours, rounds: number): Promise<void> {
  console.log(`MobileNetV2 at ${size} px, batch ${batch}, ${threads} threads: deepvision vs PyTorch, ${rounds} alternating rounds`);
  const extractRatios: number[] = [];
  const updateRatios: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const extract = await ours.extract('all');
    const update = await updateMs(ours.update);
    const theirs = pytorch();
    if (typeof theirs === 'string') {
      console.log(`PyTorch skipped: ${theirs}`);
      return;
    }
    extractRatios.push(extract / theirs.extract_images_per_s);
    updateRatios.push(theirs.finetune_ms_per_step / update.ms);
    console.log(`round ${round + 1}: extraction ${extract.toFixed(1)} vs ${theirs.extract_images_per_s.toFixed(1)} images/s (${extractRatios.at(-1)!.toFixed(2)}x); `
      + `fine-tuning update ${update.ms.toFixed(0)} ms (optimizer ${update.optimizerMs.toFixed(0)}) vs ${theirs.finetune_ms_per_step.toFixed(0)} ms (${updateRatios.at(-1)!.toFixed(2)}x)`);
  }
  console.log(`median throughput ratio deepvision / PyTorch: extraction ${median(extractRatios).toFixed(2)}x, fine-tuning ${median(updateRatios).toFixed(2)}x (1.00 = parity)`);
}

async function main(): Promise<void> {
  if (!fs.existsSync(backbone)) {
    console.log(`transfer bench skipped: ${backbone} not found (set DEEPVISION_SHARED)`);
    return;
  }
  const ours = await prepare();
  try {
    if (args.includes('--pytorch')) {
      await pairedWithPyTorch(ours, flag('--rounds', 3));
      return;
    }
    // In alternation, as everything this machine compares.
    const all: number[] = [], extended: number[] = [];
    for (let round = 0; round < 3; round++) {
      all.push(await ours.extract('all'));
      extended.push(await ours.extract('extended'));
    }
    const update = await updateMs(ours.update);
    const result = {
      model: 'mobilenetv2-7-fp32 + linear head', batch, size, threads,
      featureImagesPerSecond: median(all), featureImagesPerSecondExtended: median(extended), fineTuneUpdateMs: update.ms, fineTuneOptimizerMs: update.optimizerMs,
    };
    if (args.includes('--json')) console.log(JSON.stringify(result));
    else {
      console.log(`transfer (${result.model}, batch ${batch}, ${size}x${size}, ${threads} threads):`);
      console.log(`  frozen backbone features: ${result.featureImagesPerSecond.toFixed(1)} images/s (optimization level extended: ${result.featureImagesPerSecondExtended.toFixed(1)})`);
      console.log(`  fine-tuning every layer: ${update.ms.toFixed(0)} ms per update, of which the optimizer ${update.optimizerMs.toFixed(0)} ms`);
    }
  } finally {
    await ours.release();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
