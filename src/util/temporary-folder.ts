import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** A new folder in the OS's temporary folder for this process only, removed when the process exits. */
export function temporaryFolder(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}
