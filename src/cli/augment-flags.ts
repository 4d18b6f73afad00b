import { Command, Option } from 'commander';
import { AugmentConfig, augmentationProblems, NO_AUGMENTATION, STANDARD_AUGMENTATION } from '../data/augment';
import { UserError } from './errors';

export interface AugmentFlags {
  augment: 'none' | 'standard';
  cropPadding?: string;
  hflip?: string;
  vflip?: string;
  rotate?: string;
  translate?: string;
  scale?: string;
  brightness?: string;
  contrast?: string;
  saturation?: string;
  erase?: string;
}

/** The augmentation options of `train` (training split only). */
export function addAugmentOptions(command: Command): Command {
  return command
    .addOption(new Option('--augment <preset>', 'augmentation preset for the training split: none, or standard (random crop with padding 4 + horizontal flips); the options below change single parts').choices(['none', 'standard']).default('none'))
    .option('--crop-padding <px>', 'random crop after zero-padding each side by this many pixels')
    .option('--hflip <p>', 'probability of a horizontal flip')
    .option('--vflip <p>', 'probability of a vertical flip')
    .option('--rotate <degrees>', 'random rotation in [-degrees, degrees]')
    .option('--translate <fraction>', 'random shift of up to this fraction of the image size')
    .option('--scale <min,max>', 'random zoom factor range, e.g. 0.9,1.1')
    .option('--brightness <x>', 'colour jitter: brightness factor in [1-x, 1+x]')
    .option('--contrast <x>', 'colour jitter: contrast factor in [1-x, 1+x]')
    .option('--saturation <x>', 'colour jitter: saturation factor in [1-x, 1+x]')
    .option('--erase <p>', 'probability of random erasing: a rectangle of 2-33 % of the image set to the mean colour');
}

export function augmentFromFlags(f: AugmentFlags): AugmentConfig {
  const a: AugmentConfig = { ...(f.augment === 'standard' ? STANDARD_AUGMENTATION : NO_AUGMENTATION) };
  const number = (name: string, v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new UserError(`--${name} got '${v}', which is not a number`);
    return n;
  };
  if (f.cropPadding !== undefined) a.cropPadding = number('crop-padding', f.cropPadding);
  if (f.hflip !== undefined) a.hflip = number('hflip', f.hflip);
  if (f.vflip !== undefined) a.vflip = number('vflip', f.vflip);
  if (f.rotate !== undefined) a.rotate = number('rotate', f.rotate);
  if (f.translate !== undefined) a.translate = number('translate', f.translate);
  if (f.scale !== undefined) {
    const parts = f.scale.split(',');
    if (parts.length !== 2) throw new UserError(`--scale takes min,max (e.g. 0.9,1.1), got '${f.scale}'`);
    [a.scaleMin, a.scaleMax] = parts.map((p) => number('scale', p)) as [number, number];
  }
  if (f.brightness !== undefined) a.brightness = number('brightness', f.brightness);
  if (f.contrast !== undefined) a.contrast = number('contrast', f.contrast);
  if (f.saturation !== undefined) a.saturation = number('saturation', f.saturation);
  if (f.erase !== undefined) a.erase = number('erase', f.erase);
  const problems = augmentationProblems(a);
  if (problems.length > 0) throw new UserError(`augmentation: ${problems.join('; ')}`);
  return a;
}
