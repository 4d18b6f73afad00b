import * as ort from 'onnxruntime-node';
import { TrainingError } from './training-error';

/**
 * Refuses a pretrained model (an OnnxModule backbone) that onnxruntime cannot load, with onnxruntime's own
 * complaint, before training starts. deepvision reads the file with its own importer, which takes some malformed
 * files (a QuantizeLinear's zero point of the wrong type, say) that onnxruntime refuses; trained on anyway, such a
 * backbone gave a NaN loss that the trainer blamed on the learning rate.
 */
export async function checkImportedModels(files: readonly string[]): Promise<void> {
  for (const file of files) {
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(file, { graphOptimizationLevel: 'basic', intraOpNumThreads: 1 });
    } catch (err) {
      const complaint = (err instanceof Error ? err.message : String(err)).split('\n')[0]!.trim();
      throw new TrainingError(`onnxruntime cannot load the backbone ${file}, so deepvision will not train on it: ${complaint}`);
    }
    await session.release();
  }
}
