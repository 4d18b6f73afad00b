/**
 * Caption latency per image, greedy and beam 3: in Node (CaptionModel: encoder, then one step-model run per token
 * with the beams as rows) and, given a trained captioner, in the demo page (onnxruntime-web, wasm) in headless
 * Chromium, as the page itself times it.
 *
 *   node bench/run.js bench/caption-latency.ts [--model DIR] [--image FILE] [--runs N] [--json]
 *
 * --model: a captioner's training run or exported folder (e.g. one trained on Flickr8k). Without it, Node's figures
 * come from the reference decoder with random weights on ../shared's MobileNetV2 (or the small CNN without it) and
 * a vocabulary of 2,500 made-up words: random weights never choose <end>, so every caption runs to the longest
 * length, the worst case. The page needs a trained model (--model) and /usr/bin/chromium.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import captioner from '../graphs/captioner';
import { Vocabulary } from '../src/portable/vocabulary';
import { decodeImage } from '../src/data/decode-image';
import { buildEntryPoint } from '../src/model/build';
import { encodeModel } from '../src/onnx/write';
import { CaptionModel } from '../src/runtime/caption-model';

const args = process.argv.slice(2);
const option = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const runs = Number(option('--runs') ?? 5);
const ROOT = path.resolve(__dirname, '..');
const shared = process.env.DEEPVISION_SHARED ?? path.resolve(ROOT, '..', 'shared');
const CHROMIUM = '/usr/bin/chromium';

interface Timing { greedyMs: number; beam3Ms: number; greedyWords: number; beam3Words: number }

async function randomModel(): Promise<{ model: CaptionModel; what: string }> {
  const backbone = path.join(shared, 'models', 'mobilenetv2-7-fp32.onnx');
  const withBackbone = fs.existsSync(backbone);
  // Words are letters only (as the tokenizer leaves them): aaa, aab, ...
  const words = Array.from({ length: 2496 }, (_, i) => [676, 26, 1].map((d) => String.fromCharCode(97 + (Math.floor(i / d) % 26))).join(''));
  const vocabulary = Vocabulary.build([words], 1);
  const config = { ...captioner.defaults, ...(withBackbone ? captioner.variants!.reference : {}), ...(withBackbone ? { backbone } : {}), vocabularySize: vocabulary.size, maxLength: 22 };
  const [encoder, step] = ['encoder', 'step'].map((entry) => encodeModel(buildEntryPoint(captioner, entry, { variant: withBackbone ? 'reference' : undefined, config, seed: 0 })));
  const normalization = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
  const model = await CaptionModel.fromParts({ vocabulary, encoder: encoder!, step: step!, imageSize: Number(config.imageSize), normalization, maxLength: 21 }, 'bench');
  return { model, what: `${withBackbone ? 'reference decoder on MobileNetV2' : 'small CNN + LSTM'}, random weights, vocabulary ${vocabulary.size}` };
}

async function nodeTiming(model: CaptionModel, image: Awaited<ReturnType<typeof decodeImage>>): Promise<Timing> {
  const time = async (beam: number) => {
    await model.caption(image, { beam });
    const times: number[] = [];
    let words = 0;
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const [best] = await model.caption(image, { beam });
      times.push(performance.now() - t0);
      words = best?.tokens.length ?? 0;
    }
    times.sort((a, b) => a - b);
    return { ms: times[Math.floor(times.length / 2)]!, words };
  };
  const greedy = await time(1);
  const beam3 = await time(3);
  return { greedyMs: greedy.ms, beam3Ms: beam3.ms, greedyWords: greedy.words, beam3Words: beam3.words };
}

/** The page's own timing of a caption, for a captioner exported with the given beam. */
async function pageTiming(modelDir: string, imageFile: string): Promise<{ greedyMs: number; beam3Ms: number } | string> {
  if (!fs.existsSync(CHROMIUM)) return `${CHROMIUM} not found`;
  if (!fs.existsSync(path.join(ROOT, 'web-demo', 'app.js'))) return 'the page is not built (npm run build)';
  const { chromium } = await import('playwright-core');
  const { demoServerOptions, startStaticServer } = await import('../src/serve/static-server');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-caption-bench-'));
  const bin = path.join(ROOT, 'bin', 'deepvision.js');
  try {
    for (const beam of [1, 3]) {
      const r = spawnSync(process.execPath, [bin, 'export', modelDir, '--out', path.join(tmp, `beam${beam}`), '--beam', String(beam)], { encoding: 'utf8' });
      if (r.status !== 0) return `export failed: ${r.stderr.trim()}`;
    }
    const demo = demoServerOptions();
    const { server, url } = await startStaticServer({ ...demo, mounts: { '/models/': tmp, ...demo.mounts }, port: 0 });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
    try {
      const result: Record<string, number> = {};
      for (const beam of [1, 3]) {
        const page = await browser.newPage();
        await page.goto(`${url}?captioner=beam${beam}`);
        const times: number[] = [];
        for (let i = 0; i <= runs; i++) {
          // A fresh file name each time, so that the page captions it again.
          const copy = path.join(tmp, `image-${beam}-${i}${path.extname(imageFile)}`);
          fs.copyFileSync(imageFile, copy);
          await page.setInputFiles('#file-input', copy);
          await page.waitForSelector(`#caption[data-state="done"][data-image=${JSON.stringify(path.basename(copy))}], #caption[data-state="error"]`, { state: 'attached', timeout: 120000 });
          const timing = (await page.textContent('#caption-timing')) ?? '';
          const ms = Number(/Caption: ([\d.]+) ms/.exec(timing)?.[1]);
          if (!Number.isFinite(ms)) return `the page showed no caption timing: ${await page.textContent('#caption')}`;
          if (i > 0) times.push(ms);
        }
        times.sort((a, b) => a - b);
        result[beam === 1 ? 'greedyMs' : 'beam3Ms'] = times[Math.floor(times.length / 2)]!;
        await page.close();
      }
      return { greedyMs: result.greedyMs!, beam3Ms: result.beam3Ms! };
    } finally {
      await browser.close();
      server.close();
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const modelDir = option('--model');
  const imageFile = option('--image') ?? [path.join(shared, 'models', 'samples', 'dog.jpg'), path.join(ROOT, 'test', 'fixtures', 'photos', 'dog-320.jpg')].find((f) => fs.existsSync(f))!;
  const image = await decodeImage(imageFile);
  const { model, what } = modelDir !== undefined ? { model: await CaptionModel.fromDirectory(modelDir), what: modelDir } : await randomModel();
  const node = await nodeTiming(model, image);
  await model.release();
  const page = modelDir !== undefined ? await pageTiming(modelDir, imageFile) : 'needs a trained captioner (--model DIR)';
  const result = { model: what, image: path.basename(imageFile), threads: os.availableParallelism(), runs, node, page };
  if (args.includes('--json')) {
    console.log(JSON.stringify(result));
    return;
  }
  console.log(`caption latency per image (${what}; ${path.basename(imageFile)}; median of ${runs}; ${result.threads} threads)`);
  console.log(`  node: greedy ${node.greedyMs.toFixed(1)} ms (${node.greedyWords} words), beam 3 ${node.beam3Ms.toFixed(1)} ms (${node.beam3Words} words)`);
  console.log(typeof page === 'string' ? `  page: skipped: ${page}` : `  page (onnxruntime-web, wasm): greedy ${page.greedyMs.toFixed(1)} ms, beam 3 ${page.beam3Ms.toFixed(1)} ms`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
