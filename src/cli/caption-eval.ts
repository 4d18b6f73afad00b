import * as path from 'node:path';
import { loadCaptionData } from '../data/captions/load-captions';
import { ImageDataset, readerOf } from '../data/dataset';
import type { Pixels } from '../portable/image-preprocessing';
import { corpusBleu } from '../metrics/bleu';
import { ciderD } from '../metrics/cider';
import { renderCaptionGallery } from '../plot/caption-gallery';
import type { ModelDefinition } from '../model/definition';
import { CaptionModel } from '../runtime/caption-model';
import { checkpointConfig } from '../checkpoint/checkpoint';
import { writeFileAtomic } from '../util/atomic-write';
import { UserError } from '../util/user-error';
import { fedTokensProblem } from '../portable/search-limits';
import { GENERATED_DATA, isGeneratedData } from '../data/kinds';

export interface CaptionEvalOptions {
  data?: string;
  split: 'val' | 'test';
  images?: number;
  beam: number;
  seed?: number;
  valFraction?: number;
  /** Draw the first `gallerySize` images with their generated and first reference captions to this PNG. */
  gallery?: string;
  gallerySize?: number;
}

/**
 * `deepvision eval` of a captioner: captions the images of a split by beam search with the checkpoint's parameters
 * and scores them against all their references (corpus BLEU-1..4, CIDEr-D).
 */
export async function evaluateCaptionerCheckpoint(file: string, meta: Record<string, string>, definition: ModelDefinition, o: CaptionEvalOptions): Promise<string> {
  if (o.gallery !== undefined && path.extname(o.gallery).toLowerCase() !== '.png') throw new UserError(`--gallery writes a PNG: give a file name ending in .png, not ${o.gallery}`);
  const config = checkpointConfig(meta, file);
  const tokensRefused = fedTokensProblem(Number(config.maxLength));
  if (tokensRefused !== undefined) throw new UserError(`${file}: its config's maxLength: ${tokensRefused}`);
  const dataName = o.data ?? meta['deepvision.data'] ?? GENERATED_DATA;
  const data = await loadCaptionData(dataName, {
    imageSize: Number(config.imageSize), minCount: 1, maxLength: Number(config.maxLength) + 1, seed: o.seed ?? Number(meta['deepvision.seed'] ?? 0),
    valFraction: o.valFraction, valSize: isGeneratedData(dataName) ? o.images : undefined, trainSize: isGeneratedData(dataName) ? 1 : undefined,
    onNotice: (m) => console.warn(m),
  });
  const split = o.split === 'test' ? data.test : data.val;
  if (split === undefined) throw new UserError(`${dataName} has no test split of its own: use --split val`);
  const model = await CaptionModel.fromCheckpoint(file, undefined, () => definition);
  const count = Math.min(o.images ?? split.images.count, split.images.count);
  const hypotheses: string[][] = [];
  try {
    for (let i = 0; i < count; i++) {
      const [best] = await model.caption(pixelsOf(split.images, i), { beam: o.beam });
      hypotheses.push(best === undefined ? [] : model.vocabulary.decodeTokens(best.tokens));
    }
  } finally {
    await model.release();
  }
  const references = split.references.slice(0, count);
  if (o.gallery !== undefined) {
    const items = hypotheses.slice(0, o.gallerySize ?? 12).map((words, i) => ({ image: pixelsOf(split.images, i), generated: words.join(' '), reference: split.captions[i]![0] ?? '' }));
    writeFileAtomic(o.gallery, await renderCaptionGallery(items));
    console.error(`gallery: ${o.gallery}`);
  }
  const { bleu } = corpusBleu(hypotheses, references);
  const cider = ciderD(hypotheses, references).score;
  const scores = bleu.map((b, k) => `BLEU-${k + 1} ${b.toFixed(3)}`).join(', ');
  return `${definition.name} on ${path.basename(dataName)} ${o.split} (${count} images, ${o.beam === 1 ? 'greedy' : `beam ${o.beam}`}): ${scores}, CIDEr-D ${cider.toFixed(3)}`;
}

/** Image `i` of a data set (planar, already at the model's size) as interleaved pixels. */
function pixelsOf(data: ImageDataset, i: number): Pixels {
  const plane = data.height * data.width;
  const image = new Uint8Array(data.channels * plane);
  readerOf(data).gather([i], image);
  const out = new Uint8Array(plane * data.channels);
  for (let p = 0; p < plane; p++) for (let c = 0; c < data.channels; c++) out[p * data.channels + c] = image[c * plane + p]!;
  return { width: data.width, height: data.height, channels: data.channels, data: out };
}
