import * as fs from 'node:fs';
import { Command, Option } from 'commander';
import { describeAugmentation } from '../../data/augment';
import { MAX_THREADS } from '../../train/options';
import { train } from '../../train/trainer';
import { UserError } from '../errors';
import { collectAssignments, configFromFlags } from '../config-flags';
import { loadGraphFile } from '../load-graph';
import { addAugmentOptions, augmentFromFlags } from '../augment-flags';
import { applyConfigFile } from '../config-file';
import type { TrainFlags } from '../train/train-flags';
import {
  chooseImageSize, dataRequestFromFlags, MAX_EPOCHS, optimizationFromFlags, outputFolder, remainingOptionsFromFlags,
  scheduleFromFlags, workersFromFlags,
} from '../train/training-settings';
import { loadTrainingData } from '../train/load-training-data';
import { chooseTrainingDevice } from '../train/training-device';
import { trainingProgress } from '../train/training-progress';
import { stopOnCtrlC } from '../train/stop-on-ctrl-c';
import { reportResult } from '../train/report-result';
import { defaultWithCaptioner, SHAPES_CAPTIONER_DEFAULTS } from '../train/captioner-defaults';
import { CLI_TASKS } from '../tasks';
import { definitionTask } from '../../model/task-kind';
import { trainingTask } from '../../train/tasks';

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
    .option('--train-size <n>', `training images (shapes: how many to generate, default 10000, for a captioner ${SHAPES_CAPTIONER_DEFAULTS.trainSize}; folders: a seeded sample, default all)`)
    .option('--val-size <n>', 'validation images (shapes: default 2000; folders: a seeded sample, default all)')
    .option('--image-size <n>', `image size in pixels (default: the model's imageSize for folders, 32 for shapes; a captioner on shapes: ${SHAPES_CAPTIONER_DEFAULTS.imageSize})`)
    .option('--val-fraction <f>', 'folders: hold out this fraction of the training images (seeded) as validation instead of the set\'s own split (default: own split, else 0.2)')
    .option('--cache-dir <dir>', 'where decoded images are cached (default: ~/.cache/deepvision or $DEEPVISION_CACHE)')
    .option('--workers <n>', 'threads that assemble and augment batches ahead of training (default: 1 with augmentation, else 0)')
    .addOption(new Option('--epochs <n>', `passes over the training data (at most ${MAX_EPOCHS.toLocaleString('en-US')})`).default('10', defaultWithCaptioner('10', 'epochs')))
    .option('--batch-size <n>', 'images per update', '64')
    .addOption(new Option('--optimizer <name>', 'optimizer').choices(['sgd', 'adam', 'adamw']).default('adam'))
    .addOption(new Option('--lr <rate>', 'base learning rate').default('0.001', defaultWithCaptioner('0.001', 'lr')))
    .option('--backbone-lr <rate>', 'learning rate of the backbone\'s parameters (those named backbone.*) when they train, e.g. 10x smaller than --lr for fine-tuning')
    .option('--momentum <m>', 'SGD momentum', '0.9')
    .option('--nesterov', 'SGD with Nesterov momentum')
    .option('--weight-decay <wd>', 'weight decay (L2 for SGD/Adam, decoupled for AdamW)', '0')
    .addOption(new Option('--schedule <name>', 'learning-rate schedule').choices(['constant', 'step', 'cosine']).default('constant', defaultWithCaptioner('constant', 'schedule')))
    .option('--step-size <epochs>', 'step schedule: epochs between decays', '10')
    .option('--gamma <factor>', 'step schedule: decay factor', '0.1')
    .addOption(new Option('--warmup-steps <n>', 'linear learning-rate warm-up over this many updates').default('0', defaultWithCaptioner('0', 'warmupSteps')))
    .option('--clip-grad-norm <max>', `clip gradients to this global L2 norm (default: none; a captioner on shapes: ${SHAPES_CAPTIONER_DEFAULTS.clipGradNorm})`)
    .option('--label-smoothing <s>', 'cross-entropy label smoothing', '0')
    .option('--patience <epochs>', 'stop early when the validation loss has not improved for this many epochs')
    .option('--seed <n>', 'seed of initialization, data and shuffling', '0')
    .option('--threads <n>', `onnxruntime intra-op threads (0 = one per core; at most ${MAX_THREADS})`, '0')
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
    .addHelpText('after', '\nExamples:\n  deepvision train graphs/cnn.ts --data shapes --epochs 5\n  deepvision train graphs/cnn.ts --data ../shared/data/tiny-imagenet-30 \\\n      --val-fraction 0.2 --augment standard --optimizer sgd --lr 0.01\n  deepvision train graphs/mlp.ts --optimizer sgd --lr 0.01 --momentum 0.9 \\\n      --schedule cosine\n  deepvision train graphs/cnn.ts --resume models/cnn-shapes/last.safetensors\n  deepvision train graphs/captioner.ts --out models/captioner-shapes')
    .hook('preAction', (cmd) => {
      const file = cmd.opts<TrainFlags>().config;
      if (file !== undefined) applyConfigFile(cmd, file);
    })
    .action(async (graphFile: string, f: TrainFlags) => {
      if (f.out !== undefined && fs.existsSync(f.out) && !fs.statSync(f.out).isDirectory()) throw new UserError(`--out ${f.out} is a file, not a folder`);
      const definition = loadGraphFile(graphFile);
      const task = CLI_TASKS[definitionTask(definition)];
      // Below the command line and --config: what the task trains with when they leave an option out (a captioner on shapes).
      task.applyTrainDefaults(command, f.data);
      const config = configFromFlags(definition, f.set);
      const augment = augmentFromFlags(f);
      const optimization = optimizationFromFlags(f);
      const { epochs, batchSize, learningRate, optimizer, seed } = optimization;
      const imageSize = chooseImageSize(f, definition, config);
      const showBars = f.progress && process.stdout.isTTY === true;
      const dataRequest = dataRequestFromFlags(f, imageSize, seed);
      const data = await loadTrainingData(dataRequest, showBars, (request) => task.loadTrainingData(f.data, request, f));
      const workers = workersFromFlags(f, augment);
      const batches = Math.ceil(trainingTask({ definition }).rows({ definition, ...data }).count / batchSize);
      const schedule = scheduleFromFlags(f, epochs, batches);
      const device = await chooseTrainingDevice(f.device, f.blockedConv);
      console.log(device.description);
      const outDir = outputFolder(f, definition.name);
      console.log(task.describeTrainingData(definition.name, f.data, data));
      console.log(`${f.optimizer} lr ${learningRate}, batch ${batchSize}, ${epochs} epochs; augmentation: ${describeAugmentation(augment)}; writing to ${outDir}`);
      const remaining = remainingOptionsFromFlags(f);

      const progress = trainingProgress(showBars, epochs, (m) => task.formatEpoch(m));
      const stop = stopOnCtrlC(progress.stopEpochBar);
      try {
        const result = await train({
          definition, config, graphFile, outDir, train: data.train, val: data.val, captions: data.captions,
          ...optimization, schedule, augment, workers, ...remaining,
          executionProviders: device.choice.executionProviders, onNotice: (m) => console.warn(m), shouldStop: stop.requested,
          onFeatures: progress.onFeatures, onBatch: progress.onBatch, onEpoch: progress.onEpoch,
        });
        reportResult(result, outDir, result.artifacts);
      } finally {
        progress.stopEpochBar();
        stop.dispose();
      }
    });
  return addAugmentOptions(command);
}
