/**
 * The Teach page's speed in headless Chromium (onnxruntime-web on wasm, 2 threads), as a user meets it: MobileNetV2
 * features per image and head updates per second when 3 sample classes x 10 images are taught for 20 epochs, and
 * updates per second when the small shapes CNN (graphs/cnn.ts at 32 px, 10 classes, as `deepvision train
 * graphs/cnn.ts --data shapes` builds it) is fine-tuned whole on 10 sample images of each of its classes.
 *
 *   node bench/run.js bench/teach.ts [--epochs N] [--json]
 *
 * Needs Debian's chromium, the built page (npm run build) and the shared folder's MobileNetV2 (DEEPVISION_SHARED).
 */
import * as fs from 'node:fs';
import type * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, Page } from 'playwright-core';
import cnn from '../graphs/cnn';
import transfer from '../graphs/transfer';
import { writeTrainingArtifacts } from '../src/artifacts/write-artifacts';
import { SHAPE_CLASSES } from '../src/data/shapes';
import { writeTeachBundle } from '../src/export/teach-bundle';
import { demoServerOptions, startStaticServer } from '../src/serve/static-server';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
/** Epochs of whole-model fine-tuning (each is 8 updates of 8 images on 100 samples, 20 held out). */
const wholeEpochs = flag('--epochs', 3);
const CHROMIUM = '/usr/bin/chromium';
const shared = process.env.DEEPVISION_SHARED ?? path.resolve(__dirname, '..', '..', 'shared');
const backbone = path.join(shared, 'models', 'mobilenetv2-7-fp32.onnx');
const page = path.resolve(__dirname, '..', 'web-demo', 'teach.js');

interface Speed { featureMs: number; trainSeconds: number; stepsPerSecond: number; heldOutAccuracy: number }

async function main(): Promise<void> {
  const missing = [[CHROMIUM, 'install Debian\'s chromium'], [backbone, 'set DEEPVISION_SHARED'], [page, 'run npm run build']].find(([file]) => !fs.existsSync(file!));
  if (missing !== undefined) {
    console.log(`teach bench skipped: ${missing[0]} not found (${missing[1]})`);
    return;
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-teach-bench-'));
  let server: http.Server | undefined;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const models = path.join(tmp, 'models');
    await writeTeachBundle(transfer, path.join(models, 'mobilenetv2'), { backbone, classCounts: [3] });
    // The shapes CNN's run folder at its initial values: an update costs the same whatever the values are.
    const run = path.join(tmp, 'cnn-run');
    fs.mkdirSync(run);
    writeTrainingArtifacts(cnn, run, {
      config: { numClasses: SHAPE_CLASSES.length, imageSize: 32 }, seed: 0, optimizer: { kind: 'adam' },
      metadata: { 'deepvision.normalization': JSON.stringify({ mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }), 'deepvision.classes': JSON.stringify(SHAPE_CLASSES) },
    });
    const cnnCard = (await writeTeachBundle(transfer, path.join(models, 'cnn-run'), { backbone: run, classCounts: [3] })).card;
    const demo = demoServerOptions();
    let url: string;
    ({ server, url } = await startStaticServer({ ...demo, mounts: { '/models/': models, ...demo.mounts }, port: 0 }));

    const open = async (bundle: string): Promise<Page> => {
      const p = await browser.newPage();
      await p.goto(`${url}teach.html?threads=2&bundle=${bundle}`);
      await p.waitForSelector('#status[data-state="ready"], #status[data-state="error"]', { state: 'attached', timeout: 120000 });
      return p;
    };
    const head = await trainWithSamples(await open('mobilenetv2'), undefined);
    const whole = await trainWithSamples(await open('cnn-run'), wholeEpochs);
    const parameters = cnnCard.wholeModel!.parameters.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
    const result = {
      runtime: 'onnxruntime-web wasm, 2 threads, headless Chromium', cores: os.availableParallelism(), load: os.loadavg()[0] ?? 0,
      mobilenetv2: { featureMsPerImage: head.featureMs, headEpochs: 20, headSeconds: head.trainSeconds, headUpdatesPerSecond: head.stepsPerSecond, heldOutAccuracy: head.heldOutAccuracy },
      shapesCnn: { parameters, epochs: wholeEpochs, seconds: whole.trainSeconds, updatesPerSecond: whole.stepsPerSecond },
    };
    if (args.includes('--json')) console.log(JSON.stringify(result));
    else {
      console.log(`teach page (${result.runtime}; ${result.cores} cores, load ${result.load.toFixed(1)}):`);
      console.log(`  MobileNetV2 features: ${head.featureMs.toFixed(0)} ms per image (3 sample classes x 10 images)`);
      console.log(`  new head, 20 epochs: ${head.trainSeconds.toFixed(2)} s with evaluation, ${head.stepsPerSecond.toFixed(0)} updates/s (target: under 10 s)`);
      console.log(`  whole shapes CNN (${parameters.toLocaleString('en-US')} values), ${wholeEpochs} epochs on 10 x 10 samples: ${whole.trainSeconds.toFixed(2)} s, ${whole.stepsPerSecond.toFixed(2)} updates/s of 8 images`);
    }
  } finally {
    await browser.close();
    server?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Loads the page's sample shapes, trains (the whole model when `wholeEpochs` is given), and reads the page's speed line. */
async function trainWithSamples(p: Page, wholeEpochs: number | undefined): Promise<Speed> {
  if (wholeEpochs !== undefined) await p.check('input[name="mode"][value="whole"]');
  await p.click('#use-samples');
  // After the samples: loading them resets the settings to the mode's defaults.
  if (wholeEpochs !== undefined) await p.fill('#epochs-input', String(wholeEpochs));
  await p.click('#train');
  await p.waitForSelector('#status[data-state="trained"], #status[data-state="error"], #status[data-state="invalid"]', { state: 'attached', timeout: 600000 });
  const error = await p.textContent('#error');
  if (error) throw new Error(`the Teach page shows an error: ${error}`);
  const speed = await p.$eval('#speed', (e) => ({ ...(e as unknown as { dataset: Record<string, string> }).dataset }));
  const accuracy = await p.$$eval('#epochs tbody tr', (rows) => Number((rows[rows.length - 1] as unknown as { dataset: Record<string, string> }).dataset.heldOutAccuracy));
  await p.close();
  return { featureMs: Number(speed.featureMs), trainSeconds: Number(speed.trainSeconds), stepsPerSecond: Number(speed.stepsPerSecond), heldOutAccuracy: accuracy };
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
