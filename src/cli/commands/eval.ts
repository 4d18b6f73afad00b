import * as os from 'node:os';
import * as ort from 'onnxruntime-node';
import { Command, Option } from 'commander';
import { loadData } from '../../data/registry';
import { buildEvalGraph } from '../../model/training-graph';
import { encodeModel } from '../../onnx/write';
import { classNamesDifference } from '../../train/class-names';
import { checkpointClasses, checkpointConfig, checkpointImageSize, checkpointNormalization, checkTensorsMatch, loadCheckpoint } from '../../checkpoint/checkpoint';
import { evaluate } from '../../train/trainer';
import { checkOutputs, CommandInput } from '../../util/output-guard';
import { isUserFacing, UserError } from '../errors';
import { evaluateCaptionerCheckpoint } from '../caption-eval';
import { graphFileForCheckpoint, loadGraphFile } from '../load-graph';
import { beamWidth, nonNegativeInteger, openFraction, positiveInteger } from '../numeric-options';
import { GENERATED_DATA, isGeneratedData } from '../../data/kinds';

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
    .action(async (file: string, f: { graph?: string; data?: string; valSize?: number; valFraction?: number; seed?: number; split: 'val' | 'test'; beam: number; gallery?: string; gallerySize: number }) => {
      const checkpoint = loadCheckpoint(file);
      const meta = checkpoint.metadata;
      if (f.gallery !== undefined) checkGalleryPath(f.gallery, file, f.graph, f.data ?? meta['deepvision.data']);
      const definition = loadGraphFile(graphFileForCheckpoint(file, meta, f.graph));
      if (meta['deepvision.task'] === 'captioning') {
        console.log(await evaluateCaptionerCheckpoint(file, meta, definition, {
          data: f.data, split: f.split, images: f.valSize, beam: f.beam, seed: f.seed, valFraction: f.valFraction, gallery: f.gallery, gallerySize: f.gallerySize,
        }));
        return;
      }
      const config = checkpointConfig(meta, file);
      const seed = f.seed ?? recordedNumber(meta, file, 'deepvision.seed', (n) => Number.isSafeInteger(n) && n >= 0) ?? 0;
      const valFraction = f.valFraction ?? recordedNumber(meta, file, 'deepvision.val_fraction', (n) => n > 0 && n < 1);
      const imageSize = checkpointImageSize(meta, file) ?? (typeof config.imageSize === 'number' ? config.imageSize : 32);
      const normalization = checkpointNormalization(meta, file);
      if (!normalization) throw new UserError(`${file} does not record its input normalization`);
      const dataName = f.data ?? meta['deepvision.data'] ?? GENERATED_DATA;
      let val;
      try {
        ({ val } = await loadData(dataName, {
          trainSize: isGeneratedData(dataName) ? 1 : undefined, valSize: f.valSize, imageSize, seed, valFraction, onNotice: (m) => console.warn(m),
        }));
      } catch (err) {
        if (isUserFacing(err)) throw err;
        throw new UserError((err as Error).message);
      }
      // Label k must mean the same class in the model and the data, or the accuracy scores the wrong labels.
      const trainedOn = checkpointClasses(meta, file);
      const difference = trainedOn && classNamesDifference(trainedOn, val.classNames);
      if (difference) throw new UserError(`${file} was trained on other classes than ${dataName} has: ${difference}`);
      let model;
      try {
        ({ model } = buildEvalGraph(definition, { variant: meta['deepvision.variant'], config }));
      } catch (err) {
        if (isUserFacing(err)) throw err;
        throw new UserError(`cannot build model '${definition.name}' with the config ${file} records: ${(err as Error).message.split('\n')[0]}`);
      }
      const classes = model.graph.outputs.find((v) => v.name === 'logits')?.shape?.[1];
      if (classes !== val.classNames.length) throw new UserError(`${file}: the model has ${String(classes)} outputs, but ${dataName} has ${val.classNames.length} classes`);
      const expected = new Map(model.graph.inputs.filter((v) => v.name !== 'input' && v.name !== 'labels').map((v) => [v.name, v.shape!.map(Number)] as const));
      checkTensorsMatch(file, checkpoint.tensors, expected, `model ${definition.name}`);
      const session = await ort.InferenceSession.create(encodeModel(model), { graphOptimizationLevel: 'extended', intraOpNumThreads: os.availableParallelism() });
      const names = [...expected.keys()];
      const r = await evaluate(session, names, checkpoint.tensors, val, normalization, val.classNames.length);
      await session.release();
      console.log(`${definition.name} on ${dataName} validation (${val.count} images): loss ${r.loss.toFixed(4)}, top-1 ${(100 * r.top1).toFixed(2)} %, top-5 ${(100 * r.top5).toFixed(2)} %`);
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

/** A number the checkpoint's metadata records under `key`, checked; undefined when absent. */
function recordedNumber(meta: Record<string, string>, file: string, key: string, ok: (n: number) => boolean): number | undefined {
  const raw = meta[key];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || !ok(n)) throw new UserError(`${file}: checkpoint metadata '${key}' is invalid (${JSON.stringify(raw.slice(0, 40))})`);
  return n;
}
