import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../util/atomic-write';
import { readRegularText } from '../util/regular-file';
import { MAX_CARD_BYTES } from '../portable/model-card';
import { recordedTask, TaskKind } from '../model/task-kind';

export interface ModelIndexEntry {
  /** Folder name under the models folder. */
  id: string;
  name: string;
  dataset: string;
  top1?: number;
  /** The model's task (a captioner's 'captioning': the page captions with it); absent for a classifier, as in older indexes. */
  task?: Exclude<TaskKind, 'classification'>;
}

/**
 * The models in a folder: every sub-folder with a readable model.json, sorted by name. Hidden folders (an export
 * being staged) are skipped; a folder that cannot be listed has no models.
 */
export function listModels(modelsDir: string): ModelIndexEntry[] {
  let ids: string[];
  try {
    ids = fs.readdirSync(modelsDir);
  } catch {
    return [];
  }
  const entries: ModelIndexEntry[] = [];
  for (const id of ids.sort()) {
    if (id.startsWith('.')) continue;
    const cardFile = path.join(modelsDir, id, 'model.json');
    if (!fs.existsSync(cardFile)) continue;
    try {
      const card = JSON.parse(readRegularText(cardFile, { what: 'model card', maxBytes: MAX_CARD_BYTES })) as { name?: string; task?: unknown; training?: { dataset?: string; validation?: { top1?: number } } };
      const task = recordedTask(card.task);
      entries.push({
        id, name: card.name ?? id, dataset: card.training?.dataset ?? 'unknown',
        ...(card.training?.validation?.top1 !== undefined ? { top1: card.training.validation.top1 } : {}),
        ...(task !== 'classification' ? { task } : {}),
      });
    } catch {
      // An unreadable card is skipped here; the page reports it when that model is opened.
    }
  }
  return entries;
}

/** Rewrites index.json of a models folder (what the web demo lists in its model picker). */
export function updateModelIndex(modelsDir: string, write: (file: string, data: string) => void = writeFileAtomic): void {
  write(path.join(modelsDir, 'index.json'), `${JSON.stringify({ models: listModels(modelsDir) }, null, 2)}\n`);
}
