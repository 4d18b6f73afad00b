import * as path from 'node:path';
import type { CaptionData } from '../../data/captions/load-captions';
import { TensorData } from '../../ir/tensor';
import { buildEntryPoint } from '../../model/build';
import { writeModelFile } from '../../onnx/write';
import { captionFeeds, evaluateCaptions } from '../caption-evaluation';
import { TrainingError } from '../training-error';
import type { Task, TaskOptions } from './task';

/**
 * A captioner: each training row is one (image, caption) pair, fed by teacher forcing; validation reports token
 * accuracy and greedy BLEU; checkpoints record the vocabulary, and a finished run writes the generation graphs.
 */
export const CAPTIONING: Task = {
  kind: 'captioning',

  dataConfig(o) {
    const captions = captionsOf(o);
    const fed = captions.train.encoded.length - 1;
    return [
      { key: 'vocabularySize', value: captions.vocabulary.size, what: `a vocabulary of ${captions.vocabulary.size} words` },
      { key: 'maxLength', value: fed, what: `captions of up to ${fed} tokens fed` },
    ];
  },

  checkModel(o, evalModel) {
    const logits = evalModel.graph.outputs.find((v) => v.name === 'logits')?.shape;
    const size = captionsOf(o).vocabulary.size;
    if (logits?.length !== 3 || logits[2] !== size) throw new TrainingError(`captioner '${o.definition.name}' must output logits [batch, length, ${size}] for a vocabulary of ${size} words; it outputs [${logits?.join(', ') ?? '?'}]`);
  },

  rows(o) {
    const encoded = captionsOf(o).train.encoded;
    return {
      count: encoded.count,
      images: (order) => order.map((row) => encoded.image[row]!),
      targets: (_batch, rows) => captionFeeds(encoded, rows),
    };
  },

  async validate(o, run, tensors) {
    const captions = captionsOf(o);
    const r = await evaluateCaptions(run.sessions.evaluation, run.sessions.evalParameters, await run.sessions.onHost(tensors), captions.val, {
      definition: o.definition, variant: o.variant, config: run.config, vocabulary: captions.vocabulary, normalization: run.normalization, bleuImages: o.bleuImages,
      features: run.features,
    });
    return { loss: r.loss, top1: r.top1, top5: r.top5, confusion: undefined, extra: { valBleu: r.bleu } };
  },

  checkpointMetadata: (o) => ({ 'deepvision.task': 'captioning', 'deepvision.vocabulary': JSON.stringify(captionsOf(o).vocabulary.toJSON()) }),

  checkResume(file, meta, o) {
    const vocabulary = meta['deepvision.vocabulary'];
    if (vocabulary !== undefined && vocabulary !== JSON.stringify(captionsOf(o).vocabulary.toJSON())) {
      throw new TrainingError(`${file} was trained with another caption vocabulary than ${o.train.name} gives (--min-count, --max-length or the captions differ): --resume continues a run on the same data`);
    }
  },

  summaryClasses: () => [],

  extraArtifacts(o, outDir, best) {
    // The generation graphs, with the best parameters: what `caption` and the page run (no graph file needed).
    const trained = new Map<string, TensorData>();
    for (const [name, t] of best.tensors) if (!name.startsWith('optimizer.')) trained.set(name, TensorData.fromTyped('float32', [...t.dims], t.data as Float32Array));
    const build = { variant: o.variant, config: best.config, values: trained };
    for (const entry of ['encoder', 'step']) writeModelFile(buildEntryPoint(o.definition, entry, build), path.join(outDir, `${entry}_model.onnx`));
    return ['encoder_model.onnx', 'step_model.onnx'];
  },
};

/** The caption data a captioner trains on; without it, the model cannot be trained. */
function captionsOf(o: TaskOptions): CaptionData {
  if (o.captions === undefined) throw new TrainingError(`model '${o.definition.name}' is a captioner: train it on caption data (shapes, Flickr8k, COCO)`);
  return o.captions;
}
