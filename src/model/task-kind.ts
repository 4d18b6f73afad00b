/**
 * The tasks a model can learn. Each kind has a row in every task table (the compiler refuses a table without it):
 * model/task-losses.ts (the training graph's targets and loss), train/tasks/ (batches, metrics, checkpoints,
 * artifacts) and export/tasks/ (export and the page's card).
 */
export type TaskKind = 'classification' | 'captioning';

/** Every kind, for checking a value read from a file (the compiler checks the list is complete). */
const KINDS: Record<TaskKind, true> = { classification: true, captioning: true };

/** The task a model definition learns: classification when it names none. */
export function definitionTask(definition: { task?: TaskKind }): TaskKind {
  return definition.task ?? 'classification';
}

/**
 * The task a checkpoint (metadata 'deepvision.task') or a card (field `task`) records. A classifier's records none,
 * as files written before there were other tasks; a value that is no known kind is read as a classifier's too.
 */
export function recordedTask(task: unknown): TaskKind {
  return typeof task === 'string' && Object.hasOwn(KINDS, task) ? (task as TaskKind) : 'classification';
}

/** A model of each task, in words ("is a captioner: ..."). */
export const TASK_NOUNS: Record<TaskKind, string> = { classification: 'a classifier', captioning: 'a captioner' };
