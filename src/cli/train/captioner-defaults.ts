import type { Command } from 'commander';
import { isGeneratedData } from '../../data/kinds';

/**
 * The options a captioner trained on `shapes` uses where the command line and --config leave them out. The
 * command's own defaults suit the classifiers; with them a first captioner (10 epochs of 10,000 images, constant
 * learning rate 0.001) named the right shape in 7 of the 10 demo samples. More images seen fewer times, a higher
 * learning rate that warms up and decays (cosine), and clipped gradients learn the captions faster; 48 px images
 * instead of the classifiers' 32 let the small encoder tell the shapes apart (a square from a circle, a hexagon
 * from a heart), which 32 px did not for any encoder width tried. The figures are in the README (Image captioning).
 * Keys are the options' attribute names; values as typed on the command line.
 */
export const SHAPES_CAPTIONER_DEFAULTS = {
  imageSize: '48',
  trainSize: '50000',
  epochs: '2',
  lr: '0.004',
  schedule: 'cosine',
  warmupSteps: '100',
  clipGradNorm: '5',
} as const;

export type ShapesCaptionerOption = keyof typeof SHAPES_CAPTIONER_DEFAULTS;

/** The defaults as command-line flags, in the order above: `--train-size 20000 --epochs 5 ...`. */
export function shapesCaptionerFlags(): string {
  return Object.entries(SHAPES_CAPTIONER_DEFAULTS).map(([key, value]) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} ${value}`).join(' ');
}

/** How --help shows an option's default: the command's own, then the shapes captioner's. */
export function defaultWithCaptioner(general: string, key: ShapesCaptionerOption): string {
  return `${general}; a captioner on shapes: ${SHAPES_CAPTIONER_DEFAULTS[key]}`;
}

/** Whether `--set imageSize=N` is among the options: it sizes the data as --image-size would. */
function setsImageSize(command: Command): boolean {
  const assignments: unknown = command.getOptionValue('set');
  return Array.isArray(assignments) && assignments.some((a) => typeof a === 'string' && /^\s*imageSize\s*=/.test(a));
}

/**
 * Sets the shapes captioner's defaults on `command` for the options still at the command's default (or unset): a
 * value from the command line or a --config file wins, and so does `--set imageSize=N` over the image size.
 * Nothing changes for other data (nor for classifiers: the captioning task's row applies them, cli/tasks/).
 */
export function applyCaptionerDefaults(command: Command, data: string): void {
  if (!isGeneratedData(data)) return;
  for (const [key, value] of Object.entries(SHAPES_CAPTIONER_DEFAULTS)) {
    if (key === 'imageSize' && setsImageSize(command)) continue;
    const source = command.getOptionValueSource(key);
    if (source === undefined || source === 'default') command.setOptionValueWithSource(key, value, 'default');
  }
}
