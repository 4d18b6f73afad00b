import type { Normalization } from '../data/dataset';
import type { RunFolder } from './run-folder';
import { summarizeRun, writeRunSummary } from './run-summary';
import type { StopReason, TrainOptions, TrainResult } from './options';
import type { TrainingBatches } from './training-batches';
import type { TrainingSessions } from './training-sessions';
import type { TrainingState } from './training-state';

/** What a run ends with. */
export interface FinishedRun {
  sessions: TrainingSessions;
  batches: TrainingBatches;
  state: TrainingState;
  folder: RunFolder;
  stopped: StopReason;
  normalization: Normalization;
}

/**
 * Ends a run however it stopped: releases its sessions and batch workers, lets `o.beforeSummary` write the files of
 * a finished run, then writes summary.json.
 */
export async function finishRun(o: TrainOptions, run: FinishedRun): Promise<TrainResult> {
  const { sessions, batches, state, folder } = run;
  await Promise.all([sessions.release(), batches.close()]);
  const result: TrainResult = {
    history: state.history, best: state.best, stopped: run.stopped, lastCheckpoint: folder.lastCheckpoint, bestCheckpoint: folder.bestCheckpoint,
    normalization: run.normalization, confusion: state.confusion, tensors: state.tensors,
  };
  await o.beforeSummary?.(result);
  // Last, once checkpoints, metrics and artifacts are on disk: the sweep counts a run whose summary is not
  // 'interrupted' as done.
  writeRunSummary(o.outDir, summarizeRun(o, result));
  return result;
}
