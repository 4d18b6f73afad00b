import { definitionTask, TaskKind } from '../../model/task-kind';
import { CAPTIONING } from './captioning';
import { CLASSIFICATION } from './classification';
import type { Task, TaskOptions } from './task';

/** Every task the trainer knows, by kind: a kind without a row does not compile. */
const TRAINING_TASKS: Record<TaskKind, Task> = {
  classification: CLASSIFICATION,
  captioning: CAPTIONING,
};

/** The task a run trains: the one its model definition names. */
export function trainingTask(o: Pick<TaskOptions, 'definition'>): Task {
  return TRAINING_TASKS[definitionTask(o.definition)];
}
