import * as path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { writeTeachBundle } from '../../export/teach-bundle';
import { checkOutputs } from '../../util/output-guard';
import { helpText } from '../help-text';
import { loadGraphFile } from '../load-graph';
import { imageSide, openFraction, positiveInteger, positiveNumber } from '../numeric-options';

/** Three comma-separated numbers (a per-channel mean or std). */
function channels(value: string): number[] {
  const v = value.split(',').map((s) => Number(s.trim()));
  if (v.length !== 3 || !v.every(Number.isFinite)) throw new InvalidArgumentError('expected three comma-separated numbers (R,G,B).');
  return v;
}

const MIN_COUNT = 2;
const MAX_COUNT = 100;

/** Class counts: `2-10` or `2,3,5`. */
function classCounts(value: string): number[] {
  const invalid = () => new InvalidArgumentError(`expected class counts from ${MIN_COUNT} to ${MAX_COUNT}, as FROM-TO or a comma-separated list.`);
  const inBounds = (k: number) => Number.isInteger(k) && k >= MIN_COUNT && k <= MAX_COUNT;
  const range = /^(\d+)-(\d+)$/.exec(value.trim());
  if (range) {
    // The ends are checked before the range is expanded: `2-999999999` must not build a billion numbers first.
    const [from, to] = [Number(range[1]), Number(range[2])];
    if (!inBounds(from) || !inBounds(to) || from > to) throw invalid();
    return Array.from({ length: to - from + 1 }, (_, i) => from + i);
  }
  const v = value.split(',').map((s) => Number(s.trim()));
  if (v.length === 0 || !v.every(inBounds)) throw invalid();
  return v;
}

export function exportTeachCommand(): Command {
  return new Command('export-teach')
    .summary('export a backbone and trainable heads for the web demo\'s Teach mode')
    .description(helpText([
      'Writes a Teach bundle: the pretrained ONNX model BACKBONE up to --cut as feature_model.onnx (frozen), and for',
      'each class count (2 to 10) a linear head\'s training, optimizer, evaluation and inference graphs with its initial',
      'parameters, the same graphs `deepvision transfer` trains on cached features; plus teach.json. The page',
      '(teach.html) computes features with the backbone, trains a head on the user\'s images with these graphs in',
      'onnxruntime-web, and assembles the taught model.onnx + model.json that `deepvision predict` reads. Before',
      'anything is written, a head spliced onto the feature model is checked against the whole model (within 1e-4).',
      '',
      'BACKBONE may also be a `deepvision train` run folder of a classifier: its trained model is then the backbone',
      '(with the run\'s normalization), and the bundle also ships the whole model (the run\'s training, optimizer and',
      'eval graphs and its trained state), which the page\'s "Fine-tune the whole model" trains end to end on images',
      'of the model\'s own classes.',
      '',
      'Examples: deepvision export-teach ../shared/models/mobilenetv2-7-fp32.onnx --out web-demo/models/teach',
      '          deepvision export-teach models/cnn-shapes --out web-demo/models/teach-shapes',
    ]))
    .argument('<backbone>', 'the pretrained ONNX model, or a `deepvision train` run folder (adds whole-model fine-tuning)')
    .requiredOption('--out <dir>', 'folder to write the bundle to (the page reads web-demo/models/teach by default)')
    .option('--cut <value>', 'the value of the backbone the head reads (default: `features`, else the input of its last Gemm or MatMul); `deepvision inspect BACKBONE` lists good ones')
    .option('--image-size <n>', 'input size in pixels (default: the backbone\'s input size, else 224)', imageSide)
    .option('--mean <r,g,b>', 'input normalization mean (default ImageNet\'s: 0.485,0.456,0.406)', channels)
    .option('--std <r,g,b>', 'input normalization std (default ImageNet\'s: 0.229,0.224,0.225)', channels)
    .option('--classes <counts>', 'class counts to ship heads for, FROM-TO or a list', classCounts)
    .option('--lr <rate>', 'the page\'s default learning rate (Adam)', positiveNumber)
    .option('--epochs <n>', 'the page\'s default number of epochs', positiveInteger)
    .option('--batch-size <n>', 'the page\'s default batch size', positiveInteger)
    .option('--held-out <fraction>', 'share of each class\'s images the page holds out for validation', openFraction)
    .option('--seed <n>', 'seed of the heads\' initial parameters', positiveInteger)
    .option('--fine-tune-lr <rate>', 'run folders: the page\'s default learning rate for the whole model (default 0.0005 with Adam, 0.005 with SGD)', positiveNumber)
    .option('--fine-tune-epochs <n>', 'run folders: the page\'s default number of epochs for the whole model (default 10)', positiveInteger)
    .action(async (backbone: string, f: {
      out: string; cut?: string; imageSize?: number; mean?: number[]; std?: number[]; classes?: number[];
      lr?: number; epochs?: number; batchSize?: number; heldOut?: number; seed?: number; fineTuneLr?: number; fineTuneEpochs?: number;
    }) => {
      // The bundle replaces the --out folder whole: the backbone (a file, or a run folder) must not be in it.
      checkOutputs([{ file: f.out, option: '--out', replacesFolder: true }], [{ file: backbone, what: 'backbone' }]);
      const definition = loadGraphFile(path.join(__dirname, '..', '..', '..', 'graphs', 'transfer.ts'));
      const r = await writeTeachBundle(definition, f.out, {
        backbone, cut: f.cut, imageSize: f.imageSize, mean: f.mean, std: f.std, classCounts: f.classes,
        learningRate: f.lr, epochs: f.epochs, batchSize: f.batchSize, heldOutFraction: f.heldOut, seed: f.seed,
        wholeModel: { learningRate: f.fineTuneLr, epochs: f.fineTuneEpochs, batchSize: f.batchSize },
      });
      const c = r.card;
      console.log(`Teach bundle ${c.name}: ${c.backbone.file} cut at '${c.backbone.cut}' (${c.backbone.parameters.toLocaleString('en-US')} frozen parameters, ${c.features} features per ${c.input.shape[1]}x${c.input.shape[2]} image)`);
      console.log(`  heads for ${c.heads.map((h) => h.classes).join(', ')} classes; ${(r.bytes / 1e6).toFixed(2)} MB in all`);
      console.log(`  a spliced taught model matches the eval model: max |difference| ${r.maxDifference.toExponential(2)}`);
      const w = c.wholeModel;
      if (w !== undefined) {
        const count = w.parameters.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
        console.log(`  whole model for fine-tuning: ${w.labels.length} classes, ${count.toLocaleString('en-US')} values of state (${w.trainable} trainable tensors); bound to its state it matches the run's eval model: max |difference| ${r.wholeModelDifference!.toExponential(2)}`);
      }
      console.log(`  ${path.relative(process.cwd(), r.cardFile)}`);
    });
}
