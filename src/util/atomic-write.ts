import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from './user-error';

/** A failed write, described for the user: a full disk, a read-only folder, a missing permission. */
export class WriteError extends UserError {}

/** One line for a failed file operation: "no space left on device writing FILE" rather than an errno dump. */
export function describeWriteFailure(err: unknown, target: string): string {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOSPC': return `no space left on device writing ${target}`;
    case 'EDQUOT': return `disk quota exceeded writing ${target}`;
    case 'EROFS': return `read-only file system: cannot write ${target}`;
    case 'EACCES': case 'EPERM': return `permission denied writing ${target}`;
    case 'EISDIR': return `cannot write ${target}: it is a folder`;
    case 'ENOTDIR': case 'EEXIST': {
      // A file where a folder of the path should be: open() says ENOTDIR, mkdir -p EEXIST. Name that file.
      const file = fileBlockingPath(target);
      if (file !== undefined) return `cannot write ${target}: ${file} is a file, not a folder`;
      if (code === 'ENOTDIR') return `cannot write ${target}: a part of its path is a file, not a folder`;
    }
  }
  return `could not write ${target}: ${(err as Error).message}`;
}

/** The first part of `target`'s path, from the top, that exists and is not a folder (links followed); undefined if none. */
export function fileBlockingPath(target: string): string | undefined {
  const parts: string[] = [];
  for (let dir = path.dirname(target); ; dir = path.dirname(dir)) {
    parts.unshift(dir);
    if (path.dirname(dir) === dir) break;
  }
  return parts.find((dir) => {
    try {
      return !fs.statSync(dir).isDirectory();
    } catch {
      return false;
    }
  });
}

/** Creates the folder an output goes into (and its parents); a failure is a WriteError naming the output. */
export function makeOutputFolder(dir: string, target: string = dir): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new WriteError(describeWriteFailure(err, target));
  }
}

/** The most bytes one write call is given (a single write of more than 2 GiB fails). */
const WRITE_CHUNK = 1 << 30;

/**
 * Writes a file so that readers see either the old content or the complete new one, never a partial file:
 * the bytes go to a temporary file in the same folder, are flushed to disk, and the temporary file is renamed
 * over the target. On any failure the temporary file is removed, the target is untouched and a WriteError says why.
 */
export function writeFileAtomic(target: string, data: Uint8Array | string | readonly Uint8Array[]): void {
  const dir = path.dirname(path.resolve(target));
  const tmp = path.join(dir, `.${path.basename(target)}.${process.pid}.${Date.now().toString(36)}.tmp`);
  let fd: number | undefined;
  try {
    fs.mkdirSync(dir, { recursive: true });
    fd = fs.openSync(tmp, 'w');
    // Parts are written one after the other, so a file of several gigabytes is never joined into one buffer.
    const parts = typeof data === 'string' ? [Buffer.from(data, 'utf8')] : data instanceof Uint8Array ? [data] : data;
    for (const bytes of parts) {
      let offset = 0;
      while (offset < bytes.length) offset += fs.writeSync(fd, bytes, offset, Math.min(WRITE_CHUNK, bytes.length - offset));
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, target);
  } catch (err) {
    // Clean-up is best effort: where the folder could not be made (a part of the path is a file) the temporary
    // file's path gives ENOTDIR, not ENOENT, and that must not hide the first error.
    try {
      if (fd !== undefined) fs.closeSync(fd);
      fs.rmSync(tmp, { force: true });
    } catch {
      // Nothing was written there, or it cannot be removed either: the error below says what went wrong.
    }
    throw new WriteError(describeWriteFailure(err, target));
  }
}

/**
 * Removes the temporary files (`.NAME.PID.TIME.tmp`) writeFileAtomic left in `dir` when a process was killed mid-write (those of
 * processes still running are kept). Returns how many were removed.
 */
export function removeStaleTempFiles(dir: string): number {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const match = /^\..*\.(\d+)\.[0-9a-z]+\.tmp$/.exec(name);
    if (!match || processAlive(Number(match[1]))) continue;
    fs.rmSync(path.join(dir, name), { force: true });
    removed++;
  }
  return removed;
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
