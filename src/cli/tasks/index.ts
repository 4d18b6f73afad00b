import type { Command } from 'commander';
import { definitionTask, TaskKind } from '../../model/task-kind';
import { CAPTIONING_CLI } from './captioning';
import { CLASSIFICATION_CLI } from './classification';
import type { CliTask } from './task';

/** What the commands do for each task: a kind without a row does not compile. */
export const CLI_TASKS: Record<TaskKind, CliTask> = {
  classification: CLASSIFICATION_CLI,
  captioning: CAPTIONING_CLI,
};

/** Sets the defaults of a model's task on `train` (a captioner on shapes has its own); nothing for the others. */
export function applyTrainDefaults(command: Command, task: TaskKind | undefined, data: string): void {
  CLI_TASKS[definitionTask({ task })].applyTrainDefaults(command, data);
}
