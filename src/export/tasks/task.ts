import type { DefinitionLoader } from '../../runtime/caption-model';

/**
 * What `deepvision export` asks of a task (classification.ts, captioning.ts; the table is index.ts): the files of a
 * run folder it reads and of the page's folder it writes (its card, model.json, among them), and the export itself.
 */
export interface ExportTask {
  /** The run folder's files the export reads. */
  readonly reads: readonly string[];
  /** The files the export writes into the output folder. */
  readonly writes: readonly string[];
  /** Exports the run in `runDir` to `outDir`, checked against the run's models; returns what was written, in lines for the user. */
  exportRun(runDir: string, outDir: string, o: RunExportOptions): Promise<string[]>;
}

/** The export's options; each task reads those that concern it. */
interface RunExportOptions {
  fp16: boolean;
  /** Captioners: the search the card asks for. */
  beam: number;
  lengthPenalty: number;
  /** Captioners whose run has no generation graphs: loads the model definition to build them. */
  definition?: DefinitionLoader;
}
