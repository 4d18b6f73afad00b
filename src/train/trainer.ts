import type { EpochMetrics } from '../metrics/epoch-metrics';
import type { StopReason, TrainOptions, TrainResult } from './options';
import { EpochEvaluation } from './evaluation';
import { finishRun } from './finish-run';
import { frozenFeaturesFor } from './frozen-backbone';
import { checkImportedModels } from './imported-models';
import { modelForData } from './model-for-data';
import { RunFolder } from './run-folder';
import { trainingBatches } from './training-batches';
import { EpochTrainer, learningRateAtStep } from './training-epoch';
import { sessionOptionsFor, TrainingSessions } from './training-sessions';
import { TrainingState } from './training-state';

export { evaluate } from './classifier-evaluation';
export { TrainingError } from './training-error';
export type { EpochMetrics } from '../metrics/epoch-metrics';
export type { TrainOptions, TrainResult } from './options';

/**
 * Trains a model for its task (train/tasks/) with the generated training graph and optimizer graph in onnxruntime-node: seeded
 * shuffling, validation every epoch (loss, top-1, top-5), best and last checkpoints, early stopping, exact resume,
 * a NaN guard and a clean stop on request. Metrics are appended to `<outDir>/metrics.jsonl`; when the run ends
 * (finished, stopped early or on request) `<outDir>/summary.json` records it (see RunSummary).
 */
export async function train(o: TrainOptions): Promise<TrainResult> {
  const seed = o.seed ?? 0;
  const model = modelForData(o, seed);
  await checkImportedModels(model.graph.importedModels);
  const sessionOptions = sessionOptionsFor(o);
  // A frozen backbone runs once per image: training and evaluation then run the rest on its cached features.
  const frozen = await frozenFeaturesFor(o, model.graph, model.evalModel, model.normalization, sessionOptions);
  const sessions = await TrainingSessions.create(o, model, frozen, sessionOptions);
  const state = TrainingState.start(o, model, seed);
  const folder = RunFolder.open(o, { model, seed, state, sessions });
  const batches = trainingBatches(o, model.normalization, seed, frozen);
  const epochs = new EpochTrainer(o, { graph: model.graph, rows: model.task.rows(o), seed, sessions, state, folder, batches });
  const evaluation = new EpochEvaluation(o, { model, seed, sessions, frozen });

  let stopped: StopReason = 'completed';
  for (let epoch = state.position.epoch; epoch < o.epochs; epoch++) {
    const trained = await epochs.train(epoch);
    if (trained.stopped !== undefined) {
      stopped = trained.stopped;
      break;
    }
    const val = await evaluation.validation(state.tensors);
    const onTrain = await evaluation.onTrainSample(state.tensors);
    const metrics: EpochMetrics = {
      epoch: epoch + 1, step: state.position.step, learningRate: learningRateAtStep(o, Math.max(1, state.position.step)),
      trainLoss: trained.trainLoss, valLoss: val.loss, valTop1: val.top1, valTop5: val.top5, seconds: trained.seconds, imagesPerSecond: trained.images / trained.seconds,
      ...(onTrain ? { trainEvalLoss: onTrain.loss, trainTop1: onTrain.top1 } : {}),
      ...val.extra,
    };
    const improved = state.endEpoch(metrics, val.confusion, trained.nextEpochRng);
    if (improved) await folder.saveBest();
    await folder.saveLast();
    // After the checkpoint: a kill before this line leaves a log one epoch short, which the resume rewrites.
    folder.writeMetrics();
    o.onEpoch?.(metrics);
    if (o.patience !== undefined && state.sinceBest >= o.patience && epoch + 1 < o.epochs) {
      stopped = 'early-stopping';
      break;
    }
  }
  return finishRun(o, { sessions, batches, state, folder, stopped, normalization: model.normalization, task: model.task });
}
