import { Command, Option } from 'commander';
import { loadCheckpoint } from '../../checkpoint/checkpoint';
import { isGeneratedData } from '../../data/kinds';
import { recordedTask } from '../../model/task-kind';
import { checkOutputs, CommandInput } from '../../util/output-guard';
import { graphFileForCheckpoint, loadGraphFile } from '../load-graph';
import { beamWidth, nonNegativeInteger, openFraction, positiveInteger } from '../numeric-options';
import { CLI_TASKS } from '../tasks';
import type { EvalFlags } from '../tasks/task';

export function evalCommand(): Command {
  return new Command('eval')
    .summary('evaluate a checkpoint on a data set')
    .description('Rebuilds the model a checkpoint was trained from and reports loss, top-1 and top-5 accuracy on the validation split of a data set (captioners: corpus BLEU-1..4 and CIDEr-D of beam-search captions against all references). The config, variant and data come from the checkpoint; the graph file is the bundled one of its model name, or the one given with --graph: a checkpoint is data and never makes deepvision run a file it names.')
    .argument('<checkpoint>', 'a best.safetensors or last.safetensors written by `deepvision train`')
    .option('--graph <file>', 'the graph file the checkpoint was trained from (default: the bundled graphs/<model>.ts); graph files are code: pass only files you trust')
    .option('--data <name>', 'data set (default: the one the checkpoint was trained on)')
    .option('--val-size <n>', 'validation images (shapes: default 2000; folders: a seeded sample, default all)', positiveInteger)
    .option('--val-fraction <f>', 'folders: the held-out fraction the model was trained with (same seed gives the same split)', openFraction)
    .option('--seed <n>', 'data seed (default: the training seed)', nonNegativeInteger)
    .addOption(new Option('--split <name>', 'captioners: the split to caption (test: the data set\'s own test split, Flickr8k\'s 1,000 images)').choices(['val', 'test']).default('val'))
    .option('--beam <k>', 'captioners: beam width (1: greedy)', beamWidth, 3)
    .option('--gallery <file.png>', 'captioners: also draw the first images of the split with their generated caption (bold) and a reference caption (grey)')
    .option('--gallery-size <n>', 'captioners: images in the gallery', positiveInteger, 12)
    .addOption(new Option('--tta <mode>', 'classifiers: test-time augmentation; hflip also runs each image mirrored left-right and averages the two softmax outputs (twice the work)').choices(['none', 'hflip']).default('none'))
    .action(async (file: string, f: EvalFlags) => {
      const checkpoint = loadCheckpoint(file);
      const meta = checkpoint.metadata;
      if (f.gallery !== undefined) checkGalleryPath(f.gallery, file, f.graph, f.data ?? meta['deepvision.data']);
      const definition = loadGraphFile(graphFileForCheckpoint(file, meta, f.graph));
      console.log(await CLI_TASKS[recordedTask(meta['deepvision.task'])].evaluateCheckpoint(file, checkpoint, definition, f));
    });
}

/** Before any work: --gallery must not be the checkpoint, the graph file or a file in the data folder. */
function checkGalleryPath(gallery: string, checkpoint: string, graph: string | undefined, data: string | undefined): void {
  const inputs: CommandInput[] = [{ file: checkpoint, what: 'checkpoint' }];
  if (graph !== undefined) inputs.push({ file: graph, what: 'graph file' });
  // A data set named by path (not the generated shapes); a path that is no folder adds nothing.
  if (data !== undefined && !isGeneratedData(data)) inputs.push({ file: data, what: 'data folder', folder: true });
  checkOutputs([{ file: gallery, option: '--gallery' }], inputs);
}
