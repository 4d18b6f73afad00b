/**
 * Where decoded images are cached, and the fingerprint that keys a cache to its source files (the records
 * themselves: record-cache.ts).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FilePath } from './sources/image-source';

/** Bump when decoding or resizing changes, so old caches are not reused (2: SVG and PDF refused, pixel limit). */
const CACHE_VERSION = 2;

export function defaultCacheDir(): string {
  return process.env.DEEPVISION_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'deepvision');
}

/** A digest of everything the decoded images depend on: each source file's path, size and modification time. */
export function fingerprint(files: readonly FilePath[], extra: string): string {
  const hash = createHash('sha256');
  hash.update(`${CACHE_VERSION}\n${extra}\n`);
  for (const f of files) {
    // A name that is not valid UTF-8 is hashed as its bytes; a file gone since listing is skipped when decoded.
    hash.update(typeof f === 'string' ? path.resolve(f) : path.isAbsolute(f.toString('latin1')) ? f : Buffer.concat([Buffer.from(process.cwd()), Buffer.from(path.sep), f]));
    const s = fs.statSync(f, { throwIfNoEntry: false });
    hash.update(s ? `\t${s.size}\t${s.mtimeMs}\n` : '\tmissing\n');
  }
  return hash.digest('hex').slice(0, 20);
}
