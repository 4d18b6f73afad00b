import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeWriteFailure, WriteError } from '../util/atomic-write';
import { UserError } from '../util/user-error';
import { ExportError } from './export-error';
import { updateModelIndex } from './model-index';
import { createStagingFolder } from './staging-folder';

/** Writes one whole file (or throws); export's only way of writing, so that tests can make it fail. */
export type FileWriter = (file: string, data: Uint8Array | string) => void;

/**
 * Puts `files` into `outDir` and refreshes the models index beside it, all or nothing. The files are first written
 * into a hidden folder next to `outDir` (where a full disk shows up); only renames follow, which need no space. A
 * new `outDir` is that folder renamed; in an existing one the previous files are moved aside, kept until the index
 * is written, and moved back on failure. Folders this call created are removed again when it fails.
 */
export function publish(outDir: string, files: Record<string, Uint8Array | string>, write: FileWriter): void {
  const target = path.resolve(outDir);
  const parent = path.dirname(target);
  let existed: boolean;
  try {
    existed = fs.statSync(target).isDirectory();
    if (!existed) throw new ExportError(`--out ${outDir} is a file, not a folder`);
  } catch (err) {
    if (err instanceof ExportError) throw err;
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new WriteError(describeWriteFailure(err, outDir));
    existed = false;
  }
  let createdFrom: string | undefined;
  let stage: string | undefined;
  const undo: (() => void)[] = [];
  try {
    try {
      createdFrom = fs.mkdirSync(parent, { recursive: true });
    } catch (err) {
      throw new WriteError(describeWriteFailure(err, outDir));
    }
    stage = createStagingFolder(target, 'export');
    for (const [name, data] of Object.entries(files)) writeAs(write, path.join(stage, name), path.join(outDir, name), data);
    if (!existed) {
      move(stage, target, outDir);
      stage = undefined;
      undo.push(() => fs.rmSync(target, { recursive: true, force: true }));
    } else {
      for (const name of Object.keys(files)) {
        const final = path.join(target, name);
        const previous = path.join(stage, `${name}.previous`);
        if (fs.existsSync(final)) {
          move(final, previous, path.join(outDir, name));
          undo.push(() => fs.renameSync(previous, final));
        }
        move(path.join(stage, name), final, path.join(outDir, name));
        undo.push(() => fs.rmSync(final, { force: true }));
      }
    }
    updateModelIndex(parent, (file, data) => writeAs(write, file, file, data));
  } catch (err) {
    for (const step of undo.reverse()) {
      try {
        step();
      } catch {
        // Best effort: a rollback step that fails leaves the other ones to run.
      }
    }
    if (stage !== undefined) fs.rmSync(stage, { recursive: true, force: true });
    if (createdFrom !== undefined) removeEmptyFolders(parent, createdFrom);
    throw err;
  }
  if (stage !== undefined) fs.rmSync(stage, { recursive: true, force: true });
}

/** Writes a staged file; a failure is reported under the name the user asked for, not the hidden stage's. */
function writeAs(write: FileWriter, staged: string, shown: string, data: Uint8Array | string): void {
  try {
    write(staged, data);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== undefined) throw new WriteError(describeWriteFailure(err, shown));
    if (err instanceof UserError) throw new WriteError(err.message.split(staged).join(shown));
    throw err;
  }
}

function move(from: string, to: string, shown: string): void {
  try {
    fs.renameSync(from, to);
  } catch (err) {
    throw new WriteError(describeWriteFailure(err, shown));
  }
}

/** Removes `dir` and its parents up to `top` (which mkdirSync created), each only if empty. */
function removeEmptyFolders(dir: string, top: string): void {
  for (let d = dir; ; d = path.dirname(d)) {
    try {
      fs.rmdirSync(d);
    } catch {
      return;
    }
    if (d === top || path.dirname(d) === d) return;
  }
}
