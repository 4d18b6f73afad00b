import type { Command } from 'commander';
import type { CheckpointContents } from '../../checkpoint/checkpoint';
import type { EpochMetrics } from '../../metrics/epoch-metrics';
import type { ModelDefinition } from '../../model/definition';
import type { DataLoad, TrainingData } from '../train/load-training-data';
import type { TrainFlags } from '../train/train-flags';

/**
 * What the commands ask of a task (classification.ts, captioning.ts; the table is index.ts): `train`'s defaults,
 * data and the lines describing it and each epoch, and `eval` of a checkpoint. What the trainer and the export ask is in
 * train/tasks/ and export/tasks/.
 */
export interface CliTask {
  /** Sets the task's own defaults on `train` for the options the user left out (below the command line and --config). */
  applyTrainDefaults(command: Command, data: string): void;
  /** Loads what --data names for this task (`request`: what the flags ask of any data set). */
  loadTrainingData(source: string, request: DataLoad, f: TrainFlags): Promise<TrainingData>;
  /** The line printed after each epoch (its validation metrics as the task measures them). */
  formatEpoch(m: EpochMetrics): string;
  /** The line that says what the run trains on. */
  describeTrainingData(modelName: string, source: string, data: TrainingData): string;
  /** `deepvision eval` of a checkpoint of this task: what it prints. */
  evaluateCheckpoint(file: string, checkpoint: CheckpointContents, definition: ModelDefinition, f: EvalFlags): Promise<string>;
}

/** The options of `deepvision eval` as commander hands them over. */
export interface EvalFlags {
  graph?: string;
  data?: string;
  valSize?: number;
  valFraction?: number;
  seed?: number;
  split: 'val' | 'test';
  beam: number;
  gallery?: string;
  gallerySize: number;
  tta: 'none' | 'hflip';
}
