/**
 * The page's captioner: an exported captioner's encoder and decoder step in onnxruntime-web, driven by the same
 * search (caption-search.ts, decoder-steps.ts), preprocessing and vocabulary as `deepvision caption`, so that the
 * page and the CLI write the same caption for the same image.
 */
import type * as OrtWeb from 'onnxruntime-web';
import { END, START, Vocabulary } from '../../src/portable/vocabulary';
import { CaptionerCard, captionerCardProblems, stepVocabularyProblem } from '../../src/portable/captioner-card';
import { Pixels, preprocessImage } from '../../src/portable/image-preprocessing';
import { searchCaptions } from '../../src/portable/caption-search';
import { DecoderState, decoderSteps, stepModelProblem } from '../../src/portable/decoder-steps';
import { fetchBytes, fetchJson } from './fetch-files';

declare const ort: typeof OrtWeb;

export interface LoadedCaptioner {
  id: string;
  card: CaptionerCard;
  vocabulary: Vocabulary;
  encoder: OrtWeb.InferenceSession;
  step: OrtWeb.InferenceSession;
}

export interface PageCaption {
  text: string;
  logProb: number;
  milliseconds: number;
}

/**
 * Loads models/ID/: its card (checked as the CLI checks it), then both models. Always the wasm provider: a decoder
 * step is a few small matrix products, where WebGPU's per-run dispatch and read-back cost more than the work, and
 * wasm computes as onnxruntime-node's CPU provider does, so the beam ranks captions as the CLI's.
 */
export async function loadCaptioner(id: string): Promise<LoadedCaptioner> {
  const base = `models/${encodeURIComponent(id)}/`;
  const card = await fetchJson<CaptionerCard>(`${base}model.json`);
  const problems = captionerCardProblems(card);
  if (problems.length > 0) throw new Error(`model.json of '${id}': ${problems.join('; ')}`);
  const vocabulary = Vocabulary.fromJSON(card.vocabulary);
  const options: OrtWeb.InferenceSession.SessionOptions = { executionProviders: ['wasm'], graphOptimizationLevel: 'all' };
  const [encoderBytes, stepBytes] = await Promise.all([fetchBytes(base + card.files.encoder), fetchBytes(base + card.files.step)]);
  const encoder = await ort.InferenceSession.create(encoderBytes, options);
  let step: OrtWeb.InferenceSession;
  try {
    step = await ort.InferenceSession.create(stepBytes, options);
  } catch (err) {
    await encoder.release();
    throw err;
  }
  const problem = !encoder.inputNames.includes('input')
    ? "the captioner's encoder model has no input `input`"
    : stepModelProblem(step, encoder.outputNames) ?? stepVocabularyProblem(step, vocabulary.size);
  if (problem !== undefined) {
    await Promise.all([encoder.release(), step.release()]);
    throw new Error(`'${id}': ${problem}`);
  }
  return { id, card, vocabulary, encoder, step };
}

/** The best caption of an image by the card's search (beam, length penalty, longest caption). */
export async function captionImage(c: LoadedCaptioner, pixels: Pixels): Promise<PageCaption> {
  const [channels, height, width] = c.card.input.shape;
  const input = preprocessImage(pixels, c.card.input.preprocessing, channels, height, width);
  const started = performance.now();
  const initial = await c.encoder.run({ [c.card.input.name]: new ort.Tensor('float32', input, [1, channels, height, width]) });
  const { beam, lengthPenalty, maxLength } = c.card.generation;
  const found = await searchCaptions<DecoderState>(decoderSteps(c.step, c.vocabulary.size, ort.Tensor), initial, {
    startId: START, endId: END, maxLength, beam, lengthPenalty,
  });
  const best = found[0];
  if (best === undefined) throw new Error('the search found no caption');
  return { text: c.vocabulary.decode(best.tokens), logProb: best.logProb, milliseconds: performance.now() - started };
}

export async function releaseCaptioner(c: LoadedCaptioner): Promise<void> {
  await Promise.all([c.encoder.release(), c.step.release()]);
}
