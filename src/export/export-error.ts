import { UserError } from '../util/user-error';

/** Why a model could not be exported: what the run folder lacks, what the exported model got wrong. */
export class ExportError extends UserError {}
