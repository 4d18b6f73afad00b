import * as path from 'node:path';
import { exportCaptioner } from '../export-captioner';
import type { ExportTask } from './task';

/** A captioner exports as encoder.onnx and step.onnx with a captioner's card (vocabulary, search). */
export const CAPTIONING_EXPORT: ExportTask = {
  reads: ['best.safetensors', 'encoder_model.onnx', 'step_model.onnx'],
  writes: ['encoder.onnx', 'step.onnx', 'model.json'],
  async exportRun(runDir, outDir, o) {
    const r = await exportCaptioner(runDir, outDir, { fp16: o.fp16, beam: o.beam, lengthPenalty: o.lengthPenalty, definition: o.definition });
    const c = r.card;
    return [
      `Exported captioner ${c.name}: ${c.parameters.toLocaleString('en-US')} parameters, ${(c.bytes / 1e6).toFixed(2)} MB (${c.precision}), ${c.vocabulary.tokens.length} tokens, captions of up to ${c.generation.maxLength} words, input [${c.input.shape}], beam ${c.generation.beam}`,
      `  folded ${r.foldedBatchNorms} batch normalizations into convolutions; ${r.removedNodes} nodes fewer than the run's encoder and step models`,
      `  checked against the run's models: max |difference| ${r.maxDifference.toExponential(2)}`,
      `  ${[r.encoderFile, r.stepFile, r.cardFile].map((file) => path.relative(process.cwd(), file)).join(', ')}`,
    ];
  },
};
