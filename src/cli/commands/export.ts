import * as path from 'node:path';
import { Command } from 'commander';
import { EXPORT_TASKS, runTask } from '../../export/tasks';
import { checkOutputs } from '../../util/output-guard';
import { helpText } from '../help-text';
import { graphFileForCheckpoint, loadGraphFile } from '../load-graph';
import { beamWidth, nonNegativeNumber, positiveInteger } from '../numeric-options';

interface ExportFlags { out: string; fp16: boolean; beam: number; lengthPenalty: number; graph?: string }

export function exportCommand(): Command {
  return new Command('export')
    .summary('export a trained model for onnxruntime-web (the web demo)')
    .description(helpText([
      'Writes model.onnx and model.json (the model card: labels, input size, normalization, data set, validation accuracy)',
      'from a folder written by `deepvision train`. The model is in eval mode with dropout removed, batch normalization',
      'folded into the preceding convolution, unused nodes and initializers pruned, and a dynamic batch dimension.',
      'Before writing, its outputs are compared with the trained eval model (float32: within 1e-4).',
      '',
      'A captioner (graphs/captioner.ts) exports as encoder.onnx and step.onnx (one decoder step) with a model.json that',
      'holds its vocabulary and the search the page runs (--beam, --length-penalty); both models are compared with the',
      'run\'s. The web demo captions images with it beside the classifier; `deepvision caption DIR` reads the folder too.',
      '',
      'Example: deepvision export models/cnn-shapes --out web-demo/models/cnn-shapes',
    ]))
    .argument('<model-dir>', 'a training output folder (inference_model.onnx, eval_model.onnx, checkpoint.safetensors; a captioner\'s: best.safetensors)')
    .requiredOption('--out <dir>', 'folder to write the model and model.json to (its parent gets an index.json of all models)')
    .option('--fp16', 'store weights as float16 (half the download; computation stays float32)', false)
    .option('--beam <k>', 'captioners: the beam width the page searches with', beamWidth, 3)
    .option('--length-penalty <alpha>', 'captioners: the page ranks captions by log-probability / length^alpha', nonNegativeNumber, 0.7)
    .option('--graph <file>', 'captioners whose run has no encoder_model.onnx and step_model.onnx: the graph file to build them from; graph files are code: pass only files you trust')
    .action(async (modelDir: string, f: ExportFlags) => {
      checkExportPaths(modelDir, f);
      const lines = await EXPORT_TASKS[runTask(modelDir)].exportRun(modelDir, f.out, {
        fp16: f.fp16, beam: f.beam, lengthPenalty: f.lengthPenalty,
        definition: (file, meta) => loadGraphFile(graphFileForCheckpoint(file, meta, f.graph)),
      });
      for (const line of lines) console.log(line);
    });
}

/**
 * Before any work: neither the --out folder nor a file any task's export writes (in it, and its parent's index.json)
 * is a file any of them reads.
 */
function checkExportPaths(modelDir: string, f: ExportFlags): void {
  const tasks = Object.values(EXPORT_TASKS);
  const written = [...new Set(tasks.flatMap((t) => t.writes))].map((name) => path.join(f.out, name));
  const read = [...new Set(tasks.flatMap((t) => t.reads)), 'summary.json'];
  checkOutputs([f.out, ...written, path.join(path.dirname(path.resolve(f.out)), 'index.json')].map((file) => ({ file, option: '--out' })), [
    { file: modelDir, what: 'training run folder' },
    ...read.map((name) => ({ file: path.join(modelDir, name), what: 'run file' })),
    ...(f.graph === undefined ? [] : [{ file: f.graph, what: 'graph file' }]),
  ]);
}
