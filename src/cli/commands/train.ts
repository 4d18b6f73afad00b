import * as fs from 'node:fs';
import * as path from 'node:path';
import cliProgress from 'cli-progress';
import { Command, Option } from 'commander';
import { loadData } from '../../data/registry';
import { TensorData } from '../../ir/tensor';
import { buildEntryPoint } from '../../model/build';
import { writeModelFile } from '../../onnx/write';
import { CaptionData, loadCaptionData } from '../../data/captions/load-captions';
import type { OptimizerConfig } from '../../optim/config';
import type { Schedule } from '../../optim/schedule';
import { EpochMetrics, train } from '../../train/trainer';
import { isUserFacing, UserError } from '../errors';
import { collectAssignments, configFromFlags } from '../config-flags';
import { loadGraphFile } from '../load-graph';
import { writeTrainingArtifacts } from '../../artifacts/write-artifacts';
import { checkpointConfig, loadCheckpoint } from '../../train/checkpoint';
import { SUMMARY_FILE } from '../../train/run-summary';
import { chooseDevice, describeChoice, DeviceRequest } from '../../runtime/device';
import { nchwcBlockSize } from '../../runtime/nchwc';
import { describeAugmentation } from '../../data/augment';
import { resolveConfig } from '../../model/definition';
import { addAugmentOptions, AugmentFlags, augmentFromFlags } from '../augment-flags';
import { applyConfigFile } from '../config-file';

interface TrainFlags extends AugmentFlags {
  data: string;
  trainSize?: string;
  valSize?: string;
  imageSize?: string;
  valFraction?: string;
  cacheDir?: string;
  workers?: string;
  trainEvalSize: string;
  config?: string;
  epochs: string;
  batchSize: string;
  optimizer: 'sgd' | 'adam' | 'adamw';
  lr: string;
  backboneLr?: string;
  momentum: string;
  nesterov?: boolean;
  weightDecay: string;
  schedule: 'constant' | 'step' | 'cosine';
  stepSize: string;
  gamma: string;
  warmupSteps: string;
  clipGradNorm?: string;
  labelSmoothing: string;
  patience?: string;
  seed: string;
  threads: string;
  out?: string;
  resume?: string;
  variant?: string;
  set: string[];
  progress: boolean;
  device: DeviceRequest;
  graphOptimization: 'disabled' | 'basic' | 'extended' | 'all';
  blockedConv: boolean;
  featureCache: boolean;
  minCount?: string;
  maxLength?: string;
  bleuImages?: string;
}

const num = (name: string, v: string, check: (n: number) => boolean = Number.isFinite): number => {
  const n = Number(v);
  if (v === '' || !check(n)) throw new UserError(`--${name} got '${v}', which is not valid here`);
  return n;
};
const positiveInt = (n: number) => Number.isInteger(n) && n > 0;

export function trainCommand(): Command {
  const command = new Command('train')
    .summary('train a model from a graph file on a data set')
    .description(
      'Builds the training graph (forward, generated backward pass, loss) and the optimizer graph of a model '
      + 'and trains it in onnxruntime-node: seeded shuffling, validation every epoch (loss, top-1, top-5), best and '
      + 'last checkpoints (safetensors), metrics.jsonl, early stopping, --resume, a NaN guard, and Ctrl-C that '
      + 'saves a checkpoint before exiting.')
    .argument('<graph>', 'graph file whose default export is defineModel({...}), e.g. graphs/cnn.ts')
    .option('--data <name|folder>', 'data set: shapes (generated, no download), or a folder: Tiny ImageNet layout, CIFAR-10 binary batches, or one sub-folder per class (optionally under train/ and val/ or test/)', 'shapes')
    .option('--train-size <n>', 'training images (shapes: how many to generate, default 10000; folders: a seeded sample, default all)')
    .option('--val-size <n>', 'validation images (shapes: default 2000; folders: a seeded sample, default all)')
    .option('--image-size <n>', 'image size in pixels (default: the model\'s imageSize for folders, 32 for shapes)')
    .option('--val-fraction <f>', 'folders: hold out this fraction of the training images (seeded) as validation instead of the set\'s own split (default: own split, else 0.2)')
    .option('--cache-dir <dir>', 'where decoded images are cached (default: ~/.cache/deepvision or $DEEPVISION_CACHE)')
    .option('--workers <n>', 'threads that assemble and augment batches ahead of training (default: 1 with augmentation, else 0)')
    .option('--epochs <n>', 'epochs', '10')
    .option('--batch-size <n>', 'images per update', '64')
    .addOption(new Option('--optimizer <name>', 'optimizer').choices(['sgd', 'adam', 'adamw']).default('adam'))
    .option('--lr <rate>', 'base learning rate', '0.001')
    .option('--backbone-lr <rate>', 'learning rate of the backbone\'s parameters (those named backbone.*) when they train, e.g. 10x smaller than --lr for fine-tuning')
    .option('--momentum <m>', 'SGD momentum', '0.9')
    .option('--nesterov', 'SGD with Nesterov momentum')
    .option('--weight-decay <wd>', 'weight decay (L2 for SGD/Adam, decoupled for AdamW)', '0')
    .addOption(new Option('--schedule <name>', 'learning-rate schedule').choices(['constant', 'step', 'cosine']).default('constant'))
    .option('--step-size <epochs>', 'step schedule: epochs between decays', '10')
    .option('--gamma <factor>', 'step schedule: decay factor', '0.1')
    .option('--warmup-steps <n>', 'linear learning-rate warm-up over this many updates', '0')
    .option('--clip-grad-norm <max>', 'clip gradients to this global L2 norm')
    .option('--label-smoothing <s>', 'cross-entropy label smoothing', '0')
    .option('--patience <epochs>', 'stop early when the validation loss has not improved for this many epochs')
    .option('--seed <n>', 'seed of initialization, data and shuffling', '0')
    .option('--threads <n>', 'onnxruntime intra-op threads (0 = one per core)', '0')
    .addOption(new Option('--graph-optimization <level>', 'onnxruntime graph optimization level').choices(['disabled', 'basic', 'extended', 'all']).default('extended'))
    .option('--min-count <n>', 'captioners: words seen fewer times in the training captions become <unk> (default 5; shapes 1)')
    .option('--max-length <n>', 'captioners: tokens per caption, <start> and <end> included; longer captions are cut (default 22)')
    .option('--bleu-images <n>', 'captioners: validation images captioned (greedy) for BLEU each epoch (default 500)')
    .option('--no-feature-cache', 'run a frozen backbone on every batch instead of once per image (its features are otherwise cached on disk, beside the decoded images)')
    .option('--no-blocked-conv', "on the CPU, run convolutions with standard ONNX Conv instead of onnxruntime's faster channel-blocked kernels")
    .addOption(new Option('--device <device>', 'execution provider: auto tries CUDA, then WebGPU, then the CPU').choices(['auto', 'cpu', 'cuda', 'webgpu']).default('auto'))
    .option('-o, --out <dir>', 'output folder (default: models/<name>-<data folder name>)')
    .option('--resume <checkpoint>', 'continue from a last.safetensors of an earlier run with the same settings')
    .option('-v, --variant <name>', 'a named set of config changes the graph file defines')
    .option('-s, --set <key=value>', 'change one config value (repeatable)', collectAssignments, [])
    .option('--train-eval-size <n>', 'training images (a fixed seeded sample) evaluated each epoch for the train top-1 (0: none)', '2000')
    .option('--no-progress', 'print one line per epoch instead of a progress bar')
    .option('--config <file>', 'JSON file of option values, e.g. {"epochs": 30, "augment": "standard"}; command-line options win')
    .addHelpText('after', '\nExamples:\n  deepvision train graphs/cnn.ts --data shapes --epochs 5\n  deepvision train graphs/cnn.ts --data ../shared/data/tiny-imagenet-30 \\\n      --val-fraction 0.2 --augment standard --optimizer sgd --lr 0.01\n  deepvision train graphs/mlp.ts --optimizer sgd --lr 0.01 --momentum 0.9 \\\n      --schedule cosine\n  deepvision train graphs/cnn.ts --resume models/cnn-shapes/last.safetensors')
    .hook('preAction', (cmd) => {
      const file = cmd.opts<TrainFlags>().config;
      if (file !== undefined) applyConfigFile(cmd, file);
    })
    .action(async (graphFile: string, f: TrainFlags) => {
      if (f.out !== undefined && fs.existsSync(f.out) && !fs.statSync(f.out).isDirectory()) throw new UserError(`--out ${f.out} is a file, not a folder`);
      const definition = loadGraphFile(graphFile);
      const config = configFromFlags(definition, f.set);
      const augment = augmentFromFlags(f);
      const epochs = num('epochs', f.epochs, positiveInt);
      const batchSize = num('batch-size', f.batchSize, positiveInt);
      const lr = num('lr', f.lr, (n) => n > 0);
      const weightDecay = num('weight-decay', f.weightDecay, (n) => n >= 0);
      const optimizer: OptimizerConfig = f.optimizer === 'sgd'
        ? { kind: 'sgd', momentum: num('momentum', f.momentum, (n) => n >= 0 && n < 1), nesterov: f.nesterov, weightDecay }
        : { kind: f.optimizer, weightDecay };
      const seed = num('seed', f.seed, (n) => Number.isInteger(n) && n >= 0);
      let data;
      const optionalInt = (name: string, v: string | undefined) => (v === undefined ? undefined : num(name, v, positiveInt));
      let modelImageSize: unknown;
      try {
        modelImageSize = resolveConfig(definition, f.variant, config).imageSize;
      } catch (err) {
        throw new UserError((err as Error).message);
      }
      // An imageSize the user set (--set) sizes the data; else folders use the model's own, shapes its 32 px.
      const imageSize = optionalInt('image-size', f.imageSize)
        ?? (typeof config.imageSize === 'number' ? config.imageSize : f.data !== 'shapes' && typeof modelImageSize === 'number' ? modelImageSize : 32);
      const decodeBar = process.stdout.isTTY && f.progress ? new cliProgress.SingleBar({ format: 'decoding images |{bar}| {value}/{total} | ETA {eta_formatted}', hideCursor: true }, cliProgress.Presets.shades_classic) : undefined;
      let captions: CaptionData | undefined;
      try {
        const common = {
          trainSize: optionalInt('train-size', f.trainSize), valSize: optionalInt('val-size', f.valSize), imageSize, seed,
          valFraction: f.valFraction === undefined ? undefined : num('val-fraction', f.valFraction, (n) => n > 0 && n < 1), cacheDir: f.cacheDir,
          onProgress: (done: number, total: number) => {
            if (!decodeBar) return;
            if (done <= 256) decodeBar.start(total, done);
            decodeBar.update(done);
            if (done === total) decodeBar.stop();
          },
          onNotice: (message: string) => console.warn(message),
        };
        if (definition.task === 'captioning') {
          // Captioners: the caption data set's images, and each image's captions encoded with a vocabulary built
          // from the training split.
          captions = await loadCaptionData(f.data, {
            ...common, minCount: optionalInt('min-count', f.minCount) ?? (f.data === 'shapes' ? 1 : 5), maxLength: optionalInt('max-length', f.maxLength),
          });
          data = { train: captions.train.images, val: captions.val.images };
        } else data = await loadData(f.data, common);
      } catch (err) {
        if (isUserFacing(err)) throw err;
        throw new UserError((err as Error).message);
      } finally {
        decodeBar?.stop();
      }
      const workers = f.workers === undefined ? (describeAugmentation(augment) === 'none' ? 0 : 1) : num('workers', f.workers, (n) => Number.isInteger(n) && n >= 0 && n <= 64);
      const batches = Math.ceil((captions?.train.encoded.count ?? data.train.count) / batchSize);
      const schedule: Schedule = f.schedule === 'step'
        ? { kind: 'step', stepSize: num('step-size', f.stepSize, positiveInt) * batches, gamma: num('gamma', f.gamma, (n) => n > 0) }
        : f.schedule === 'cosine' ? { kind: 'cosine', totalSteps: epochs * batches } : { kind: 'constant' };
      let choice;
      try {
        choice = await chooseDevice(f.device);
      } catch (err) {
        throw new UserError((err as Error).message);
      }
      let convolutions = '';
      if (choice.device === 'cpu') {
        const block = f.blockedConv ? await nchwcBlockSize() : undefined;
        convolutions = block !== undefined
          ? `; convolutions on onnxruntime's channel-blocked CPU kernels (block ${block})`
          : `; convolutions as standard ONNX Conv${f.blockedConv ? ' (no blocked kernels on this CPU)' : ''}`;
      }
      console.log(describeChoice(choice) + convolutions);
      // Named after the data set's folder (not its path: `--data ../data/photos` gives models/cnn-photos).
      const dataLabel = f.data === 'shapes' ? 'shapes' : path.basename(path.resolve(f.data));
      const outDir = f.out ?? path.join('models', `${definition.name}${f.variant ? `-${f.variant}` : ''}-${dataLabel}`);
      console.log(captions !== undefined
        ? `Training ${definition.name} on ${f.data} (${data.train.count} train images with ${captions.train.encoded.count} captions / ${data.val.count} validation images, ${data.train.height}x${data.train.width}, vocabulary of ${captions.vocabulary.size} words, captions of up to ${captions.maxLength} tokens)`
        : `Training ${definition.name} on ${f.data} (${data.train.count} train / ${data.val.count} validation images, ${data.train.height}x${data.train.width}, ${data.train.classNames.length} classes)`);
      console.log(`${f.optimizer} lr ${lr}, batch ${batchSize}, ${epochs} epochs; augmentation: ${describeAugmentation(augment)}; writing to ${outDir}`);

      const bar = f.progress && process.stdout.isTTY
        ? new cliProgress.SingleBar({ format: 'epoch {epoch}/{epochs} |{bar}| {value}/{total} | loss {loss} | {ips} img/s | ETA {eta_formatted}', hideCursor: true }, cliProgress.Presets.shades_classic)
        : undefined;
      let stopRequested = false;
      let firstSigint = 0;
      const onSigint = () => {
        // One Ctrl-C can arrive twice: from the terminal and forwarded by the launcher (bin/deepvision.js).
        if (stopRequested && Date.now() - firstSigint < SAME_SIGNAL_MS) return;
        if (stopRequested) process.exit(130);
        stopRequested = true;
        firstSigint = Date.now();
        bar?.stop();
        console.error('\nStopping: saving a checkpoint after this batch (Ctrl-C again to quit at once)...');
      };
      process.on('SIGINT', onSigint);
      let barEpoch = -1;
      let featureBar: cliProgress.SingleBar | undefined;
      try {
        // Written by beforeSummary: the files are on disk before summary.json marks the run done.
        const artifacts: string[] = [];
        const result = await train({
          definition, variant: f.variant, config, train: data.train, val: data.val, epochs, batchSize, optimizer, learningRate: lr,
          learningRates: f.backboneLr === undefined ? undefined : { 'backbone.': num('backbone-lr', f.backboneLr, (n) => n > 0) },
          schedule, warmupSteps: num('warmup-steps', f.warmupSteps, (n) => Number.isInteger(n) && n >= 0),
          clipGradNorm: f.clipGradNorm === undefined ? undefined : num('clip-grad-norm', f.clipGradNorm, (n) => n > 0),
          labelSmoothing: num('label-smoothing', f.labelSmoothing, (n) => n >= 0 && n < 1),
          patience: f.patience === undefined ? undefined : num('patience', f.patience, positiveInt),
          seed, threads: num('threads', f.threads, (n) => Number.isInteger(n) && n >= 0), outDir, resume: f.resume, graphFile, augment, workers,
          trainAccuracySample: num('train-eval-size', f.trainEvalSize, (n) => Number.isInteger(n) && n >= 0),
          data: { source: f.data === 'shapes' ? 'shapes' : path.resolve(f.data), valFraction: f.valFraction === undefined ? undefined : Number(f.valFraction) }, dataLabel: f.data,
          executionProviders: choice.executionProviders, graphOptimizationLevel: f.graphOptimization, blockedConvolutions: f.blockedConv,
          shouldStop: () => stopRequested,
          cacheFeatures: f.featureCache, cacheDir: f.cacheDir, onNotice: (m) => console.warn(m), captions,
          bleuImages: f.bleuImages === undefined ? undefined : num('bleu-images', f.bleuImages, (n) => Number.isInteger(n) && n >= 0),
          onFeatures: (done, total, what) => {
            if (featureBar === undefined) {
              if (done === total || !(f.progress && process.stdout.isTTY)) return;
              featureBar = new cliProgress.SingleBar({ format: `backbone features (${what}) |{bar}| {value}/{total} | ETA {eta_formatted}`, hideCursor: true }, cliProgress.Presets.shades_classic);
              featureBar.start(total, done);
            }
            featureBar.update(done);
            if (done === total) {
              featureBar.stop();
              featureBar = undefined;
            }
          },
          onBatch: (e) => {
            if (!bar) return;
            if (e.epoch !== barEpoch) {
              if (barEpoch >= 0) bar.stop();
              barEpoch = e.epoch;
              bar.start(e.batches, e.batch, { epoch: e.epoch + 1, epochs, loss: '-', ips: '-' });
            }
            // NaN until the first loss is read back (on WebGPU it is read every few updates).
            bar.update(e.batch + 1, { loss: Number.isNaN(e.loss) ? '-' : e.loss.toFixed(4), ips: e.imagesPerSecond.toFixed(0) });
          },
          beforeSummary: (r) => {
            if (!r.best || r.stopped === 'interrupted') return;
            // The run's artifacts, with the best parameters: what `deepvision export` and other runtimes start from.
            const best = loadCheckpoint(r.bestCheckpoint);
            const values = new Map<string, Float32Array>();
            for (const [name, t] of best.tensors) values.set(name, t.data as Float32Array);
            writeTrainingArtifacts(definition, outDir, {
              variant: f.variant, config: checkpointConfig(best.metadata, r.bestCheckpoint), seed, optimizer,
              values, metadata: best.metadata,
            });
            const written = ['training_model.onnx', 'eval_model.onnx', 'optimizer_model.onnx', 'inference_model.onnx', 'checkpoint.safetensors'];
            if (captions !== undefined) {
              // A captioner's generation graphs, with the best parameters: what `caption` and the page run (no graph file needed).
              const trained = new Map<string, TensorData>();
              for (const [name, t] of best.tensors) if (!name.startsWith('optimizer.')) trained.set(name, TensorData.fromTyped('float32', [...t.dims], t.data as Float32Array));
              const build = { variant: f.variant, config: checkpointConfig(best.metadata, r.bestCheckpoint), values: trained };
              for (const entry of ['encoder', 'step']) writeModelFile(buildEntryPoint(definition, entry, build), path.join(outDir, `${entry}_model.onnx`));
              written.push('encoder_model.onnx', 'step_model.onnx');
            }
            artifacts.push(...written);
          },
          onEpoch: (m) => {
            bar?.stop();
            barEpoch = -1;
            console.log(formatEpoch(m));
          },
        });
        console.log(summaryTable(result.history));
        if (result.best) console.log(`Best: epoch ${result.best.epoch}, validation top-1 ${(100 * result.best.valTop1).toFixed(2)} %, loss ${result.best.valLoss.toFixed(4)} -> ${result.bestCheckpoint}`);
        if (result.stopped === 'interrupted') {
          console.log(`Interrupted; resume with --resume ${result.lastCheckpoint}`);
          // As shells expect of a program stopped by Ctrl-C (128 + SIGINT), after the checkpoint is saved.
          process.exitCode = 130;
        }
        if (result.stopped === 'early-stopping') console.log('Stopped early: the validation loss stopped improving.');
        if (artifacts.length > 0) console.log(`Artifacts (best parameters): ${artifacts.map((n) => path.join(outDir, n)).join(', ')}`);
        console.log(`Metrics: ${path.join(outDir, 'metrics.jsonl')}, summary: ${path.join(outDir, SUMMARY_FILE)}`);
      } finally {
        bar?.stop();
        process.off('SIGINT', onSigint);
      }
    });
  return addAugmentOptions(command);
}

/** SIGINTs closer together than this are one Ctrl-C delivered twice. */
const SAME_SIGNAL_MS = 500;

function formatEpoch(m: EpochMetrics): string {
  if (m.valBleu !== undefined) {
    return `epoch ${m.epoch}: train loss ${m.trainLoss.toFixed(4)} | val loss ${m.valLoss.toFixed(4)} next-word top-1 ${(100 * m.valTop1).toFixed(2)} % BLEU-4 ${m.valBleu[3]!.toFixed(3)} (BLEU-1 ${m.valBleu[0]!.toFixed(3)}) | ${m.imagesPerSecond.toFixed(0)} captions/s, ${m.seconds.toFixed(1)} s`;
  }
  const trainTop1 = m.trainTop1 === undefined ? '' : ` top-1 ${(100 * m.trainTop1).toFixed(2)} %`;
  return `epoch ${m.epoch}: train loss ${m.trainLoss.toFixed(4)}${trainTop1} | val loss ${m.valLoss.toFixed(4)} top-1 ${(100 * m.valTop1).toFixed(2)} % top-5 ${(100 * m.valTop5).toFixed(2)} % | ${m.imagesPerSecond.toFixed(0)} img/s, ${m.seconds.toFixed(1)} s`;
}

function summaryTable(history: EpochMetrics[]): string {
  const header = 'epoch  train loss  train top-1  val loss  val top-1  val top-5   img/s';
  const percent = (v: number | undefined) => (v === undefined ? '      -  ' : `${(100 * v).toFixed(2).padStart(9)} %`);
  const rows = history.map((m) => `${String(m.epoch).padStart(5)}${m.trainLoss.toFixed(4).padStart(12)}  ${percent(m.trainTop1)}${m.valLoss.toFixed(4).padStart(10)}${percent(m.valTop1)}${percent(m.valTop5)}${m.imagesPerSecond.toFixed(0).padStart(8)}`);
  return [header, ...rows].join('\n');
}
