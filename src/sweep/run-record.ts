import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EpochMetrics } from '../train/trainer';
import { UserError } from '../util/user-error';

/** What `deepvision train` leaves in its output folder at the end of a run (summary.json). */
export interface RunSummary {
  model: string;
  variant: string | null;
  data: string;
  classes: string[];
  stopped: 'completed' | 'early-stopping' | 'interrupted' | 'max-steps';
  epochs: number;
  best: EpochMetrics | null;
  last: EpochMetrics | null;
  confusion: number[][] | null;
  augmentation: string;
  optimizer: string;
  lr: number;
  batchSize: number;
  seconds: number;
}

export class RunRecordError extends UserError {}

/** Epoch metrics from a metrics.jsonl (the last line per epoch wins, so a re-run into the same folder reads cleanly). */
export function readMetrics(file: string): EpochMetrics[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new RunRecordError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const byEpoch = new Map<number, EpochMetrics>();
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let m: EpochMetrics;
    try {
      m = JSON.parse(line) as EpochMetrics;
    } catch {
      throw new RunRecordError(`${file}, line ${i + 1}: not JSON (is this a metrics.jsonl written by deepvision train?)`);
    }
    if (typeof m.epoch !== 'number' || typeof m.valLoss !== 'number') throw new RunRecordError(`${file}, line ${i + 1}: no epoch metrics`);
    byEpoch.set(m.epoch, m);
  });
  return [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch);
}

export function readSummary(dir: string): RunSummary | undefined {
  const file = path.join(dir, 'summary.json');
  if (!fs.existsSync(file)) return undefined;
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as RunSummary;
  } catch {
    return undefined;
  }
}

/** A run folder or a metrics.jsonl path -> the run's name, folder and metrics file. */
export function locateRun(target: string): { name: string; dir: string; metricsFile: string } {
  const isDir = fs.existsSync(target) && fs.statSync(target).isDirectory();
  const dir = isDir ? target : path.dirname(target);
  const metricsFile = isDir ? path.join(target, 'metrics.jsonl') : target;
  if (!fs.existsSync(metricsFile)) throw new RunRecordError(`${metricsFile} does not exist (give a metrics.jsonl or a folder written by deepvision train)`);
  return { name: path.basename(path.resolve(dir)), dir, metricsFile };
}
