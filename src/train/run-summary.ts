import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeAugmentation, NO_AUGMENTATION } from '../data/augment';
import { writeFileAtomic } from '../util/atomic-write';
import { UserError } from '../util/user-error';
import type { EpochMetrics } from '../metrics/epoch-metrics';
import type { DataOptions, ModelOptions, OptimizationOptions, StopReason, TrainResult } from './options';
import type { Task } from './tasks/task';
import { FileReadError, readRegularText } from '../util/regular-file';

/** The trainer options this part reads. */
type Options = DataOptions & ModelOptions & OptimizationOptions;

/**
 * What a training run leaves in its output folder when it finishes (summary.json): written by train() itself, so a
 * library call and `deepvision train` leave the same folder; the sweep reads it to skip finished runs and to report.
 */
export interface RunSummary {
  model: string;
  variant: string | null;
  /** The data as the caller named it (`--data` as typed). */
  data: string;
  /** Class names of a classifier (empty for a captioner). */
  classes: string[];
  stopped: StopReason;
  /** The last epoch trained (0 when none was). */
  epochs: number;
  best: EpochMetrics | null;
  last: EpochMetrics | null;
  /** Validation confusion matrix of the best epoch: confusion[true][predicted] counts. */
  confusion: number[][] | null;
  augmentation: string;
  /** The optimizer's kind: sgd, adam or adamw. */
  optimizer: string;
  lr: number;
  batchSize: number;
  /** Training time of this sitting's epochs (validation excluded). */
  seconds: number;
}

export const SUMMARY_FILE = 'summary.json';

/** A summary.json that is not one deepvision wrote: the user should see which file and why, not a crash later. */
export class RunSummaryError extends UserError {}

/** The summary of a run train() has just finished (or stopped). */
export function summarizeRun(o: Options, r: Pick<TrainResult, 'history' | 'best' | 'stopped' | 'confusion'>, task: Pick<Task, 'summaryClasses'>): RunSummary {
  const last = r.history[r.history.length - 1];
  return {
    model: o.definition.name, variant: o.variant ?? null, data: o.dataLabel ?? o.data?.source ?? o.train.name,
    classes: task.summaryClasses(o), stopped: r.stopped,
    epochs: last?.epoch ?? 0, best: r.best ?? null, last: last ?? null, confusion: r.confusion ?? null,
    augmentation: describeAugmentation(o.augment ?? NO_AUGMENTATION), optimizer: o.optimizer.kind, lr: o.learningRate, batchSize: o.batchSize,
    seconds: r.history.reduce((t, m) => t + m.seconds, 0),
  };
}

export function writeRunSummary(dir: string, summary: RunSummary): string {
  const file = path.join(dir, SUMMARY_FILE);
  writeFileAtomic(file, `${JSON.stringify(summary, null, 2)}\n`);
  return file;
}

/** The summary of the run in `dir`; undefined while the run has not finished (no summary.json yet). */
export function readRunSummary(dir: string): RunSummary | undefined {
  const file = path.join(dir, SUMMARY_FILE);
  let text: string;
  try {
    if (!fs.existsSync(file)) return undefined;
    text = readRegularText(file, { what: 'run summary' });
  } catch (err) {
    if (err instanceof FileReadError) throw new RunSummaryError(`cannot read ${file}: ${err.reason}`);
    throw new RunSummaryError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new RunSummaryError(`${file} is not JSON (delete it to have the run counted as unfinished)`);
  }
  const problem = summaryProblem(parsed);
  if (problem !== undefined) throw new RunSummaryError(`${file} is not a summary written by deepvision train: ${problem}`);
  return parsed as RunSummary;
}

/** Every StopReason (the compiler checks the list is complete). */
const STOP_REASONS: Record<StopReason, true> = { completed: true, 'early-stopping': true, interrupted: true, 'max-steps': true };

/** The first field of `value` that a RunSummary does not allow, in words; undefined when it is one. */
function summaryProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not an object';
  const s = value as Record<string, unknown>;
  const isNumber = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  const isMetrics = (v: unknown) => v === null || (typeof v === 'object' && !Array.isArray(v) && ['epoch', 'valLoss', 'valTop1'].every((k) => typeof (v as Record<string, unknown>)[k] === 'number'));
  const checks: [keyof RunSummary, (v: unknown) => boolean][] = [
    ['model', (v) => typeof v === 'string'],
    ['variant', (v) => v === null || typeof v === 'string'],
    ['data', (v) => typeof v === 'string'],
    ['classes', (v) => Array.isArray(v) && v.every((c) => typeof c === 'string')],
    ['stopped', (v) => typeof v === 'string' && Object.hasOwn(STOP_REASONS, v)],
    ['epochs', (v) => Number.isInteger(v) && (v as number) >= 0],
    ['best', isMetrics],
    ['last', isMetrics],
    ['confusion', (v) => v === null || (Array.isArray(v) && v.every((row) => Array.isArray(row) && row.every(isNumber)))],
    ['augmentation', (v) => typeof v === 'string'],
    ['optimizer', (v) => typeof v === 'string'],
    ['lr', isNumber],
    ['batchSize', isNumber],
    ['seconds', isNumber],
  ];
  const bad = checks.find(([key, ok]) => !ok(s[key]));
  return bad === undefined ? undefined : `'${bad[0]}' is ${bad[0] in s ? `invalid (${(JSON.stringify(s[bad[0]]) as string | undefined)?.slice(0, 60)})` : 'missing'}`;
}
