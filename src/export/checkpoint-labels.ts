import type { UserError } from '../util/user-error';

/**
 * The class names a run's checkpoint records (`deepvision.classes`), checked against the model they label: a
 * non-empty list of strings, one per output. A list of another length would put names on the wrong outputs (or
 * none), so every exporter refuses it here, with its own error class.
 */
export function checkpointLabels(
  meta: Record<string, string>, file: string, outputs: number | undefined, error: new (message: string) => UserError,
): string[] {
  const key = 'deepvision.classes';
  const text = meta[key];
  if (typeof text !== 'string') throw new error(`${file} does not record '${key}' (was it written by \`deepvision train\`?)`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new error(`${file}: metadata '${key}' is not valid JSON`);
  }
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'string')) {
    throw new error(`${file}: metadata '${key}' must be a non-empty list of class names`);
  }
  if (outputs !== undefined && v.length !== outputs) {
    throw new error(`${file}: metadata '${key}' names ${v.length} classes, but the model has ${outputs} outputs`);
  }
  return v as string[];
}
