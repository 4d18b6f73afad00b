import { UserError } from '../util/user-error';

/** Why a Teach bundle could not be written: a bad backbone or run folder, an option out of range, a failed check. */
export class TeachExportError extends UserError {}
