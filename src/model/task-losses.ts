import type { GraphBuilder, Tensor } from '../dsl/builder';
import { crossEntropy, maskedCrossEntropy } from '../dsl/losses';
import type { TaskKind } from './task-kind';

/** What a task adds to a model's forward pass in its training and evaluation graphs: the targets and the loss. */
export interface TaskLoss {
  /** The inputs the loss compares the model's output with, declared after the model's own `inputs`. */
  targets(b: GraphBuilder, inputs: Tensor[], modelName: string): Tensor[];
  /** What forward must return, for the error when it returns something else. */
  returns: string;
  /** The data loss of the model's one output against `targets`. */
  loss(output: Tensor, targets: Tensor[], labelSmoothing: number | undefined): Tensor;
}

/**
 * Each task's targets and loss: a classifier's cross-entropy against `labels` [N]; a captioner's masked
 * cross-entropy against `targets` [N, T] (the next token of each fed one) where `mask` [N, T] is 1.
 */
export const TASK_LOSSES: Record<TaskKind, TaskLoss> = {
  classification: {
    targets: (b, inputs) => [b.input('labels', 'int64', [inputs[0]?.dim(0) ?? 'batch'])],
    returns: 'a classifier\'s forward must return one tensor of logits',
    loss: (output, [labels], labelSmoothing) => crossEntropy(output, labels!, { labelSmoothing }),
  },
  captioning: {
    targets: (b, inputs, modelName) => {
      const batch = inputs[0]?.dim(0) ?? 'batch';
      const captions = inputs.find((t) => t.name === 'captions');
      if (captions === undefined || captions.rank !== 2) throw new Error(`model '${modelName}': a captioner takes an input 'captions' [batch, length] of token ids`);
      return [b.input('targets', 'int64', [batch, captions.dim(1)]), b.input('mask', 'float32', [batch, captions.dim(1)])];
    },
    returns: 'a captioner\'s forward must return one tensor of logits [batch, length, vocabulary]',
    loss: (output, [targets, mask], labelSmoothing) => maskedCrossEntropy(output, targets!, mask!, { labelSmoothing }),
  },
};
