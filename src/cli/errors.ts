import { UserError } from '../util/user-error';

export { UserError };

/** Errors whose message is meant for users (matched by name: a graph file may bring its own copy of the classes). */
const USER_FACING = new Set(['UserError', 'GraphBuildError', 'OnnxFormatError', 'ShapeError']);

export function isUserFacing(err: unknown): err is Error {
  return err instanceof Error && USER_FACING.has(err.name);
}
