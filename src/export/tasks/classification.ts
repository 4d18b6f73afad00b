import * as path from 'node:path';
import { exportModel } from '../export-model';
import type { ExportTask } from './task';

/** A classifier exports as model.onnx with a model card (labels, preprocessing, validation accuracy). */
export const CLASSIFICATION_EXPORT: ExportTask = {
  reads: ['inference_model.onnx', 'eval_model.onnx', 'checkpoint.safetensors'],
  writes: ['model.onnx', 'model.json'],
  async exportRun(runDir, outDir, o) {
    const r = await exportModel(runDir, outDir, { fp16: o.fp16 });
    const mb = (r.card.bytes / 1e6).toFixed(2);
    return [
      `Exported ${r.card.name}: ${r.card.parameters.toLocaleString('en-US')} parameters, ${mb} MB (${r.card.precision}), ${r.card.labels.length} classes, input [${r.card.input.shape}]`,
      `  folded ${r.foldedBatchNorms} batch normalizations into convolutions; ${r.removedNodes} nodes fewer than inference_model.onnx`,
      `  checked against the eval model: max |difference| ${r.maxDifference.toExponential(2)}, top-1 agrees on ${r.top1Agreement.agree}/${r.top1Agreement.total} inputs`,
      `  ${path.relative(process.cwd(), r.modelFile)}, ${path.relative(process.cwd(), r.cardFile)}`,
    ];
  },
};
