/**
 * How two lists of class names (a model's, in label order, and a data set's) differ, in words; undefined when they
 * are the same. A model's label k means its k-th class: data whose k-th class is another one would be scored
 * against the wrong labels without a word.
 */
export function classNamesDifference(model: readonly string[], data: readonly string[]): string | undefined {
  // Quoted as JSON: names come from folders and files, and the message must stay one line.
  const q = (name: string | undefined) => JSON.stringify(name);
  const show = (names: readonly string[]) => (names.length <= 6 ? names.map(q).join(', ') : `${names.slice(0, 5).map(q).join(', ')}, ...`);
  const classes = (n: number) => `${n} class${n === 1 ? '' : 'es'}`;
  if (model.length !== data.length) return `the model has ${classes(model.length)} (${show(model)}), the data ${data.length} (${show(data)})`;
  const at = model.findIndex((name, i) => name !== data[i]);
  if (at < 0) return undefined;
  const differ = model.filter((name, i) => name !== data[i]).length;
  return `label ${at} is ${q(model[at])} for the model but ${q(data[at])} in the data${differ > 1 ? ` (${differ} labels differ)` : ''}`;
}
