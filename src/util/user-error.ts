/**
 * An error whose message is meant for the user: the CLI prints it as one `error:` line, without a stack trace.
 * Subclass it for errors of one area (training, export, ...); the name stays 'UserError' so that a copy of the
 * library loaded by a graph file is recognized too.
 */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

/** Errors whose message is meant for users (matched by name: a graph file may bring its own copy of the classes). */
const USER_FACING = new Set(['UserError', 'GraphBuildError', 'OnnxFormatError', 'ShapeError']);

export function isUserFacing(err: unknown): err is Error {
  return err instanceof Error && USER_FACING.has(err.name);
}
