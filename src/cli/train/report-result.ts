import * as path from 'node:path';
import { SUMMARY_FILE } from '../../train/run-summary';
import type { TrainResult } from '../../train/options';
import { summaryTable } from './epoch-lines';

/** Prints how the run went and where its files are; an interrupted run sets exit code 130. */
export function reportResult(result: TrainResult, outDir: string, artifacts: string[]): void {
  console.log(summaryTable(result.history));
  if (result.best) console.log(`Best: epoch ${result.best.epoch}, validation top-1 ${(100 * result.best.valTop1).toFixed(2)} %, loss ${result.best.valLoss.toFixed(4)} -> ${result.bestCheckpoint}`);
  if (result.stopped === 'interrupted') {
    console.log(`Interrupted; resume with --resume ${result.lastCheckpoint}`);
    // As shells expect of a program stopped by Ctrl-C (128 + SIGINT), after the checkpoint is saved.
    process.exitCode = 130;
  }
  if (result.stopped === 'early-stopping') console.log('Stopped early: the validation loss stopped improving.');
  if (artifacts.length > 0) console.log(`Artifacts (best parameters): ${artifacts.map((n) => path.join(outDir, n)).join(', ')}`);
  console.log(`Metrics: ${path.join(outDir, 'metrics.jsonl')}, summary: ${path.join(outDir, SUMMARY_FILE)}`);
}
