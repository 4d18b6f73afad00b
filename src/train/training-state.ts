import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { slotNames } from '../optim/config';
import { Rng, RngState } from '../util/rng';
import { checkpointBest, checkpointConfusion, checkTensorsMatch, loadCheckpoint, TrainingPosition } from '../checkpoint/checkpoint';
import type { ModelForData } from './model-for-data';
import { checkResumeSettings } from './resume-settings';
import type { EpochMetrics } from '../metrics/epoch-metrics';
import type { DataOptions, ModelOptions, OptimizationOptions } from './options';
import { TrainingError } from './training-error';

/** The trainer options this part reads. */
type Options = DataOptions & ModelOptions & OptimizationOptions;

/**
 * What training changes and checkpoints record: the tensors, where training stands, the best epoch and the epochs
 * trained, fresh or resumed from a checkpoint.
 */
export class TrainingState {
  /** Epochs trained by this call (a resumed run's earlier epochs are in `epochsSoFar` only). */
  readonly history: EpochMetrics[] = [];
  private bestSoFar: EpochMetrics | undefined;
  private bestConfusion: number[][] | undefined;
  /** Epochs since the best one (this call's; a resumed run counts afresh). */
  private sinceBestEpoch = 0;

  private constructor(
    /** All state that training changes, by name: parameters, buffers, optimizer slots. */
    readonly tensors: Map<string, ort.Tensor>,
    public position: TrainingPosition,
    best: EpochMetrics | undefined,
    confusion: number[][] | undefined,
    /** Every epoch the tensors have trained: those a resumed checkpoint records, then this call's. */
    readonly epochsSoFar: EpochMetrics[],
  ) {
    this.bestSoFar = best;
    this.bestConfusion = confusion;
  }

  /** The initial parameters and zero optimizer slots, or with `o.resume`, all of it as that checkpoint left it. */
  static start(o: Options, model: ModelForData, seed: number): TrainingState {
    const tensors = new Map<string, ort.Tensor>();
    for (const [name, value] of model.graph.values) tensors.set(name, new ort.Tensor('float32', Float32Array.from(value.typed() as Float32Array), [...value.dims]));
    for (const p of model.paramSpecs) for (const slot of slotNames(o.optimizer)) tensors.set(`optimizer.${p.name}.${slot}`, new ort.Tensor('float32', new Float32Array(p.shape.reduce((a, b) => a * b, 1)), [...p.shape]));
    const position: TrainingPosition = { epoch: 0, batch: 0, step: 0, epochRng: new Rng(`train/${seed}`).getState() };
    if (o.resume === undefined) return new TrainingState(tensors, position, undefined, undefined, []);
    const loaded = loadCheckpoint(o.resume);
    checkResumeSettings(o.resume, loaded.metadata, o, seed, model);
    checkTensorsMatch(o.resume, loaded.tensors, new Map([...tensors].map(([name, t]) => [name, t.dims])), 'this model and optimizer');
    for (const name of tensors.keys()) tensors.set(name, loaded.tensors.get(name)!);
    return new TrainingState(
      tensors, loaded.position, checkpointBest(loaded.metadata, o.resume), checkpointConfusion(loaded.metadata, o.resume),
      historyOf(o.resume, loaded.metadata, loaded.position.epoch),
    );
  }

  /** The epoch with the lowest validation loss so far. */
  get best(): EpochMetrics | undefined {
    return this.bestSoFar;
  }

  /** Validation confusion matrix of the best epoch (classifiers): confusion[true][predicted] counts. */
  get confusion(): number[][] | undefined {
    return this.bestConfusion;
  }

  get sinceBest(): number {
    return this.sinceBestEpoch;
  }

  /** Forgets a resumed best epoch whose checkpoint is gone: the best is tracked afresh from here. */
  forgetBest(): void {
    this.bestSoFar = undefined;
    this.bestConfusion = undefined;
  }

  /**
   * Records a finished epoch (`metrics.epoch` is its 1-based number) with its validation confusion matrix, and moves
   * to the start of the next epoch, whose shuffling continues from `nextEpochRng`. Returns whether it is the best.
   */
  endEpoch(metrics: EpochMetrics, confusion: number[][] | undefined, nextEpochRng: RngState): boolean {
    this.history.push(metrics);
    this.epochsSoFar.push(metrics);
    const improved = this.bestSoFar === undefined || metrics.valLoss < this.bestSoFar.valLoss;
    if (improved) {
      this.bestSoFar = metrics;
      this.bestConfusion = confusion;
      this.sinceBestEpoch = 0;
    } else this.sinceBestEpoch++;
    this.position = { epoch: metrics.epoch, batch: 0, step: this.position.step, epochRng: nextEpochRng };
    return improved;
  }
}

/**
 * The epochs a checkpoint has trained: recorded in it (deepvision.history), or for checkpoints written before that
 * key, the metrics.jsonl beside it up to the checkpoint's epoch (the last line per epoch wins).
 */
function historyOf(checkpoint: string, metadata: Record<string, string>, epochs: number): EpochMetrics[] {
  const recorded = metadata['deepvision.history'];
  if (recorded !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(recorded);
    } catch {
      parsed = undefined;
    }
    if (!Array.isArray(parsed) || !parsed.every((m) => typeof m === 'object' && m !== null && Number.isInteger((m as EpochMetrics).epoch))) {
      throw new TrainingError(`${checkpoint}: checkpoint metadata 'deepvision.history' is invalid`);
    }
    return (parsed as EpochMetrics[]).filter((m) => m.epoch <= epochs);
  }
  const byEpoch = new Map<number, EpochMetrics>();
  try {
    for (const line of fs.readFileSync(path.join(path.dirname(checkpoint), 'metrics.jsonl'), 'utf8').split('\n')) {
      try {
        const m = JSON.parse(line) as EpochMetrics;
        if (Number.isInteger(m.epoch) && m.epoch <= epochs) byEpoch.set(m.epoch, m);
      } catch {
        // A torn or foreign line: the checkpoint is what counts.
      }
    }
  } catch {
    // No log beside the checkpoint: the history starts here.
  }
  return [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch);
}
