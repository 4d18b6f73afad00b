import * as path from 'node:path';
import { Command } from 'commander';
import { exportModel } from '../../export/export-model';
import { helpText } from '../help-text';

export function exportCommand(): Command {
  return new Command('export')
    .summary('export a trained model for onnxruntime-web (the web demo)')
    .description(helpText([
      'Writes model.onnx and model.json (the model card: labels, input size, normalization, data set, validation accuracy)',
      'from a folder written by `deepvision train`. The model is in eval mode with dropout removed, batch normalization',
      'folded into the preceding convolution, unused nodes and initializers pruned, and a dynamic batch dimension.',
      'Before writing, its outputs are compared with the trained eval model (float32: within 1e-4).',
      '',
      'Example: deepvision export models/cnn-shapes --out web-demo/models/cnn-shapes',
    ]))
    .argument('<model-dir>', 'a training output folder (inference_model.onnx, eval_model.onnx, checkpoint.safetensors)')
    .requiredOption('--out <dir>', 'folder to write model.onnx and model.json to (its parent gets an index.json of all models)')
    .option('--fp16', 'store weights as float16 (half the download; computation stays float32)', false)
    .action(async (modelDir: string, f: { out: string; fp16: boolean }) => {
      const r = await exportModel(modelDir, f.out, { fp16: f.fp16 });
      const mb = (r.card.bytes / 1e6).toFixed(2);
      console.log(`Exported ${r.card.name}: ${r.card.parameters.toLocaleString('en-US')} parameters, ${mb} MB (${r.card.precision}), ${r.card.labels.length} classes, input [${r.card.input.shape}]`);
      console.log(`  folded ${r.foldedBatchNorms} batch normalizations into convolutions; ${r.removedNodes} nodes fewer than inference_model.onnx`);
      console.log(`  checked against the eval model: max |difference| ${r.maxDifference.toExponential(2)}, top-1 agrees on ${r.top1Agreement.agree}/${r.top1Agreement.total} inputs`);
      console.log(`  ${path.relative(process.cwd(), r.modelFile)}, ${path.relative(process.cwd(), r.cardFile)}`);
    });
}
