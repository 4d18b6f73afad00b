import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeWriteFailure, WriteError } from '../util/atomic-write';

/**
 * A hidden folder beside `target` (`.NAME.KIND-PID-XXXXXX`) where an export writes its files before renaming them
 * into place. A process killed mid-export leaves its folder behind; the next export to the same target removes the
 * folders of processes that no longer run (the PID in the name says whose it is), and leaves those of live ones.
 * Readable by other users once renamed into place (mkdtemp makes it 0700).
 */
export function createStagingFolder(target: string, kind: string): string {
  const parent = path.dirname(target);
  const prefix = `.${path.basename(target)}.${kind}-`;
  try {
    fs.mkdirSync(parent, { recursive: true });
    removeAbandoned(parent, prefix);
    const stage = fs.mkdtempSync(path.join(parent, `${prefix}${process.pid}-`));
    fs.chmodSync(stage, 0o755);
    return stage;
  } catch (err) {
    throw new WriteError(describeWriteFailure(err, target));
  }
}

function removeAbandoned(parent: string, prefix: string): void {
  for (const name of fs.readdirSync(parent)) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(/^(\d+)-/.exec(name.slice(prefix.length))?.[1]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || isRunning(pid)) continue;
    fs.rmSync(path.join(parent, name), { recursive: true, force: true });
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it runs, as another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
