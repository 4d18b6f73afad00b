import * as fs from 'node:fs';
import * as path from 'node:path';

/** The shared data folder beside the checkout (../shared), or DEEPVISION_SHARED. */
export function sharedDir(): string {
  return process.env.DEEPVISION_SHARED ?? path.resolve(__dirname, '..', '..', '..', 'shared');
}

/** A file from the shared folder; fails with a message saying what is missing and how to point at it. */
export function sharedFile(relative: string): string {
  const file = path.join(sharedDir(), relative);
  if (!fs.existsSync(file)) {
    throw new Error(`test data missing: ${file} (the shared data folder is expected beside the checkout; set DEEPVISION_SHARED to its path)`);
  }
  return file;
}
