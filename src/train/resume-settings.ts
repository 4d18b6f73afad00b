import { describeAugmentation } from '../data/augment';
import type { CheckpointMetadata } from '../checkpoint/checkpoint';
import type { ModelForData } from './model-for-data';
import type { DataOptions, ModelOptions, OptimizationOptions } from './options';
import { TrainingError } from './training-error';

/** The trainer options this part reads. */
type Options = DataOptions & ModelOptions & OptimizationOptions;

/** The metadata key of the settings a resumed run must share with the run it continues. */
const KEY = 'deepvision.resume_settings';

/** A setting a resume must keep: how the user names it, and its value in a run (JSON-comparable). */
interface ResumeSetting {
  name: string;
  value: (o: Options, seed: number, model: ModelForData) => unknown;
  /** Where checkpoints written before `deepvision.resume_settings` record it, if they do. */
  legacy?: (meta: CheckpointMetadata) => unknown;
}

/**
 * What `--resume` promises stays the same (its help says "with the same settings"): a run continued with another
 * data set, batch size, seed or learning rate would mix two runs in one metrics.jsonl. Epochs, patience, threads,
 * the device and the output folder may change.
 */
const SETTINGS: Record<string, ResumeSetting> = {
  data: { name: '--data', value: (o) => o.data?.source ?? o.train.name, legacy: (m) => m['deepvision.data'] },
  trainImages: { name: 'training images (--train-size)', value: (o) => o.train.count },
  valFraction: { name: '--val-fraction', value: (o) => o.data?.valFraction ?? null },
  imageSize: { name: '--image-size', value: (o) => o.train.height },
  seed: { name: '--seed', value: (_, seed) => seed, legacy: (m) => (m['deepvision.seed'] === undefined ? undefined : Number(m['deepvision.seed'])) },
  config: { name: 'model config (--variant, --set)', value: (o, _, model) => ({ variant: o.variant ?? null, ...model.graph.config }) },
  batchSize: { name: '--batch-size', value: (o) => o.batchSize },
  optimizer: { name: 'optimizer (--optimizer, --momentum, --weight-decay)', value: (o) => o.optimizer },
  learningRate: { name: '--lr', value: (o) => o.learningRate },
  learningRates: { name: '--backbone-lr', value: (o) => o.learningRates ?? null },
  schedule: { name: 'learning-rate schedule (--schedule)', value: (o) => scheduleSetting(o) },
  warmupSteps: { name: '--warmup-steps', value: (o) => o.warmupSteps ?? 0 },
  clipGradNorm: { name: '--clip-grad-norm', value: (o) => o.clipGradNorm ?? null },
  labelSmoothing: { name: '--label-smoothing', value: (o) => o.labelSmoothing ?? 0 },
  augmentation: { name: 'augmentation (--augment)', value: (o) => (o.augment === undefined ? 'none' : describeAugmentation(o.augment)) },
};

/** The schedule without what follows from --epochs (a cosine's length): a resume may train for more epochs. */
function scheduleSetting(o: Options): unknown {
  const s = o.schedule ?? { kind: 'constant' };
  return s.kind === 'step' ? { kind: s.kind, stepSize: s.stepSize, gamma: s.gamma ?? null } : s.kind === 'cosine' ? { kind: s.kind, minLr: s.minLr ?? null } : { kind: s.kind };
}

/** The metadata entry that records a run's settings for a later resume. */
export function resumeSettingsMetadata(o: Options, seed: number, model: ModelForData): Record<string, string> {
  return { [KEY]: JSON.stringify(Object.fromEntries(Object.entries(SETTINGS).map(([key, s]) => [key, s.value(o, seed, model)]))) };
}

/**
 * Refuses to resume `file` with settings other than the ones it was trained with, in one line naming the setting,
 * its saved value and the new one, or with other targets than the data gives (the task's check: classes,
 * vocabulary). A setting the checkpoint does not record (one written by an older version) is not checked.
 */
export function checkResumeSettings(file: string, meta: CheckpointMetadata, o: Options, seed: number, model: ModelForData): void {
  const recorded = recordedSettings(file, meta);
  for (const [key, setting] of Object.entries(SETTINGS)) {
    const saved = Object.hasOwn(recorded, key) ? recorded[key] : setting.legacy?.(meta);
    if (saved === undefined) continue;
    const now = setting.value(o, seed, model);
    if (JSON.stringify(saved) !== JSON.stringify(now)) {
      throw new TrainingError(`${file} was trained with ${setting.name} ${show(saved)}, this run has ${show(now)}: --resume continues a run with the same settings (start a new run to change them)`);
    }
  }
  model.task.checkResume(file, meta, o);
}

function recordedSettings(file: string, meta: CheckpointMetadata): Record<string, unknown> {
  const text = meta[KEY];
  if (text === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new TrainingError(`${file}: checkpoint metadata '${KEY}' is not a JSON object`);
  return parsed as Record<string, unknown>;
}

/** A value as the user would type it (strings bare), cut to a line's worth. */
function show(v: unknown): string {
  const s = typeof v === 'string' && !/[\u0000-\u001f\u2028\u2029]/.test(v) ? v : JSON.stringify(v);
  return s.length <= 120 ? s : `${s.slice(0, 117)}...`;
}
