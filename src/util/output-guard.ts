import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileBlockingPath, WriteError } from './atomic-write';
import { UserError } from './user-error';

/** An output option that names one of the command's inputs: writing it would destroy the input. */
class OverwriteError extends UserError {}

/** A path as given (a Buffer for a name that is not valid UTF-8). */
type FilePath = string | Buffer;
const shown = (file: FilePath): string => (typeof file === 'string' ? file : file.toString('utf8'));

/** Something a command reads: a file, or a folder every file of which is an input (a run folder, a data set). */
export interface CommandInput {
  file: FilePath;
  /** What it is, for the message: 'input image', 'graph file', 'training run folder', ... */
  what: string;
  /** A folder whose files are all inputs (not only the folder itself). */
  folder?: boolean;
}

/** A file (or folder) a command will write, and the option that named it. */
export interface CommandOutput {
  file: string;
  option: string;
  /** A folder the command replaces as a whole (export-teach's bundle): no input may lie inside it. */
  replacesFolder?: boolean;
}

/** dev:ino of what a path leads to, links followed (bigint: inode numbers can pass 2^53); undefined if nothing is there. */
function identity(file: FilePath): string | undefined {
  try {
    const stat = fs.statSync(file, { bigint: true });
    return `${stat.dev}:${stat.ino}`;
  } catch {
    return undefined;
  }
}

function realPath(file: FilePath): string | undefined {
  try {
    return fs.realpathSync(file, 'buffer').toString('latin1');
  } catch {
    return undefined;
  }
}

/** Whether the real path `file` is `folder` or lies under it. */
function inside(file: string, folder: string): boolean {
  return file === folder || file.startsWith(folder.endsWith(path.sep) ? folder : folder + path.sep);
}

/**
 * Checks a command's outputs before it does any work: each output's folder can be made (no file stands where a
 * folder of its path should be), and no output is one of the command's inputs. "Is" means the same file on disk
 * (device and inode, links followed), so a second name for an input (a symbolic link, a hard link, `./x` for `x`)
 * is caught as well as the name itself; an existing file inside an input folder counts as an input. An output that
 * does not exist yet is compared by its absolute path (an input could be written before it is read). Throws one
 * user error naming both paths.
 */
export function checkOutputs(outputs: readonly CommandOutput[], inputs: readonly CommandInput[]): void {
  const byIdentity = new Map<string, CommandInput>();
  for (const input of inputs) {
    const id = identity(input.file);
    if (id !== undefined && !byIdentity.has(id)) byIdentity.set(id, input);
  }
  const reals = inputs.map((input) => ({ input, real: realPath(input.file) }));
  const folders = reals.filter((r) => r.input.folder);
  for (const output of outputs) {
    const blocking = fileBlockingPath(output.file);
    if (blocking !== undefined) {
      // A folder the option names itself (export --out FILE) is reported as such.
      const named = outputs.find((o) => path.resolve(o.file) === path.resolve(blocking));
      throw new WriteError(named !== undefined ? `${named.option} ${named.file} is a file, not a folder` : `cannot write ${output.file} (${output.option}): ${blocking} is a file, not a folder`);
    }
    if (output.replacesFolder) {
      const folder = realPath(output.file);
      const held = folder === undefined ? undefined : reals.find((r) => r.real !== undefined && inside(r.real, folder));
      if (held !== undefined) {
        throw new OverwriteError(`${output.option} ${output.file} would replace the folder that holds the ${held.input.what} ${shown(held.input.file)}; deepvision never writes over its inputs: give ${output.option} another folder`);
      }
    }
    const id = identity(output.file);
    // An input that does not exist yet may be written before it is read (a map named like a later image).
    const input = id === undefined ? inputs.find((i) => typeof i.file === 'string' && path.resolve(i.file) === path.resolve(output.file)) : byIdentity.get(id);
    if (input !== undefined) {
      const same = path.resolve(output.file) === path.resolve(shown(input.file)) ? '' : ' (the same file)';
      throw new OverwriteError(`${output.option} would write ${output.file}, which is the ${input.what} ${shown(input.file)}${same}; deepvision never writes over its inputs: give ${output.option} another path`);
    }
    if (id === undefined) continue;
    const real = realPath(output.file);
    const holder = real === undefined ? undefined : folders.find((f) => f.real !== undefined && real !== f.real && inside(real, f.real));
    if (holder !== undefined) {
      throw new OverwriteError(`${output.option} would write ${output.file}, which is a file of the ${holder.input.what} ${shown(holder.input.file)}; deepvision never writes over its inputs: give ${output.option} another path`);
    }
  }
}
