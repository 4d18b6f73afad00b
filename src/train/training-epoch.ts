import * as fs from 'node:fs';
import * as ort from 'onnxruntime-node';
import type { Batch } from '../data/batch-pipeline';
import { DROPOUT_NOISE } from '../dsl/functional';
import type { TrainingGraph } from '../model/training-graph';
import { learningRateAt } from '../optim/schedule';
import { outputOf } from '../portable/session-output';
import { Rng, RngState } from '../util/rng';
import { Average } from './metrics';
import type { RunFolder } from './run-folder';
import type { DataOptions, EventOptions, OptimizationOptions, RunOptions } from './options';
import type { TrainingRows } from './tasks/task';
import type { TrainingBatches } from './training-batches';
import { TrainingError } from './training-error';
import type { TrainingSessions } from './training-sessions';
import type { TrainingState } from './training-state';

/** The trainer options this part reads. */
type Options = DataOptions & EventOptions & OptimizationOptions & RunOptions;

/**
 * On WebGPU, how many updates pass between reads of the loss (each read waits for the GPU to drain): the NaN guard
 * stops at most this many updates after the loss goes bad, and the progress bar's loss moves in steps of it.
 */
const LOSS_READ_INTERVAL = 10;

/** The learning rate of update `step` (1-based) under the run's schedule and warm-up. */
export function learningRateAtStep(o: Options, step: number): number {
  return learningRateAt(o.learningRate, step, o.schedule ?? { kind: 'constant' }, { warmupSteps: o.warmupSteps });
}

/** What an epoch's training ends with: stopped on request or at the step limit (a checkpoint written), or done. */
export type EpochOutcome =
  | { stopped: 'interrupted' | 'max-steps' }
  | { stopped: undefined; trainLoss: number; seconds: number; images: number; nextEpochRng: RngState };

/** What the epochs of a run train with. */
export interface EpochParts {
  graph: TrainingGraph;
  /** What the epoch shuffles and batches (the model's task's rows), and their targets. */
  rows: TrainingRows;
  seed: number;
  sessions: TrainingSessions;
  state: TrainingState;
  folder: RunFolder;
  batches: TrainingBatches;
}

/**
 * The batch loop of a training epoch: seeded shuffling, feeds with dropout noise, one update per batch, the NaN
 * guard, and a stop with a checkpoint on request or at the step limit. Resumes mid-epoch from the state's position.
 */
export class EpochTrainer {
  private readonly rowCount: number;
  private readonly batchesPerEpoch: number;
  private readonly noiseInputs: TrainingGraph['model']['graph']['inputs'];

  constructor(private readonly o: Options, private readonly parts: EpochParts) {
    this.rowCount = parts.rows.count;
    this.batchesPerEpoch = Math.ceil(this.rowCount / o.batchSize);
    this.noiseInputs = parts.graph.model.graph.inputs.filter((v) => v.name.startsWith(DROPOUT_NOISE));
  }

  /** Trains epoch `epoch` (0-based) from the state's position on. */
  async train(epoch: number): Promise<EpochOutcome> {
    const { o } = this;
    const { sessions, state, folder, batches } = this.parts;
    const { lossSum } = sessions;
    const rng = new Rng(state.position.epochRng);
    const order = rng.shuffle([...Array(this.rowCount).keys()]);
    const nextEpochRng = rng.getState();
    const started = performance.now();
    const trainLoss = new Average(state.position.epochLoss?.sum, state.position.epochLoss?.count);
    /** Stops on a loss that is not finite, naming where it happened; checkpoints already written stay as they are. */
    const guard = (loss: number, where: string, step: number) => {
      if (Number.isFinite(loss)) return;
      throw new TrainingError(`the loss became ${loss} at epoch ${epoch + 1}, ${where} (learning rate ${learningRateAtStep(o, step)}); training stopped. `
        + `Checkpoints already written are untouched (${fs.existsSync(folder.lastCheckpoint) ? folder.lastCheckpoint : 'none yet'}). Try a lower learning rate or --clip-grad-norm.`);
    };
    /** Brings the losses summed on the GPU into the epoch's mean (a no-op on the CPU, which reads each one). */
    const readLosses = async (lastBatch: number) => {
      if (lossSum === undefined || lossSum.updates === 0) return;
      const first = lastBatch - lossSum.updates + 2;
      const { sum, count } = await lossSum.read();
      guard(sum, first === lastBatch + 1 ? `batch ${first}` : `batches ${first}-${lastBatch + 1}`, state.position.step);
      trainLoss.add(sum / count, count);
    };
    let seen = 0;
    const assembledBatches = batches.epoch(this.parts.rows.images(order), epoch, state.position.batch);
    for (let batch = state.position.batch; batch < this.batchesPerEpoch; batch++) {
      const assembled = (await assembledBatches.next()).value!;
      if (o.shouldStop?.()) {
        await readLosses(batch - 1);
        state.position = { ...state.position, epoch, batch, epochLoss: trainLoss.totals };
        await folder.saveLast();
        return { stopped: 'interrupted' };
      }
      const n = assembled.count;
      const out = await sessions.step.gradients(state.tensors, this.feeds(assembled, order, batch));
      const step = state.position.step + 1;
      const batchLoss = outputOf(out, 'loss', 'the training graph');
      if (lossSum === undefined) {
        const loss = (batchLoss.data as Float32Array)[0]!;
        guard(loss, `batch ${batch + 1}`, step);
        trainLoss.add(loss, n);
      } else {
        await lossSum.add(batchLoss, n);
        batchLoss.dispose();
      }
      await sessions.step.update(state.tensors, out, learningRateAtStep(o, step), step);
      state.position = { ...state.position, step, batch: batch + 1 };
      if (lossSum !== undefined && (lossSum.updates >= LOSS_READ_INTERVAL || batch + 1 === this.batchesPerEpoch)) await readLosses(batch);
      seen += n;
      o.onBatch?.({ epoch, batch, batches: this.batchesPerEpoch, loss: trainLoss.value, imagesPerSecond: seen / ((performance.now() - started) / 1000) });
      if (o.maxSteps !== undefined && step >= o.maxSteps) {
        await readLosses(batch);
        state.position = { ...state.position, epoch, batch: batch + 1, epochLoss: trainLoss.totals };
        await folder.saveLast();
        return { stopped: 'max-steps' };
      }
    }
    const seconds = (performance.now() - started) / 1000;
    return { stopped: undefined, trainLoss: trainLoss.value, seconds, images: seen, nextEpochRng };
  }

  /** The data inputs of the next update: batch `batch` of `order`, its targets (labels, caption rows), and dropout noise. */
  private feeds(assembled: Batch, order: readonly number[], batch: number): Record<string, ort.Tensor> {
    const { o } = this;
    const { seed, sessions, state, batches, rows } = this.parts;
    const n = assembled.count;
    const feeds: Record<string, ort.Tensor> = {
      [batches.inputName]: new ort.Tensor('float32', assembled.input, [n, ...batches.inputDims]),
      ...rows.targets(assembled, order.slice(batch * o.batchSize, batch * o.batchSize + n)),
    };
    for (const v of this.noiseInputs) {
      if (!sessions.trainInputs.has(v.name)) continue;
      // Dropout noise from a stream named after the update number: a resumed run draws the same masks.
      const rngNoise = Rng.derive(seed, `dropout/${state.position.step + 1}/${v.name}`);
      const dims = v.shape!.map((d, i) => (i === 0 ? n : Number(d)));
      feeds[v.name] = new ort.Tensor('float32', Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rngNoise.next()), dims);
    }
    return feeds;
  }
}
