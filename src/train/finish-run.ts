import type { Normalization } from '../data/dataset';
import { writeRunArtifacts } from './run-artifacts';
import type { RunFolder } from './run-folder';
import { summarizeRun, writeRunSummary } from './run-summary';
import type { DataOptions, ModelOptions, OptimizationOptions, RunOptions, StopReason, TrainResult } from './options';
import type { Task } from './tasks/task';
import type { TrainingBatches } from './training-batches';
import type { TrainingSessions } from './training-sessions';
import type { TrainingState } from './training-state';

/** The trainer options this part reads. */
type Options = DataOptions & ModelOptions & OptimizationOptions & RunOptions;

/** What a run ends with. */
export interface FinishedRun {
  sessions: TrainingSessions;
  batches: TrainingBatches;
  state: TrainingState;
  folder: RunFolder;
  stopped: StopReason;
  normalization: Normalization;
  task: Task;
}

/**
 * Ends a run however it stopped: releases its sessions and batch workers, writes a finished run's artifacts, lets
 * `o.beforeSummary` write its own files, then writes summary.json.
 */
export async function finishRun(o: Options, run: FinishedRun): Promise<TrainResult> {
  const { sessions, batches, state, folder } = run;
  await Promise.all([sessions.release(), batches.close()]);
  const result: TrainResult = {
    history: state.history, best: state.best, stopped: run.stopped, lastCheckpoint: folder.lastCheckpoint, bestCheckpoint: folder.bestCheckpoint,
    normalization: run.normalization, confusion: state.confusion, tensors: state.tensors, artifacts: [],
  };
  // The same run folder for every caller of train(), the CLI or a library user: artifacts first, then the caller's files.
  result.artifacts = writeRunArtifacts(o, result, run.task);
  await o.beforeSummary?.(result);
  // Last, once checkpoints, metrics and artifacts are on disk: the sweep counts a run whose summary is not
  // 'interrupted' as done.
  writeRunSummary(o.outDir, summarizeRun(o, result, run.task));
  return result;
}
