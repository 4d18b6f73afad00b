import { writeTrainingArtifacts } from '../artifacts/write-artifacts';
import { checkpointConfig, loadCheckpoint } from '../checkpoint/checkpoint';
import type { DataOptions, ModelOptions, OptimizationOptions, RunOptions, TrainResult } from './options';
import type { Task } from './tasks/task';

/** The trainer options this part reads. */
type Options = DataOptions & ModelOptions & OptimizationOptions & RunOptions;

/**
 * Writes a finished run's artifacts into `o.outDir` and returns their file names; an interrupted run, or one without
 * a best epoch, gets none. Called before summary.json is written, so the files are on disk before it marks the run done.
 */
export function writeRunArtifacts(o: Options, r: TrainResult, task: Task): string[] {
  if (!r.best || r.stopped === 'interrupted') return [];
  // The run's artifacts, with the best parameters: what `deepvision export` and other runtimes start from.
  const best = loadCheckpoint(r.bestCheckpoint);
  const config = checkpointConfig(best.metadata, r.bestCheckpoint);
  const values = new Map<string, Float32Array>();
  for (const [name, t] of best.tensors) values.set(name, t.data as Float32Array);
  writeTrainingArtifacts(o.definition, o.outDir, {
    variant: o.variant, config, seed: o.seed ?? 0, optimizer: o.optimizer, values, metadata: best.metadata,
  });
  const written = ['training_model.onnx', 'eval_model.onnx', 'optimizer_model.onnx', 'inference_model.onnx', 'checkpoint.safetensors'];
  // What the task adds: a captioner's generation graphs.
  return [...written, ...task.extraArtifacts(o, o.outDir, { tensors: best.tensors, config })];
}
