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
