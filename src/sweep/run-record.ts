import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EpochMetrics } from '../metrics/epoch-metrics';
import { UserError } from '../util/user-error';
import { FileReadError, readRegularText } from '../util/regular-file';

// `deepvision plot` reads summaries through this module too; the one definition is the trainer's.
export { readRunSummary as readSummary } from '../train/run-summary';

class RunRecordError extends UserError {}

/** Epoch metrics from a metrics.jsonl (the last line per epoch wins, so a re-run into the same folder reads cleanly). */
export function readMetrics(file: string): EpochMetrics[] {
  let text: string;
  try {
    text = readRegularText(file, { what: 'metrics file' });
  } catch (err) {
    if (err instanceof FileReadError) throw new RunRecordError(`cannot read ${file}: ${err.reason}`);
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

/** A run folder or a metrics.jsonl path -> the run's name, folder and metrics file. */
export function locateRun(target: string): { name: string; dir: string; metricsFile: string } {
  const isDir = fs.existsSync(target) && fs.statSync(target).isDirectory();
  const dir = isDir ? target : path.dirname(target);
  const metricsFile = isDir ? path.join(target, 'metrics.jsonl') : target;
  if (!fs.existsSync(metricsFile)) throw new RunRecordError(`${metricsFile} does not exist (give a metrics.jsonl or a folder written by deepvision train)`);
  return { name: path.basename(path.resolve(dir)), dir, metricsFile };
}
