/**
 * Transfer learning on the real MobileNetV2 (from the shared folder): how fast a frozen backbone computes features
 * (images/s, once per image), and what fine-tuning costs: one forward+backward through every backbone parameter
 * against the forward alone. A ratio near 3 is on par with PyTorch; a pathological depthwise-convolution gradient
 * would show as a much larger one.
 *
 *   npx jiti bench/transfer.ts [--runs N] [--batch N] [--size PX] [--json]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import transfer from '../graphs/transfer';
import { buildModel } from '../src/model/build';
import { buildTrainingGraph } from '../src/model/training-graph';
import { modelForCpu } from '../src/runtime/nchwc';
import { Rng } from '../src/util/rng';
import { medianRunMs } from './session-timing';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const runs = flag('--runs', 5);
const batch = flag('--batch', 8);
const size = flag('--size', 224);
const shared = process.env.DEEPVISION_SHARED ?? path.resolve(__dirname, '..', '..', 'shared');
const backbone = path.join(shared, 'models', 'mobilenetv2-7-fp32.onnx');

async function main(): Promise<void> {
  if (!fs.existsSync(backbone)) {
    console.log(`transfer bench skipped: ${backbone} not found (set DEEPVISION_SHARED)`);
    return;
  }
  const options: ort.InferenceSession.SessionOptions = { intraOpNumThreads: os.availableParallelism(), interOpNumThreads: 1, graphOptimizationLevel: 'extended' };
  const config = { backbone, imageSize: size, numClasses: 10 };
  const rng = new Rng(0);
  const input = new ort.Tensor('float32', Float32Array.from({ length: batch * 3 * size * size }, () => rng.normal()), [batch, 3, size, size]);

  // Frozen: the backbone in eval mode with its weights as constants, as the feature cache runs it.
  const frozen = buildModel(transfer, { config });
  const features = await ort.InferenceSession.create((await modelForCpu(frozen.model)).bytes, options);
  const featureMs = await medianRunMs(features, { input }, runs, 2);

  // Fine-tuning: every backbone parameter trains.
  const tuned = { ...config, trainable: 'all' };
  const forward = buildModel(transfer, { config: tuned, mode: 'train', parameters: 'inputs' });
  const training = buildTrainingGraph(transfer, { config: tuned });
  const feeds: Record<string, ort.Tensor> = { input, labels: new ort.Tensor('int64', BigInt64Array.from({ length: batch }, (_, i) => BigInt(i % 10)), [batch]) };
  for (const [name, value] of training.values) feeds[name] = new ort.Tensor('float32', value.typed() as Float32Array, [...value.dims]);
  const forwardSession = await ort.InferenceSession.create((await modelForCpu(forward.model)).bytes, options);
  const { labels: _labels, ...forwardFeeds } = feeds;
  void _labels;
  const forwardMs = await medianRunMs(forwardSession, forwardFeeds, runs, 2);
  const trainingSession = await ort.InferenceSession.create((await modelForCpu(training.model)).bytes, options);
  const trainingMs = await medianRunMs(trainingSession, feeds, runs, 2);
  const result = {
    model: 'mobilenetv2-7-fp32 + linear head', batch, size, threads: os.availableParallelism(),
    featureImagesPerSecond: (batch * 1000) / featureMs, fineTuneForwardMs: forwardMs, fineTuneForwardBackwardMs: trainingMs, backwardRatio: trainingMs / forwardMs,
  };
  if (args.includes('--json')) console.log(JSON.stringify(result));
  else {
    console.log(`transfer (${result.model}, batch ${batch}, ${size}x${size}, ${result.threads} threads):`);
    console.log(`  frozen backbone features: ${result.featureImagesPerSecond.toFixed(1)} images/s (${featureMs.toFixed(0)} ms per batch)`);
    console.log(`  fine-tuning every layer: forward ${forwardMs.toFixed(0)} ms, forward+backward ${trainingMs.toFixed(0)} ms (ratio ${result.backwardRatio.toFixed(2)})`);
  }
  await Promise.all([features.release(), forwardSession.release(), trainingSession.release()]);
}

void main();
