import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeWriteFailure, removeStaleTempFiles, writeFileAtomic } from '../util/atomic-write';
import { checkpointMetadata } from './checkpoint-metadata';
import { CheckpointContents, saveCheckpoint } from '../checkpoint/checkpoint';
import type { ModelForData } from './model-for-data';
import type { DataOptions, ModelOptions, OptimizationOptions, RunOptions } from './options';
import { TrainingError } from './training-error';
import type { TrainingSessions } from './training-sessions';
import type { TrainingState } from './training-state';

/** The trainer options this part reads. */
type Options = DataOptions & ModelOptions & OptimizationOptions & RunOptions;

/** What a run's output folder is written from. */
export interface RunFolderSources {
  model: ModelForData;
  seed: number;
  state: TrainingState;
  /** Brings GPU-resident state to the host before a checkpoint is written. */
  sessions: Pick<TrainingSessions, 'onHost'>;
}

/** A run's output folder: its last and best checkpoints and metrics.jsonl, written from the training state. */
export class RunFolder {
  readonly lastCheckpoint: string;
  readonly bestCheckpoint: string;
  private readonly metricsFile: string;

  private constructor(private readonly o: Options, private readonly sources: RunFolderSources) {
    this.lastCheckpoint = path.join(o.outDir, 'last.safetensors');
    this.bestCheckpoint = path.join(o.outDir, 'best.safetensors');
    this.metricsFile = path.join(o.outDir, 'metrics.jsonl');
  }

  /**
   * Prepares `o.outDir` for the run that continues `sources.state`: its metrics log rewritten to match, and on a
   * resume the best checkpoint so far carried over (or, without one, the state's best forgotten).
   */
  static open(o: Options, sources: RunFolderSources): RunFolder {
    const folder = new RunFolder(o, sources);
    prepareOutputFolder(o.outDir);
    // The metrics log always agrees with the checkpoint training continues from: it is rewritten from the epochs the
    // checkpoint records (none for a fresh run), so a run killed between a checkpoint and its log line, or resumed
    // from an earlier checkpoint, never shows an epoch twice or one the parameters do not contain.
    folder.writeMetrics();
    const { state } = sources;
    if (o.resume !== undefined && state.best !== undefined && !carryBestCheckpoint(o.resume, folder.bestCheckpoint)) state.forgetBest();
    return folder;
  }

  /** Rewrites metrics.jsonl: one line per epoch the state has trained. */
  writeMetrics(): void {
    writeFileAtomic(this.metricsFile, this.sources.state.epochsSoFar.map((m) => `${JSON.stringify(m)}\n`).join(''));
  }

  /** Saves the state at its position as last.safetensors. */
  saveLast(): Promise<void> {
    return this.save(this.lastCheckpoint);
  }

  /** Saves the state at its position as best.safetensors. */
  saveBest(): Promise<void> {
    return this.save(this.bestCheckpoint);
  }

  private async save(file: string): Promise<void> {
    const { model, seed, state, sessions } = this.sources;
    const contents: CheckpointContents = { position: state.position, tensors: await sessions.onHost(state.tensors), metadata: checkpointMetadata(this.o, model, seed, state) };
    await saveCheckpoint(file, contents);
  }
}

/** Refuses an output folder that is a file; removes temporary files a killed run left there. */
function prepareOutputFolder(dir: string): void {
  if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) throw new TrainingError(`--out ${dir} is a file, not a folder`);
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new TrainingError(describeWriteFailure(err, dir));
  }
  removeStaleTempFiles(dir);
}

/**
 * On a resume into another folder, the best checkpoint so far lives beside the resumed one: copy it, so that the
 * new folder is complete (its best.safetensors is what artifacts and export read). Without it the best is tracked
 * afresh from the resumed epoch on. Returns whether there was one.
 */
function carryBestCheckpoint(resume: string, bestCheckpoint: string): boolean {
  const source = path.join(path.dirname(resume), 'best.safetensors');
  if (!fs.existsSync(source)) return false;
  if (!fs.existsSync(bestCheckpoint) || fs.realpathSync(source) !== fs.realpathSync(bestCheckpoint)) writeFileAtomic(bestCheckpoint, fs.readFileSync(source));
  return true;
}
