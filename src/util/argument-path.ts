import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from './user-error';

/**
 * The file a command-line argument names, as a path fs can open: the argument itself, or, for a file whose name is
 * not valid UTF-8, its bytes.
 *
 * Node decodes process.argv as UTF-8 and turns each invalid byte sequence into U+FFFD, so `caf\xe9.png` arrives as
 * "caf\uFFFD.png", which names no file. The raw bytes cannot be recovered from the process itself: the CLI's
 * launcher re-runs it in a child whose arguments were already JavaScript strings (and long command lines reach the
 * child through a pipe, not its argv), so /proc/self/cmdline would show the replaced text too, and it exists on Linux
 * only. Instead the path is resolved from the disk: each part of it that does not exist as written is looked up in
 * its parent folder among the names whose UTF-8 decoding (invalid bytes replaced the same way) equals it. One match
 * is the file; two (names that differ only in invalid bytes) are refused as ambiguous; none leaves the argument as
 * given, so that the caller reports it as missing.
 */
export function resolveArgumentPath(arg: string): string | Buffer {
  if (!arg.includes('\uFFFD') || exists(arg)) return arg;
  const resolved = resolveBytes(arg);
  return resolved === undefined ? arg : resolved;
}

function exists(file: string | Buffer): boolean {
  return fs.lstatSync(file, { throwIfNoEntry: false }) !== undefined;
}

/** The bytes of the path `text` names, resolved part by part from the top; undefined when a part matches no name. */
function resolveBytes(text: string): Buffer | undefined {
  if (exists(text)) return Buffer.from(text);
  const parent = path.dirname(text);
  const name = path.basename(text);
  if (parent === text || name === '') return undefined;
  const parentBytes = resolveBytes(parent);
  if (parentBytes === undefined) return undefined;
  const join = (entry: Buffer) => (parent === '.' && !text.startsWith('.') ? entry : Buffer.concat([parentBytes, Buffer.from(path.sep), entry]));
  if (name === '.' || name === '..') return join(Buffer.from(name));
  let entries: Buffer[];
  try {
    entries = fs.readdirSync(parentBytes, { encoding: 'buffer' });
  } catch {
    return undefined;
  }
  const matches = entries.filter((entry) => entry.toString('utf8') === name);
  if (matches.length > 1) {
    const hex = matches.map((m) => JSON.stringify(m.toString('latin1')).replace(/[\u0080-\u00ff]/g, (c) => `\\x${c.charCodeAt(0).toString(16)}`));
    throw new UserError(`${text}: ${matches.length} files in ${parent} have names that read like this one (they differ in bytes that are not valid UTF-8: ${hex.join(', ')}); rename one of them`);
  }
  return matches.length === 1 ? join(matches[0]!) : undefined;
}
