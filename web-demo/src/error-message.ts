/**
 * The text to show for whatever a failed call threw. Browsers and onnxruntime-web do not always throw Errors (a
 * string, a GPUError, an Event), and `(err as Error).message` of those is undefined: shown, that is an empty error box.
 */
export function errorMessage(err: unknown): string {
  if (typeof err === 'string' && err !== '') return err;
  if (typeof err === 'object' && err !== null) {
    const { message, name } = err as { message?: unknown; name?: unknown };
    if (typeof message === 'string' && message !== '') return message;
    if (typeof name === 'string' && name !== '') return name;
  }
  return `an unexplained failure (${String(err) || 'empty'})`;
}
