/* eslint-disable @typescript-eslint/no-unnecessary-condition -- this file checks cards read from disk or the network through their declared types: the checks those types call unnecessary are the point */
/**
 * model.json: what a page (or any other runtime) needs to use an exported model: the file, the input it expects and
 * how to make it from an image, the labels of its outputs, and where it came from. Pure data, shared by the CLI and
 * the web demo.
 */
/** The largest model.json read: a card is a few kB (a vocabulary or labels included); a larger file is not a card. */
export const MAX_CARD_BYTES = 64 * 1024 * 1024;

export interface ModelCard {
  format: 'deepvision-model-card';
  version: 1;
  name: string;
  /** The ONNX file, relative to model.json. */
  file: string;
  input: {
    name: string;
    /** [channels, height, width]; the batch dimension is dynamic. */
    shape: [number, number, number];
    /** How to turn pixels into the input, in this order: see image-preprocessing.ts. */
    preprocessing: {
      /** Resize so that the shorter side has this many pixels (keeping the aspect ratio), then center-crop. */
      resizeShorterSide: number;
      /** value = (pixel / 255 - mean[c]) / std[c], channels in RGB order. */
      mean: number[];
      std: number[];
    };
  };
  output: { name: string; kind: 'logits' };
  labels: string[];
  training: {
    dataset: string;
    validation?: { top1: number; top5: number; loss: number; epoch: number };
  };
  /** 'float32', or 'float16-weights' (weights stored as float16, computed in float32). */
  precision: 'float32' | 'float16-weights';
  parameters: number;
  bytes: number;
  producer: string;
  exportedAt: string;
}

/** Checks the fields a runtime relies on; returns a list of problems (empty when the card is usable). */
export function modelCardProblems(card: unknown): string[] {
  const c = card as Partial<ModelCard> | null;
  if (typeof c !== 'object' || c === null) return ['model.json is not a JSON object'];
  // A captioner's card (captioner-card.ts) has no single model and no labels: say what it is instead.
  if ((c as { task?: unknown }).task === 'captioning') return ["it is a captioner's card (task 'captioning'): caption images with `deepvision caption`"];
  const problems: string[] = [];
  if (c.format !== 'deepvision-model-card') problems.push("'format' is not 'deepvision-model-card'");
  if (typeof c.file !== 'string' || c.file === '') problems.push("'file' is missing");
  problems.push(...inputProblems(c.input));
  if (!Array.isArray(c.labels) || c.labels.length === 0) problems.push("'labels' is missing");
  return problems;
}

/** The problems of a card's `input` (shape and preprocessing), shared by every kind of card. */
export function inputProblems(input: Partial<ModelCard['input']> | undefined): string[] {
  const problems: string[] = [];
  const shape = input?.shape;
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((d) => Number.isInteger(d) && d > 0)) problems.push("'input.shape' must be [channels, height, width]");
  const p = input?.preprocessing;
  const channels = Array.isArray(shape) && Number.isInteger(shape[0]) && shape[0]! > 0 ? shape[0]! : 3;
  // Numbers, not strings or nulls that JavaScript would coerce: a mean of "a" makes every input NaN, and the
  // model then answers nothing (an empty caption, a NaN score) instead of an error.
  const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
  const side = p?.resizeShorterSide;
  if (!(typeof side === 'number' && Number.isSafeInteger(side) && side > 0)) problems.push("'input.preprocessing.resizeShorterSide' must be a positive integer");
  if (!p || !Array.isArray(p.mean) || p.mean.length !== channels || !p.mean.every(finite)) problems.push(`'input.preprocessing.mean' needs ${channels} finite numbers`);
  if (!p || !Array.isArray(p.std) || p.std.length !== channels || !p.std.every((s) => finite(s) && s > 0)) problems.push(`'input.preprocessing.std' needs ${channels} positive finite numbers`);
  return problems;
}
