import * as path from 'node:path';
import { writeTrainingArtifacts } from '../artifacts/write-artifacts';
import type { CaptionData } from '../data/captions/load-captions';
import { TensorData } from '../ir/tensor';
import { buildEntryPoint } from '../model/build';
import type { ModelDefinition } from '../model/definition';
import { writeModelFile } from '../onnx/write';
import type { OptimizerConfig } from '../optim/config';
import { checkpointConfig, loadCheckpoint } from '../checkpoint/checkpoint';
import type { TrainResult } from './options';

export interface ArtifactSettings {
  variant: string | undefined;
  seed: number;
  optimizer: OptimizerConfig;
  /** Captioners only: they get generation graphs too. */
  captions: CaptionData | undefined;
}

/**
 * Writes a finished run's artifacts into `outDir` and returns their file names; an interrupted run, or one without
 * a best epoch, gets none. Called before summary.json is written, so the files are on disk before it marks the run done.
 */
export function writeRunArtifacts(definition: ModelDefinition, outDir: string, r: TrainResult, s: ArtifactSettings): string[] {
  if (!r.best || r.stopped === 'interrupted') return [];
  // The run's artifacts, with the best parameters: what `deepvision export` and other runtimes start from.
  const best = loadCheckpoint(r.bestCheckpoint);
  const values = new Map<string, Float32Array>();
  for (const [name, t] of best.tensors) values.set(name, t.data as Float32Array);
  writeTrainingArtifacts(definition, outDir, {
    variant: s.variant, config: checkpointConfig(best.metadata, r.bestCheckpoint), seed: s.seed, optimizer: s.optimizer,
    values, metadata: best.metadata,
  });
  const written = ['training_model.onnx', 'eval_model.onnx', 'optimizer_model.onnx', 'inference_model.onnx', 'checkpoint.safetensors'];
  if (s.captions !== undefined) {
    // A captioner's generation graphs, with the best parameters: what `caption` and the page run (no graph file needed).
    const trained = new Map<string, TensorData>();
    for (const [name, t] of best.tensors) if (!name.startsWith('optimizer.')) trained.set(name, TensorData.fromTyped('float32', [...t.dims], t.data as Float32Array));
    const build = { variant: s.variant, config: checkpointConfig(best.metadata, r.bestCheckpoint), values: trained };
    for (const entry of ['encoder', 'step']) writeModelFile(buildEntryPoint(definition, entry, build), path.join(outDir, `${entry}_model.onnx`));
    written.push('encoder_model.onnx', 'step_model.onnx');
  }
  return written;
}
