import type { DeviceRequest } from '../../runtime/device';
import type { AugmentFlags } from '../augment-flags';

/** The options of `deepvision train` as commander hands them over: numbers still as typed. */
export interface TrainFlags extends AugmentFlags {
  data: string;
  trainSize?: string;
  valSize?: string;
  imageSize?: string;
  valFraction?: string;
  cacheDir?: string;
  workers?: string;
  trainEvalSize: string;
  config?: string;
  epochs: string;
  batchSize: string;
  optimizer: 'sgd' | 'adam' | 'adamw';
  lr: string;
  backboneLr?: string;
  momentum: string;
  nesterov?: boolean;
  weightDecay: string;
  schedule: 'constant' | 'step' | 'cosine';
  stepSize: string;
  gamma: string;
  warmupSteps: string;
  clipGradNorm?: string;
  labelSmoothing: string;
  patience?: string;
  seed: string;
  threads: string;
  out?: string;
  resume?: string;
  variant?: string;
  set: string[];
  progress: boolean;
  device: DeviceRequest;
  graphOptimization: 'disabled' | 'basic' | 'extended' | 'all';
  blockedConv: boolean;
  featureCache: boolean;
  minCount?: string;
  maxLength?: string;
  bleuImages?: string;
}
