/**
 * Reading a file the user or a run folder names, as a regular file only. A named pipe (FIFO) would block a plain
 * read forever and a device never ends, so every reader of images, models, cards and run files goes through here:
 * the file is opened non-blocking (opening a FIFO then returns at once), measured on the open descriptor (so the
 * size checked is the size of the file read, not of one swapped in later) and refused unless it is a plain file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { constants as bufferConstants } from 'node:buffer';
import { UserError } from './user-error';

/**
 * A file that cannot be read as what it should be: missing, not a regular file, too large, outside its folder.
 * `reason` completes the sentence that starts with the file's name, for callers that name the file their own way.
 */
export class FileReadError extends UserError {
  constructor(readonly file: string, readonly reason: string) {
    super(`${file}: ${reason}`);
  }
}

/** A path as given (a Buffer for a name that is not valid UTF-8), as messages show it. */
type FilePath = string | Buffer;
const shown = (file: FilePath): string => (typeof file === 'string' ? file : file.toString('utf8'));

export interface RegularFileOptions {
  /** What the file is, for messages ("image", "ONNX model", "model card"). */
  what?: string;
  /** The largest size accepted, in bytes (default: the largest buffer Node can hold). */
  maxBytes?: number;
  /** A folder the file must lie in once links are resolved (a run folder, a bundle). */
  within?: string;
}

/** Words for the common reasons a file cannot be opened. */
export function describeReadFailure(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  const words: Record<string, string> = {
    ENOENT: 'no such file', EISDIR: 'it is a folder, not a file', EACCES: 'permission denied', EPERM: 'permission denied',
    ELOOP: 'a loop of symbolic links', ENOTDIR: 'a part of its path is a file, not a folder', EIO: 'input/output error',
    ENAMETOOLONG: 'the name is too long', EMFILE: 'too many open files', ENFILE: 'too many open files',
  };
  if (code === undefined) return (err as Error).message.split('\n')[0]!;
  return words[code] !== undefined ? `${code} (${words[code]})` : code;
}

/** Throws unless `file`, with its links resolved, lies inside `folder` (also resolved). */
function assertInsideFolder(file: FilePath, folder: string, what = 'file'): void {
  let real: string;
  let base: string;
  try {
    base = fs.realpathSync(folder);
    real = fs.realpathSync(file, 'buffer').toString('utf8');
  } catch (err) {
    throw new FileReadError(shown(file), `cannot read the ${what}: ${describeReadFailure(err)}`);
  }
  if (real !== base && !real.startsWith(base + path.sep)) {
    throw new FileReadError(shown(file), `the ${what} leads outside ${folder} (through a link); only files inside the folder are read`);
  }
}

/** Throws unless the stat of an open file is of a regular file no larger than the limit. */
function checkOpened(stat: fs.Stats, file: FilePath, o: RegularFileOptions): void {
  const what = o.what ?? 'file';
  if (stat.isDirectory()) throw new FileReadError(shown(file), `cannot read the ${what}: EISDIR (it is a folder, not a file)`);
  if (!stat.isFile()) throw new FileReadError(shown(file), `not a regular file (a named pipe, socket or device), so not ${article(what)}`);
  const limit = Math.min(o.maxBytes ?? Infinity, bufferConstants.MAX_LENGTH);
  if (stat.size > limit) throw new FileReadError(shown(file), `${stat.size.toLocaleString('en-US')} bytes, more than the ${Math.floor(limit).toLocaleString('en-US')} accepted for ${article(what)}`);
}

function checkName(file: FilePath, o: RegularFileOptions): void {
  if (shown(file).includes('\0')) throw new FileReadError(JSON.stringify(shown(file)), `the ${o.what ?? 'file'}'s name contains a NUL character`);
  if (o.within !== undefined) assertInsideFolder(file, o.within, o.what);
}

function openFailure(err: unknown, file: FilePath, o: RegularFileOptions): FileReadError {
  const what = o.what ?? 'file';
  return new FileReadError(shown(file), `cannot read the ${what}: ${describeReadFailure(err)}`);
}

/** O_NONBLOCK where the platform has it (Node's types promise it; Windows has none). */
export const O_NONBLOCK = (fs.constants as { O_NONBLOCK?: number }).O_NONBLOCK ?? 0;

/** Non-blocking, so that opening a named pipe returns at once (and is then refused); regular files ignore the flag. */
const OPEN_FLAGS = fs.constants.O_RDONLY | O_NONBLOCK;

/**
 * Opens `file` for reading if it is a regular file and returns its descriptor and size; the caller closes it.
 * Throws FileReadError (one line naming the file and why) otherwise.
 */
export function openRegularFile(file: FilePath, o: RegularFileOptions = {}): { fd: number; size: number } {
  checkName(file, o);
  let fd: number;
  try {
    fd = fs.openSync(file, OPEN_FLAGS);
  } catch (err) {
    throw openFailure(err, file, o);
  }
  try {
    const stat = fs.fstatSync(fd);
    checkOpened(stat, file, o);
    return { fd, size: stat.size };
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

/** Reads a regular file whole (see openRegularFile). */
export function readRegularFile(file: FilePath, o: RegularFileOptions = {}): Buffer {
  const { fd, size } = openRegularFile(file, o);
  try {
    const out = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) {
      const n = readSome(fd, out, done, size - done, file, o.what);
      if (n === 0) throw new FileReadError(shown(file), `ended after ${done} of ${size} bytes (it changed while being read)`);
      done += n;
    }
    return out;
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads a regular file as UTF-8 text, without a leading byte-order mark. */
export function readRegularText(file: FilePath, o: RegularFileOptions = {}): string {
  return readRegularFile(file, o).toString('utf8').replace(/^\uFEFF/, '');
}

/** Reads a regular file without blocking the event loop (image decoding reads many at once). */
export async function readRegularFileAsync(file: FilePath, o: RegularFileOptions = {}): Promise<Buffer> {
  checkName(file, o);
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, OPEN_FLAGS);
  } catch (err) {
    throw openFailure(err, file, o);
  }
  try {
    const stat = await handle.stat();
    checkOpened(stat, file, o);
    const out = Buffer.allocUnsafe(stat.size);
    let done = 0;
    while (done < stat.size) {
      const { bytesRead } = await handle.read(out, done, stat.size - done, done).catch((err: unknown) => {
        throw new FileReadError(shown(file), `cannot read the ${o.what ?? 'file'}: ${describeReadFailure(err)}`);
      });
      if (bytesRead === 0) throw new FileReadError(shown(file), `ended after ${done} of ${stat.size} bytes (it changed while being read)`);
      done += bytesRead;
    }
    return out;
  } finally {
    await handle.close();
  }
}

function readSome(fd: number, out: Buffer, at: number, length: number, file: FilePath, what = 'file'): number {
  try {
    return fs.readSync(fd, out, at, length, at);
  } catch (err) {
    throw new FileReadError(shown(file), `cannot read the ${what}: ${describeReadFailure(err)}`);
  }
}

function article(what: string): string {
  return /^[aeiouAEIOU]/.test(what) && !/^(ONNX|one)/.test(what) ? `an ${what}` : what === 'ONNX model' ? 'an ONNX model' : `a ${what}`;
}
