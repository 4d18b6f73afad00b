import * as os from 'node:os';
import * as ort from 'onnxruntime-node';
import { Command } from 'commander';
import type { Normalization } from '../../data/dataset';
import { loadData } from '../../data/registry';
import { buildEvalGraph } from '../../model/training-graph';
import { encodeModel } from '../../onnx/write';
import { loadCheckpoint } from '../../train/checkpoint';
import { evaluate } from '../../train/trainer';
import { UserError } from '../errors';
import { loadGraphFile } from '../load-graph';

export function evalCommand(): Command {
  return new Command('eval')
    .summary('evaluate a checkpoint on a data set')
    .description('Rebuilds the model a checkpoint was trained from (its graph file, config and variant are in the checkpoint) and reports loss, top-1 and top-5 accuracy on the validation split of a data set.')
    .argument('<checkpoint>', 'a best.safetensors or last.safetensors written by `deepvision train`')
    .option('--graph <file>', 'the graph file (default: the one recorded in the checkpoint)')
    .option('--data <name>', 'data set (default: the one the checkpoint was trained on)')
    .option('--val-size <n>', 'validation images (shapes: default 2000; folders: a seeded sample, default all)')
    .option('--val-fraction <f>', 'folders: the held-out fraction the model was trained with (same seed gives the same split)')
    .option('--seed <n>', 'data seed (default: the training seed)')
    .action(async (file: string, f: { graph?: string; data?: string; valSize?: string; valFraction?: string; seed?: string }) => {
      let checkpoint;
      try {
        checkpoint = loadCheckpoint(file);
      } catch (err) {
        throw new UserError((err as Error).message);
      }
      const meta = checkpoint.metadata;
      const graphFile = f.graph ?? meta['deepvision.graph_file'];
      if (!graphFile) throw new UserError(`${file} does not record its graph file: pass --graph`);
      const definition = loadGraphFile(graphFile);
      const config = JSON.parse(meta['deepvision.config'] ?? '{}') as Record<string, number>;
      const seed = Number(f.seed ?? meta['deepvision.seed'] ?? 0);
      const dataName = f.data ?? meta['deepvision.data'] ?? 'shapes';
      let val;
      try {
        ({ val } = await loadData(dataName, {
          trainSize: dataName === 'shapes' ? 1 : undefined, valSize: f.valSize === undefined ? undefined : Number(f.valSize),
          imageSize: Number(meta['deepvision.image_size'] ?? config.imageSize ?? 32), seed,
          valFraction: (f.valFraction ?? meta['deepvision.val_fraction']) === undefined ? undefined : Number(f.valFraction ?? meta['deepvision.val_fraction']), onNotice: (m) => console.warn(m),
        }));
      } catch (err) {
        throw new UserError((err as Error).message);
      }
      const normalization = JSON.parse(meta['deepvision.normalization'] ?? 'null') as Normalization | null;
      if (!normalization) throw new UserError(`${file} does not record its input normalization`);
      const { model } = buildEvalGraph(definition, { variant: meta['deepvision.variant'], config });
      const session = await ort.InferenceSession.create(encodeModel(model), { graphOptimizationLevel: 'extended', intraOpNumThreads: os.availableParallelism() });
      const names = session.inputNames.filter((n) => n !== 'input' && n !== 'labels');
      for (const n of names) if (!checkpoint.tensors.has(n)) throw new UserError(`${file} has no tensor '${n}' for model ${definition.name}`);
      const r = await evaluate(session, names, checkpoint.tensors, val, normalization, val.classNames.length);
      await session.release();
      console.log(`${definition.name} on ${dataName} validation (${val.count} images): loss ${r.loss.toFixed(4)}, top-1 ${(100 * r.top1).toFixed(2)} %, top-5 ${(100 * r.top5).toFixed(2)} %`);
    });
}
