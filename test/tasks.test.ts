/**
 * The task seam: each task is a row of the tables the trainer, export and CLI look it up in (model/task-kind.ts,
 * train/tasks/, export/tasks/, cli/tasks/), chosen by the model definition's task or the one a file records.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import captioner from '../graphs/captioner';
import mlp from '../graphs/mlp';
import { EXPORT_TASKS, runTask } from '../src/export/tasks';
import { definitionTask, recordedTask } from '../src/model/task-kind';
import { generateShapes } from '../src/data/shapes';
import type { CaptionData } from '../src/data/captions/load-captions';
import { train } from '../src/train/trainer';
import { trainingTask } from '../src/train/tasks';

test('a definition names its task; a file that records none (or an unknown one) is a classifier\'s', () => {
  expect(definitionTask(mlp)).toBe('classification');
  expect(definitionTask(captioner)).toBe('captioning');
  expect(trainingTask({ definition: captioner }).kind).toBe('captioning');
  expect([recordedTask(undefined), recordedTask('captioning'), recordedTask('segmentation'), recordedTask(7)]).toEqual(['classification', 'captioning', 'classification', 'classification']);
});

test('a run folder without a best checkpoint exports as a classifier, which says what is missing', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-tasks-'));
  try {
    expect(runTask(dir)).toBe('classification');
    // The export command refuses an --out among the files any task's export reads.
    expect(new Set(Object.values(EXPORT_TASKS).flatMap((t) => t.writes))).toEqual(new Set(['model.onnx', 'model.json', 'encoder.onnx', 'step.onnx']));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a classifier given caption data, and a captioner given none, are refused in one line', async () => {
  const [trainSet, val] = [generateShapes({ count: 16, imageSize: 16, seed: 0 }), generateShapes({ count: 8, imageSize: 16, seed: 1 })];
  const common = { train: trainSet, val, epochs: 1, batchSize: 8, optimizer: { kind: 'sgd' as const }, learningRate: 0.01, outDir: path.join(os.tmpdir(), 'deepvision-tasks-never-written') };
  await expect(train({ ...common, definition: mlp, captions: {} as CaptionData })).rejects.toThrow(/^model 'mlp' is a classifier: caption data trains captioners/);
  await expect(train({ ...common, definition: captioner })).rejects.toThrow(/^model 'captioner' is a captioner: train it on caption data/);
  expect(fs.existsSync(common.outDir)).toBe(false);
});
