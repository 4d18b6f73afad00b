import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSafetensors } from '../../io/safetensors';
import { recordedTask, TaskKind } from '../../model/task-kind';
import { CAPTIONING_EXPORT } from './captioning';
import { CLASSIFICATION_EXPORT } from './classification';
import type { ExportTask } from './task';

/** How each task exports: a kind without a row does not compile. */
export const EXPORT_TASKS: Record<TaskKind, ExportTask> = {
  classification: CLASSIFICATION_EXPORT,
  captioning: CAPTIONING_EXPORT,
};

/**
 * The task of a training run folder: the one its best.safetensors records (a classifier's records none, and a
 * folder without one is read as a classifier's, whose export then says what is missing).
 */
export function runTask(runDir: string): TaskKind {
  const file = path.join(runDir, 'best.safetensors');
  if (!fs.existsSync(file)) return 'classification';
  return recordedTask(readSafetensors(file).metadata['deepvision.task']);
}
