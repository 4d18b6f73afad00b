/* eslint-disable @typescript-eslint/no-unnecessary-condition -- this file checks cards read from disk or the network through their declared types: the checks those types call unnecessary are the point */
/**
 * model.json of an exported captioner: its two generation models (see src/generate/decoder-steps.ts for their
 * contract), the vocabulary that turns token ids into words, the image preprocessing, and how to search. Pure data,
 * shared by `deepvision caption` and the web demo, like the classifier's card (model-card.ts).
 */
import type { InferenceSession } from 'onnxruntime-common';
import { Vocabulary, VocabularyJSON } from './vocabulary';
import { inputProblems, ModelCard } from './model-card';
import { beamProblem, MAX_CAPTION_TOKENS } from './search-limits';

export interface CaptionerCard {
  format: 'deepvision-model-card';
  version: 1;
  task: 'captioning';
  name: string;
  /** Plain file names beside model.json: the encoder (image -> the decoder's starting state) and one decoder step. */
  files: { encoder: string; step: string };
  /** The encoder's image input, made from pixels as for a classifier. */
  input: ModelCard['input'];
  vocabulary: VocabularyJSON;
  /** The search the page runs (the CLI's defaults: `deepvision caption --beam K --length-penalty A`). */
  generation: {
    /** Longest caption in words (the model was trained on captions of at most this many). */
    maxLength: number;
    beam: number;
    lengthPenalty: number;
  };
  training: {
    dataset: string;
    validation?: { loss: number; epoch: number; bleu?: number[] };
  };
  precision: 'float32' | 'float16-weights';
  parameters: number;
  /** Both ONNX files together. */
  bytes: number;
  producer: string;
  exportedAt: string;
}

/** Whether a parsed model.json is a captioner's (anything else is read as a classifier's card). */
export function isCaptionerCard(card: unknown): boolean {
  return typeof card === 'object' && card !== null && (card as { task?: unknown }).task === 'captioning';
}

/** A file name without a folder: a card must not point a runtime at other paths. */
function isPlainFileName(name: unknown): boolean {
  return typeof name === 'string' && /^[\w.-]+$/.test(name) && !/^\.+$/.test(name);
}

/** Checks what a runtime relies on; returns a list of problems (empty when the card is usable). */
export function captionerCardProblems(card: unknown): string[] {
  if (!isCaptionerCard(card)) return ["'task' is not 'captioning'"];
  const c = card as Partial<CaptionerCard>;
  const problems: string[] = [];
  if (c.format !== 'deepvision-model-card') problems.push("'format' is not 'deepvision-model-card'");
  for (const f of ['encoder', 'step'] as const) {
    if (!isPlainFileName(c.files?.[f])) problems.push(`'files.${f}' must be a plain file name`);
  }
  problems.push(...inputProblems(c.input));
  // What both runtimes assume (Node's CaptionModel feeds `input` a square image resized to its side): checked here so
  // that the CLI and the page refuse the same cards.
  if (c.input?.name !== 'input') problems.push("'input.name' must be 'input' (the captioner's encoder reads `input`)");
  if (c.input?.shape?.[0] !== 3) problems.push("'input.shape' must have 3 channels (captioners read RGB images)");
  const [, height, width] = Array.isArray(c.input?.shape) ? c.input.shape : [];
  const side = c.input?.preprocessing?.resizeShorterSide;
  if (height !== width || side !== height) {
    problems.push(`a captioner's input is a square image resized to its side, not [${c.input?.shape}] from ${side} pixels`);
  }
  if (c.vocabulary === undefined) {
    problems.push("'vocabulary' is missing (the words of the token ids)");
  } else {
    try {
      Vocabulary.fromJSON(c.vocabulary);
    } catch (err) {
      problems.push(`'vocabulary' is ${(err as Error).message}`);
    }
  }
  const g = c.generation;
  const positive = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
  const [maxLength, beam] = [g?.maxLength, g?.beam];
  if (!positive(maxLength)) problems.push("'generation.maxLength' must be a positive integer");
  else if (maxLength + 2 > MAX_CAPTION_TOKENS) problems.push(`'generation.maxLength' is ${maxLength} words, more than the ${MAX_CAPTION_TOKENS - 2} supported (${MAX_CAPTION_TOKENS} tokens with <start> and <end>)`);
  if (!positive(beam)) problems.push("'generation.beam' must be a positive integer");
  else {
    const tokens = (c.vocabulary as { tokens?: unknown } | undefined)?.tokens;
    const problem = beamProblem(beam, Array.isArray(tokens) ? tokens.length : undefined);
    if (problem !== undefined) problems.push(`'generation.beam': ${problem}`);
  }
  if (!(typeof g?.lengthPenalty === 'number' && Number.isFinite(g.lengthPenalty) && g.lengthPenalty >= 0)) problems.push("'generation.lengthPenalty' must be a number >= 0");
  return problems;
}

/**
 * Whether a step model scores the vocabulary it is given: its `log_probs` must have one value per token. Checked
 * when the model is loaded (from its declared shape), so that a step model of another vocabulary is an error, not
 * captions in the wrong words.
 */
export function stepVocabularyProblem(step: InferenceSession, vocabularySize: number): string | undefined {
  const meta = step.outputMetadata.find((m) => m.name === 'log_probs');
  const shape = meta?.isTensor ? meta.shape : undefined;
  const size = shape?.[shape.length - 1];
  if (typeof size !== 'number' || size === vocabularySize) return undefined;
  return `the captioner's step model scores ${size} tokens, but its vocabulary has ${vocabularySize}`;
}
