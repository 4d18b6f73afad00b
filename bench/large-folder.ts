/**
 * A data set larger than memory at 224 px (issue 21): a generated folder of --images JPEGs (default 200,000, ten
 * classes of 64x64 pictures, as Tiny ImageNet's; generated once into the OS's temporary folder, never committed) is
 *   1. trained on by `deepvision train graphs/cnn.ts --image-size 224` and by `deepvision transfer` (frozen and with
 *      every layer trained), each stopped with Ctrl-C after --seconds of training or feature extraction: their peak
 *      resident memory, which must stay under 2 GB whatever the number of images;
 *   2. read back from the record cache by the batch pipeline (standard augmentation, 224 px), next to what the seed
 *      CNN consumes at 224 px (target: 3x), and a second epoch's plain reads (target: 1,000 images/s).
 *
 *   node bench/run.js bench/large-folder.ts [--images N] [--seconds S] [--json]   (npm run build first)
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import cnn from '../graphs/cnn';
import { STANDARD_AUGMENTATION } from '../src/data/augment';
import { loadImageSet } from '../src/data/load-image-set';
import { Rng } from '../src/util/rng';
import { throughput } from './training-throughput';

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const images = option('--images', 200_000);
const seconds = option('--seconds', 60);
const ROOT = path.resolve(__dirname, '..');
const BACKBONE = path.join(ROOT, '..', 'shared', 'models', 'mobilenetv2-7-fp32.onnx');

/** Generates the folder once (ten class folders of 64x64 JPEGs: blocks of colour from a seeded generator). */
async function generateFolder(dir: string, images: number): Promise<number> {
  const done = path.join(dir, '.complete');
  if (fs.existsSync(done)) return 0;
  const started = performance.now();
  fs.rmSync(dir, { recursive: true, force: true });
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < images; i = next++) {
      const rng = new Rng(`large-folder/${i}`);
      const raw = Buffer.alloc(64 * 64 * 3);
      for (let block = 0; block < 64; block++) {
        const [r, g, b] = [rng.int(256), rng.int(256), rng.int(256)];
        const [bx, by] = [(block % 8) * 8, Math.floor(block / 8) * 8];
        for (let y = by; y < by + 8; y++) for (let x = bx; x < bx + 8; x++) raw.set([r, g, b], (y * 64 + x) * 3);
      }
      const folder = path.join(dir, `class${i % 10}`);
      fs.mkdirSync(folder, { recursive: true });
      await sharp(raw, { raw: { width: 64, height: 64, channels: 3 } }).jpeg({ quality: 85 }).toFile(path.join(folder, `${i}.jpg`));
      if (i % 20000 === 0) console.error(`generated ${i.toLocaleString('en-US')} of ${images.toLocaleString('en-US')} images`);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  fs.writeFileSync(done, '');
  return (performance.now() - started) / 1000;
}

/**
 * Runs the CLI, sends Ctrl-C `after` seconds past the line that starts training (or the feature pass), and returns
 * its peak resident memory (GNU time's figure for the largest process of the run) and how long each phase took.
 */
function runCli(cliArgs: string[], startLine: RegExp, after: number): Promise<{ peakMb: number; decodeSeconds: number; lines: string[] }> {
  return new Promise((resolve, reject) => {
    const rssFile = path.join(os.tmpdir(), `deepvision-bench-rss-${process.pid}`);
    const child = spawn('/usr/bin/time', ['-f', '%M', '-o', rssFile, process.execPath, path.join(ROOT, 'bin', 'deepvision.js'), ...cliArgs], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const started = performance.now();
    let decodeSeconds = 0;
    let stop: NodeJS.Timeout | undefined;
    const lines: string[] = [];
    const onLine = (text: string) => {
      for (const line of text.split('\n').filter((l) => l.trim() !== '')) {
        lines.push(line);
        if (decodeSeconds === 0 && startLine.test(line)) {
          decodeSeconds = (performance.now() - started) / 1000;
          // The run may have ended by itself by then (a small folder's epoch).
          stop = setTimeout(() => {
            try {
              process.kill(-child.pid!, 'SIGINT');
            } catch {
              // Already gone.
            }
          }, after * 1000);
        }
      }
    };
    child.stdout.on('data', (d: Buffer) => onLine(d.toString()));
    child.stderr.on('data', (d: Buffer) => onLine(d.toString()));
    child.on('error', reject);
    child.on('exit', () => {
      clearTimeout(stop);
      const kb = Number(fs.readFileSync(rssFile, 'utf8').trim().split('\n').pop());
      fs.rmSync(rssFile, { force: true });
      resolve({ peakMb: Math.round(kb / 1024), decodeSeconds, lines });
    });
  });
}

/** Peak memory of train, transfer (frozen) and transfer --unfreeze all on a folder, each stopped after `seconds`. */
async function measureRuns(dir: string, cacheDir: string): Promise<{ run: string; peakMb: number; decodeSeconds: number }[]> {
  const common = ['--data', dir, '--image-size', '224', '--epochs', '1', '--cache-dir', cacheDir, '--no-progress'];
  const runs: { run: string; peakMb: number; decodeSeconds: number }[] = [];
  const trainRun = await runCli(['train', path.join(ROOT, 'graphs', 'cnn.ts'), ...common, '--batch-size', '16', '--out', path.join(cacheDir, 'run-train')], /^(adam|sgd)/, seconds);
  runs.push({ run: 'train graphs/cnn.ts --batch-size 16', peakMb: trainRun.peakMb, decodeSeconds: trainRun.decodeSeconds });
  // The seed CNN's own memory at 224 px is over 2 GB (a 200-million-weight classifier and Adam's slots); the
  // reference CNN's is not, so its peak shows what the pipeline leaves to a model of ordinary size.
  const referenceRun = await runCli(['train', path.join(ROOT, 'graphs', 'reference-cnn.ts'), ...common, '--batch-size', '16', '--out', path.join(cacheDir, 'run-reference')], /^(adam|sgd)/, seconds);
  runs.push({ run: 'train graphs/reference-cnn.ts --batch-size 16', peakMb: referenceRun.peakMb, decodeSeconds: referenceRun.decodeSeconds });
  if (fs.existsSync(BACKBONE)) {
    const frozen = await runCli(['transfer', BACKBONE, ...common, '--out', path.join(cacheDir, 'run-frozen')], /^(adam|sgd)/, seconds);
    runs.push({ run: 'transfer MobileNetV2, frozen', peakMb: frozen.peakMb, decodeSeconds: frozen.decodeSeconds });
    const tuned = await runCli(['transfer', BACKBONE, ...common, '--unfreeze', 'all', '--batch-size', '16', '--out', path.join(cacheDir, 'run-tuned')], /^(adam|sgd)/, seconds);
    runs.push({ run: 'transfer --unfreeze all --batch-size 16', peakMb: tuned.peakMb, decodeSeconds: tuned.decodeSeconds });
  }
  return runs;
}

(async () => {
  if (!fs.existsSync('/usr/bin/time')) throw new Error('this bench needs GNU time (/usr/bin/time, Debian package time) to measure peak memory');
  const dir = path.join(os.tmpdir(), `deepvision-bench-large-${images}`);
  const cacheDir = path.join(os.tmpdir(), `deepvision-bench-large-${images}-cache`);
  const generated = await generateFolder(dir, images);
  // The same commands on 1,000 images: what the model itself takes, which the data set's size must not add to.
  const smallDir = path.join(os.tmpdir(), 'deepvision-bench-large-1000');
  await generateFolder(smallDir, 1000);
  const small = await measureRuns(smallDir, `${smallDir}-cache`);
  const large = await measureRuns(dir, cacheDir);
  const runs = large.map((r, i) => ({ ...r, peakMbAt1000: small[i]!.peakMb }));

  // The pipeline on the cached records: a shuffled epoch's batches, standard augmentation, and plain reads.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { BatchPipeline } = require('../dist/data/batch-pipeline') as typeof import('../src/data/batch-pipeline');
  const { train } = await loadImageSet(dir, { imageSize: 224, cacheDir });
  const order = new Rng('bench-order').shuffle([...Array(train.count).keys()]);
  const pipelineRows: { pipeline: string; workers: number; imagesPerSecond: number }[] = [];
  for (const [name, augment] of [['plain reads (second epoch)', { ...STANDARD_AUGMENTATION, cropPadding: 0, hflip: 0 }], ['standard augmentation', STANDARD_AUGMENTATION]] as const) {
    for (const workers of [0, 2]) {
      const pipeline = new BatchPipeline({ source: train.records, labels: train.labels, channels: 3, height: 224, width: 224, normalization: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }, augment, seed: 0 }, workers);
      const batches = 60;
      let n = 0;
      let started = 0;
      for await (const b of pipeline.epoch(order.slice(0, batches * 32), 32, 0, 0, 8)) {
        if (n === 4) started = performance.now();
        n++;
        void b;
      }
      await pipeline.close();
      pipelineRows.push({ pipeline: name, workers, imagesPerSecond: Math.round(((batches - 4) * 32) / ((performance.now() - started) / 1000)) });
    }
  }
  const training = await throughput('seed CNN 224x224, SGD momentum', cnn, { imageSize: 224, numClasses: 10 }, { kind: 'sgd', momentum: 0.9 }, 5, os.availableParallelism());
  const cacheBytes = spawnSync('du', ['-sb', cacheDir], { encoding: 'utf8' }).stdout.split('\t')[0];
  const result = { images, generatedSeconds: Math.round(generated), seconds, cacheGb: Number((Number(cacheBytes) / 1e9).toFixed(1)), runs, pipelineRows, trainingImagesPerSecond: Number(training.imagesPerSecond.toFixed(1)) };
  if (args.includes('--json')) {
    console.log(JSON.stringify(result));
    return;
  }
  console.log(`\n${images.toLocaleString('en-US')} generated JPEGs at 224 px (records: ${result.cacheGb} GB on disk)`);
  console.log(`run (stopped after ${seconds} s of work)             peak RSS, 1,000 images   peak RSS, ${images.toLocaleString('en-US')}   start-up (decoding)`);
  for (const r of runs) console.log(`${r.run.padEnd(44)}${`${r.peakMbAt1000} MB`.padStart(12)}${`${r.peakMb} MB`.padStart(14)}${`${r.decodeSeconds.toFixed(0)} s`.padStart(12)}`);
  console.log('\npipeline from the record cache (batch 32)   workers   images/s');
  for (const r of pipelineRows) console.log(`${r.pipeline.padEnd(44)}${String(r.workers).padStart(7)}${String(r.imagesPerSecond).padStart(11)}`);
  console.log(`seed CNN at 224 px consumes ${training.imagesPerSecond.toFixed(1)} images/s`);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
