import * as ort from 'onnxruntime-node';
import type { CaptionSplit, EncodedCaptions } from '../data/captions/load-captions';
import { END, START, Vocabulary } from '../portable/vocabulary';
import type { Normalization } from '../data/dataset';
import { greedyCaptions } from '../portable/caption-search';
import { decoderSteps } from '../portable/decoder-steps';
import { TensorData } from '../ir/tensor';
import { corpusBleu } from '../metrics/bleu';
import { buildEntryPoint } from '../model/build';
import type { ConfigValue, ModelDefinition } from '../model/definition';
import { encodeModel } from '../onnx/write';
import type { CachedFeatures } from './frozen-features';
import { evaluationBatchSize, InputBatch } from './input-batch';
import { Average, topKCorrect } from './metrics';
import { outputOf } from '../portable/session-output';

/**
 * A captioner's training rows as graph feeds: `captions` (the tokens fed: <start> and the words) and `targets` (the
 * tokens predicted: the words and <end>), each one shorter than the encoded rows, and `mask` over the targets.
 */
export function captionFeeds(rows: EncodedCaptions, indices: readonly number[]): { captions: ort.Tensor; targets: ort.Tensor; mask: ort.Tensor } {
  const t = rows.length - 1;
  const n = indices.length;
  const captions = new BigInt64Array(n * t);
  const targets = new BigInt64Array(n * t);
  const mask = new Float32Array(n * t);
  indices.forEach((row, i) => {
    const base = row * rows.length;
    for (let k = 0; k < t; k++) {
      captions[i * t + k] = BigInt(rows.ids[base + k]!);
      targets[i * t + k] = BigInt(rows.ids[base + k + 1]!);
      mask[i * t + k] = rows.mask[base + k + 1]!;
    }
  });
  return {
    captions: new ort.Tensor('int64', captions, [n, t]),
    targets: new ort.Tensor('int64', targets, [n, t]),
    mask: new ort.Tensor('float32', mask, [n, t]),
  };
}

export interface CaptionMetrics {
  /** Masked cross-entropy per token, teacher forcing. */
  loss: number;
  /** Next-token top-1 and top-5 accuracy over real tokens, teacher forcing. */
  top1: number;
  top5: number;
  /** Corpus BLEU-1..4 of greedy captions against all references, on up to `bleuImages` images. */
  bleu: number[];
}

export interface CaptionEvaluationOptions {
  definition: ModelDefinition;
  variant?: string;
  config: Record<string, ConfigValue>;
  vocabulary: Vocabulary;
  normalization: Normalization;
  /** Images captioned for BLEU (the first ones of the split; default 500). */
  bleuImages?: number;
  /** The split's images as a frozen backbone's cached features, fed as `features`. */
  features?: CachedFeatures;
}

/** Loss and token accuracy of the current parameters on a caption split, and BLEU of greedy captions. */
export async function evaluateCaptions(
  session: ort.InferenceSession, parameterNames: string[], tensors: Map<string, ort.Tensor>, split: CaptionSplit, o: CaptionEvaluationOptions,
): Promise<CaptionMetrics> {
  const rows = split.encoded;
  const images = split.images;
  const t = rows.length - 1;
  const v = o.vocabulary.size;
  const batchSize = evaluationBatchSize(images, 128, o.features);
  const batch = new InputBatch(images, o.normalization, batchSize, o.features);
  const loss = new Average();
  let top1 = 0;
  let top5 = 0;
  let tokens = 0;
  for (let start = 0; start < rows.count; start += batchSize) {
    const n = Math.min(batchSize, rows.count - start);
    const indices = Array.from({ length: n }, (_, i) => start + i);
    const text = captionFeeds(rows, indices);
    const feeds: Record<string, ort.Tensor> = { [batch.name]: batch.fill(indices.map((r) => rows.image[r]!)), ...text };
    for (const name of parameterNames) feeds[name] = tensors.get(name)!;
    const out = await session.run(feeds);
    const mask = text.mask.data as Float32Array;
    const real = mask.reduce((s, m) => s + m, 0);
    loss.add((outputOf(out, 'loss', 'the evaluation graph').data as Float32Array)[0]!, real);
    // Token accuracy over real tokens: the logits rows where the mask is 1.
    const logits = outputOf(out, 'logits', 'the evaluation graph').data as Float32Array;
    const targets = text.targets.data as BigInt64Array;
    for (let k = 0; k < n * t; k++) {
      if (mask[k] === 0) continue;
      const row = logits.subarray(k * v, (k + 1) * v);
      top1 += topKCorrect(row, [targets[k]!], v, 1);
      top5 += topKCorrect(row, [targets[k]!], v, Math.min(5, v));
      tokens++;
    }
  }
  const bleu = await greedyBleu(tensors, split, o);
  return { loss: loss.value, top1: top1 / Math.max(1, tokens), top5: top5 / Math.max(1, tokens), bleu };
}

/** BLEU-1..4 of greedy captions for the first images of a split, with the current parameters. */
async function greedyBleu(tensors: Map<string, ort.Tensor>, split: CaptionSplit, o: CaptionEvaluationOptions): Promise<number[]> {
  const count = Math.min(o.bleuImages ?? 500, split.images.count);
  if (count === 0) return [0, 0, 0, 0];
  const values = new Map<string, TensorData>();
  for (const [name, t] of tensors) if (!name.startsWith('optimizer.')) values.set(name, TensorData.fromTyped('float32', [...t.dims], t.data as Float32Array));
  const build = { variant: o.variant, config: o.config, values };
  const encoder = await ort.InferenceSession.create(encodeModel(buildEntryPoint(o.definition, 'encoder', build)));
  const step = await ort.InferenceSession.create(encodeModel(buildEntryPoint(o.definition, 'step', build)));
  try {
    const hypotheses: string[][] = [];
    const batchSize = 64;
    // The encoder reads the images themselves (its backbone included).
    const batch = new InputBatch(split.images, o.normalization, batchSize);
    for (let start = 0; start < count; start += batchSize) {
      const n = Math.min(batchSize, count - start);
      const initial = await encoder.run({ input: batch.fill(Array.from({ length: n }, (_, i) => start + i)) });
      const decoder = decoderSteps(step, o.vocabulary.size, ort.Tensor);
      const ids = await greedyCaptions(decoder, initial, n, { startId: START, endId: END, maxLength: split.encoded.length - 2 });
      for (const row of ids) hypotheses.push(o.vocabulary.decodeTokens(row));
    }
    return corpusBleu(hypotheses, split.references.slice(0, count)).bleu;
  } finally {
    await Promise.all([encoder.release(), step.release()]);
  }
}
