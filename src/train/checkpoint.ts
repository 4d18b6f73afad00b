import * as ort from 'onnxruntime-node';
import { NamedTensor, readSafetensors, writeSafetensors } from '../io/safetensors';
import type { RngState } from '../util/rng';

/** Where training stands: enough to continue exactly where it stopped. */
export interface TrainingPosition {
  /** Epoch in progress (0-based) and the next batch of it. */
  epoch: number;
  batch: number;
  /** Updates done so far. */
  step: number;
  /** The shuffling generator's state at the start of `epoch`. */
  epochRng: RngState;
  /** Sum and count of the training loss over the batches of `epoch` done so far (to resume its average). */
  epochLoss?: { sum: number; count: number };
}

export interface CheckpointContents {
  position: TrainingPosition;
  /** Parameters and buffers by name; optimizer slots as `optimizer.<param>.<slot>`. */
  tensors: Map<string, ort.Tensor>;
  metadata: Record<string, string>;
}

/**
 * Writes a checkpoint as safetensors (atomically: an interrupted write leaves the previous file intact), with the
 * training position and run description in its metadata.
 */
export async function saveCheckpoint(file: string, contents: CheckpointContents): Promise<void> {
  const tensors = new Map<string, NamedTensor>();
  for (const [name, t] of contents.tensors) {
    const data = (await t.getData()) as Float32Array;
    tensors.set(name, { dtype: 'float32', shape: [...t.dims], data });
  }
  writeSafetensors(file, tensors, {
    ...contents.metadata,
    'deepvision.epoch': String(contents.position.epoch),
    'deepvision.batch': String(contents.position.batch),
    'deepvision.step': String(contents.position.step),
    'deepvision.rng': JSON.stringify(contents.position.epochRng),
    ...(contents.position.epochLoss ? { 'deepvision.epoch_loss': JSON.stringify(contents.position.epochLoss) } : {}),
  });
}

export function loadCheckpoint(file: string): CheckpointContents {
  const { tensors, metadata } = readSafetensors(file);
  const number = (key: string) => {
    const v = Number(metadata[key]);
    if (!Number.isInteger(v) || v < 0) throw new Error(`${file}: checkpoint metadata '${key}' is missing or invalid`);
    return v;
  };
  const out = new Map<string, ort.Tensor>();
  for (const [name, t] of tensors) out.set(name, new ort.Tensor(t.dtype, t.data as Float32Array, [...t.shape]));
  let rng: RngState;
  try {
    rng = JSON.parse(metadata['deepvision.rng'] ?? '') as RngState;
  } catch {
    throw new Error(`${file}: checkpoint metadata 'deepvision.rng' is missing or invalid`);
  }
  const epochLoss = metadata['deepvision.epoch_loss'] ? (JSON.parse(metadata['deepvision.epoch_loss']) as { sum: number; count: number }) : undefined;
  return {
    position: { epoch: number('deepvision.epoch'), batch: number('deepvision.batch'), step: number('deepvision.step'), epochRng: rng, epochLoss },
    tensors: out,
    metadata,
  };
}
