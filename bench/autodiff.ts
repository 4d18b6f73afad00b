/**
 * How much the emitted backward pass costs: one forward+backward (the training graph: loss and every parameter
 * gradient) against the forward pass alone (training mode, parameters as graph inputs, as in training), median
 * over timed runs after warm-up. PyTorch's backward costs about 2x its forward, so a ratio near 3 is on par.
 *
 *   npx jiti bench/autodiff.ts [--runs N] [--threads N] [--json]
 */
import * as os from 'node:os';
import * as ort from 'onnxruntime-node';
import cnn from '../graphs/cnn';
import referenceCnn from '../graphs/reference-cnn';
import { buildModel } from '../src/model/build';
import type { ModelDefinition } from '../src/model/definition';
import { buildTrainingGraph } from '../src/model/training-graph';
import { encodeModel } from '../src/onnx/write';
import { Rng } from '../src/util/rng';
import { medianRunMs } from './session-timing';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const runs = flag('--runs', 10);
const threads = flag('--threads', os.cpus().length);

async function measure(label: string, definition: ModelDefinition, config: Record<string, number>, batch: number) {
  const options: ort.InferenceSession.SessionOptions = { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: (process.env.ORT_LEVEL ?? 'extended') as 'extended' };
  const forward = buildModel(definition, { config, mode: 'train', parameters: 'inputs' });
  const training = buildTrainingGraph(definition, { config });
  const size = config.imageSize!;
  const rng = new Rng(0);
  const feeds: Record<string, ort.Tensor> = {
    input: new ort.Tensor('float32', Float32Array.from({ length: batch * 3 * size * size }, () => rng.normal()), [batch, 3, size, size]),
    labels: new ort.Tensor('int64', BigInt64Array.from({ length: batch }, () => BigInt(rng.int(Number(config.numClasses)))), [batch]),
  };
  for (const [name, value] of training.values) feeds[name] = new ort.Tensor('float32', value.typed() as Float32Array, [...value.dims]);
  const { labels: _labels, ...forwardFeeds } = feeds;
  void _labels;
  const fwd = await ort.InferenceSession.create(encodeModel(forward.model), options);
  const step = await ort.InferenceSession.create(encodeModel(training.model), options);
  const forwardMs = await medianRunMs(fwd, forwardFeeds, runs);
  const stepMs = await medianRunMs(step, feeds, runs);
  await fwd.release();
  await step.release();
  return { model: label, batch, forwardMs, forwardBackwardMs: stepMs, ratio: stepMs / forwardMs, imagesPerSecond: (batch * 1000) / stepMs };
}

(async () => {
  const rows = [
    await measure('reference CNN 32x32', referenceCnn, { imageSize: 32, numClasses: 10 }, 64),
    await measure('seed CNN 64x64', cnn, { imageSize: 64, numClasses: 30 }, 64),
  ];
  if (args.includes('--json')) {
    console.log(JSON.stringify({ threads, runs, rows }));
    return;
  }
  console.log(`forward+backward vs forward (onnxruntime-node ${ort.env.versions.node}, ${threads} threads, median of ${runs})`);
  console.log('model                 batch  forward ms  fwd+bwd ms  ratio  images/s (fwd+bwd)');
  for (const r of rows) {
    console.log(`${r.model.padEnd(22)}${String(r.batch).padStart(5)}${r.forwardMs.toFixed(1).padStart(12)}${r.forwardBackwardMs.toFixed(1).padStart(12)}${r.ratio.toFixed(2).padStart(7)}${r.imagesPerSecond.toFixed(0).padStart(10)}`);
  }
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
