/* eslint-disable @typescript-eslint/no-unnecessary-condition -- this file checks cards read from disk or the network through their declared types: the checks those types call unnecessary are the point */
/**
 * teach.json: what the page's Teach mode needs to train a new head on a frozen backbone: the backbone as a feature
 * model, one set of head artifacts (training, optimizer, evaluation, inference graphs and initial parameters) per
 * class count, the preprocessing, and the training defaults. Written by `deepvision export-teach`; pure data,
 * shared by the CLI and the page.
 */
import { inputProblems, type ModelCard } from './model-card';
import type { OptimizerConfig } from '../optim/config';

export interface TeachHead {
  /** How many classes this head has (its logits' width). */
  classes: number;
  /** Folder of the head's files, relative to teach.json (a plain name). */
  folder: string;
  /** Inputs `features`, `labels`, parameters; outputs `loss` and `<param>_grad` (write-artifacts.ts's contract). */
  training: string;
  /** Inputs `learning_rate`, `step`, parameters, gradients, slots; outputs `<input>_updated`. */
  optimizer: string;
  /** Inputs as the training graph's; outputs `loss` and `logits` (eval mode). */
  eval: string;
  /** Inputs `features` and the parameters; output `logits`: the head of the downloadable model. */
  inference: string;
  /** The parameters in the order their initial values lie in `init` (float32, little-endian, back to back). */
  parameters: { name: string; shape: number[] }[];
  init: string;
}

/**
 * A trained classifier (a `deepvision train` run) whose every parameter the page fine-tunes on images of its own
 * classes: the run's training, optimizer and evaluation graphs as they are, its trained state, and an inference
 * graph taking that state as inputs, which the page turns into the downloadable model.
 */
export interface TeachWholeModel {
  folder: string;
  /** Inputs `input` [batch, ...input.shape], `labels`, the state, dropout noise; outputs `loss`, `<param>_grad`, `<buffer>_updated`. */
  training: string;
  optimizer: string;
  /** The run's optimizer settings (the graph's); slots start at zero and the update count at 1. */
  optimizerConfig: OptimizerConfig;
  eval: string;
  /** Inputs `input` and the state named in `inferenceParameters`; output `logits`. */
  inference: string;
  inferenceParameters: string[];
  /** The model's class names, in logit order. */
  labels: string[];
  /** The state the graphs read (parameters, then buffers such as batch-norm statistics), in the order of `init`. */
  parameters: { name: string; shape: number[] }[];
  init: string;
  /** Dropout noise inputs of the training graph and their shapes after the batch (uniform [0, 1), drawn per update as the trainer draws it). */
  noise: { name: string; shape: number[] }[];
  /** The trainable parameters (those with a gradient) and their count. */
  trainable: number;
  /** Defaults the page's fine-tuning starts from. */
  defaults: { learningRate: number; epochs: number; batchSize: number };
  /** The run's last validation result, if it recorded one (what fine-tuning starts from). */
  validation?: { top1: number; epoch: number };
}

export interface TeachBundleCard {
  format: 'deepvision-teach-bundle';
  version: 1;
  name: string;
  /** The backbone's file name and the value it was cut at. */
  backbone: { file: string; cut: string; parameters: number };
  /** Input `input` [batch, ...input.shape], output `features` [batch, features]. */
  featureModel: string;
  input: ModelCard['input'];
  features: number;
  heads: TeachHead[];
  optimizer: OptimizerConfig;
  /** Defaults the page starts from. */
  training: { learningRate: number; epochs: number; batchSize: number; heldOutFraction: number };
  /** Present when the bundle was made from a training run: the whole model, for fine-tuning all its parameters. */
  wholeModel?: TeachWholeModel;
  producer: string;
  exportedAt: string;
}

/** The class counts a bundle ships heads for by default. */
export const MIN_CLASSES = 2;
export const MAX_CLASSES = 10;

/** A plain file or folder name: a card must not point the page at other paths of the site. */
export const isPlainName = (name: unknown): name is string => typeof name === 'string' && /^[\w.-]+$/.test(name) && !/^\.+$/.test(name);

/** Checks the fields the page relies on; returns a list of problems (empty when the card is usable). */
export function teachCardProblems(card: unknown): string[] {
  const c = card as Partial<TeachBundleCard> | null;
  if (typeof c !== 'object' || c === null) return ['teach.json is not a JSON object'];
  const problems: string[] = [];
  if (c.format !== 'deepvision-teach-bundle') problems.push("'format' is not 'deepvision-teach-bundle'");
  if (!isPlainName(c.featureModel)) problems.push("'featureModel' must be a plain file name");
  const b = c.backbone;
  if (typeof b !== 'object' || b === null || typeof b.file !== 'string' || typeof b.cut !== 'string' || !(typeof b.parameters === 'number' && b.parameters >= 0)) {
    problems.push("'backbone' must give the backbone's file, cut and parameter count");
  }
  // The shape and preprocessing as every card's (the page preprocesses with them), and the name the page feeds.
  problems.push(...inputProblems(c.input));
  if (typeof c.input?.name !== 'string' || c.input.name === '') problems.push("'input.name' must name the backbone's input");
  if (!(Number.isInteger(c.features) && c.features! > 0)) problems.push("'features' must be a positive integer");
  if (!Array.isArray(c.heads) || c.heads.length === 0) problems.push("'heads' is missing");
  for (const h of Array.isArray(c.heads) ? c.heads : []) {
    if (typeof h !== 'object' || h === null) {
      problems.push(`head ${JSON.stringify(h)} is not an object`);
      continue;
    }
    const files = [h.folder, h.training, h.optimizer, h.eval, h.inference, h.init];
    if (!Number.isInteger(h.classes) || h.classes < 2 || !files.every(isPlainName) || !Array.isArray(h.parameters)) {
      problems.push(`head ${JSON.stringify(h.classes)} is incomplete or names files outside its folder`);
    }
  }
  problems.push(...settingsProblems(c.training, 'training'));
  const fraction = c.training?.heldOutFraction;
  if (typeof c.training === 'object' && c.training !== null && !(typeof fraction === 'number' && fraction >= 0 && fraction < 1)) {
    problems.push("'training.heldOutFraction' must be a number from 0 to below 1");
  }
  const w = c.wholeModel;
  if (w !== undefined) {
    const files = typeof w === 'object' && w !== null ? [w.folder, w.training, w.optimizer, w.eval, w.inference, w.init] : [undefined];
    if (!files.every(isPlainName) || !Array.isArray(w.parameters) || !Array.isArray(w.noise) || !Array.isArray(w.inferenceParameters)) {
      problems.push("'wholeModel' is incomplete or names files outside its folder");
    } else {
      if (!Array.isArray(w.labels) || w.labels.length < 2 || !w.labels.every((l) => typeof l === 'string')) problems.push("'wholeModel.labels' must list at least 2 class names");
      problems.push(...settingsProblems(w.defaults, 'wholeModel.defaults'));
    }
  }
  return problems;
}

/** The problems of a card's training defaults (the page's starting settings), `where` naming them. */
function settingsProblems(d: Partial<TeachBundleCard['training']> | undefined, where: string): string[] {
  if (typeof d !== 'object' || d === null) return [`'${where}' is missing (the learning rate, epochs and batch size the page starts from)`];
  const problems: string[] = [];
  if (!(typeof d.learningRate === 'number' && Number.isFinite(d.learningRate) && d.learningRate > 0)) problems.push(`'${where}.learningRate' must be a number above 0`);
  for (const key of ['epochs', 'batchSize'] as const) {
    if (!(Number.isSafeInteger(d[key]) && d[key]! > 0)) problems.push(`'${where}.${key}' must be a positive integer`);
  }
  return problems;
}
