/**
 * The data pipeline against the trainer: images/s that BatchPipeline assembles (standard augmentation: padded
 * random crop + horizontal flip; and a heavy one adding rotation, zoom and colour jitter) on 64x64 images, inline
 * and with worker threads, next to the seed CNN's training throughput (images/s it consumes). Target: the pipeline
 * at least 3x faster than training consumes.
 *
 *   npm run bench            (runs this after bench/training.ts)
 *   node bench/run.js bench/pipeline.ts [--json] [--batches N]
 */
import * as os from 'node:os';
import cnn from '../graphs/cnn';
import { AugmentConfig, STANDARD_AUGMENTATION } from '../src/data/augment';
import { channelStatistics } from '../src/data/dataset';
import { generateShapes } from '../src/data/shapes';
import { throughput } from './training-throughput';

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const batches = option('--batches', 60);

(async () => {
  // The worker script exists only in the build: load the compiled pipeline (npm run build first).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { BatchPipeline } = require('../dist/data/batch-pipeline') as typeof import('../src/data/batch-pipeline');
  const data = generateShapes({ count: 4096, imageSize: 64, seed: 0 });
  const normalization = channelStatistics(data);
  const heavy: AugmentConfig = { ...STANDARD_AUGMENTATION, rotate: 15, scaleMin: 0.9, scaleMax: 1.1, brightness: 0.2, contrast: 0.2, saturation: 0.2 };
  const rows: { pipeline: string; workers: number; imagesPerSecond: number }[] = [];
  for (const [name, augment] of [['standard augmentation', STANDARD_AUGMENTATION], ['heavy augmentation', heavy]] as const) {
    for (const workers of [0, 1, Math.max(2, Math.min(4, os.availableParallelism()))]) {
      const pipeline = new BatchPipeline({ source: { kind: 'memory', pixels: data.pixels }, labels: data.labels, channels: 3, height: 64, width: 64, normalization, augment, seed: 0 }, workers);
      const order = Array.from({ length: batches * 64 }, (_, i) => i % data.count);
      let n = 0;
      let started = 0;
      for await (const b of pipeline.epoch(order, 64, 0, 0, 8)) {
        if (n === 4) started = performance.now(); // warm-up: worker start and JIT
        n++;
        void b;
      }
      const seconds = (performance.now() - started) / 1000;
      await pipeline.close();
      rows.push({ pipeline: name, workers, imagesPerSecond: Number((((batches - 4) * 64) / seconds).toFixed(0)) });
    }
  }
  const training = await throughput('seed CNN 64x64, SGD momentum', cnn, { imageSize: 64, numClasses: 30 }, { kind: 'sgd', momentum: 0.9 }, 5, os.availableParallelism());
  const oneWorker = rows.find((r) => r.pipeline === 'standard augmentation' && r.workers === 1)!.imagesPerSecond;
  const ratio = oneWorker / training.imagesPerSecond;
  if (args.includes('--json')) {
    console.log(JSON.stringify({ rows, training, ratio: Number(ratio.toFixed(1)) }));
    return;
  }
  console.log(`\ndata pipeline (64x64, batch 64, ${batches - 4} batches after warm-up)`);
  console.log('pipeline                 workers   images/s');
  for (const r of rows) console.log(`${r.pipeline.padEnd(25)}${String(r.workers).padStart(7)}${String(r.imagesPerSecond).padStart(11)}`);
  console.log(`seed CNN 64x64 training consumes ${training.imagesPerSecond.toFixed(0)} images/s: one worker with standard augmentation is ${ratio.toFixed(1)}x that (target >= 3x: ${ratio >= 3 ? 'met' : 'NOT met'})`);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
