import * as path from 'node:path';
import { describeOptimizer } from '../optim/config';
import type { ModelForData } from './model-for-data';
import { resumeSettingsMetadata } from './resume-settings';
import type { DataOptions, ModelOptions, OptimizationOptions } from './options';
import type { TrainingState } from './training-state';

/** The trainer options this part reads. */
type Options = DataOptions & ModelOptions & OptimizationOptions;

/**
 * The metadata of a run's checkpoints: what `deepvision eval`, export and a resume need to rebuild the model and
 * find its data, what its task records (classes, vocabulary), the settings a resume must keep (resume-settings.ts), and the run so far (best epoch, its
 * confusion matrix, every epoch trained).
 */
export function checkpointMetadata(
  o: Options, model: ModelForData, seed: number, state: Pick<TrainingState, 'best' | 'confusion' | 'epochsSoFar'>,
): Record<string, string> {
  return {
    'deepvision.model': o.definition.name,
    ...(o.variant ? { 'deepvision.variant': o.variant } : {}),
    'deepvision.config': JSON.stringify(model.graph.config),
    'deepvision.seed': String(seed),
    'deepvision.optimizer': JSON.stringify(o.optimizer),
    'deepvision.optimizer_description': describeOptimizer(o.optimizer),
    ...(o.learningRates !== undefined ? { 'deepvision.learning_rates': JSON.stringify(o.learningRates) } : {}),
    'deepvision.data': o.data?.source ?? o.train.name,
    ...(o.data?.valFraction !== undefined ? { 'deepvision.val_fraction': String(o.data.valFraction) } : {}),
    ...(o.graphFile ? { 'deepvision.graph_file': path.resolve(o.graphFile) } : {}),
    'deepvision.image_size': String(o.train.height),
    ...model.task.checkpointMetadata(o),
    'deepvision.normalization': JSON.stringify(model.normalization),
    ...(state.best ? { 'deepvision.best': JSON.stringify(state.best) } : {}),
    ...(state.confusion ? { 'deepvision.best_confusion': JSON.stringify(state.confusion) } : {}),
    'deepvision.history': JSON.stringify(state.epochsSoFar),
    ...resumeSettingsMetadata(o, seed, model),
  };
}
