/**
 * A command description for `--help`, written as source lines: prose lines are joined into paragraphs so that
 * commander wraps them to the terminal's width (hard line breaks would come out ragged on an 80-column terminal).
 * An empty line separates paragraphs; indented lines, lines after one that ends with ':' and lines that start
 * with 'Example' are kept as they are.
 */
export function helpText(lines: string[]): string {
  const out: string[] = [];
  let joinable = false;
  for (const line of lines) {
    const verbatim = line === '' || /^\s/.test(line) || line.startsWith('Example');
    if (joinable && !verbatim) out[out.length - 1] += ` ${line}`;
    else out.push(line);
    joinable = !verbatim && !line.endsWith(':');
  }
  return out.join('\n');
}
