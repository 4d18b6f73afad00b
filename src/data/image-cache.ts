import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFileAtomic } from '../util/atomic-write';
import { sharedBytes } from './dataset';
import type { FilePath } from './sources/image-source';

/** Bump when decoding or resizing changes, so old caches are not reused (2: SVG and PDF refused, pixel limit). */
const CACHE_VERSION = 2;
const MAGIC = 'DVCACHE1';

export interface CachedSplit {
  labels: Int32Array;
  /** count x 3 x height x width bytes, in a SharedArrayBuffer (worker threads read it without copying). */
  pixels: Uint8Array;
}

export interface CachedImages {
  classNames: string[];
  height: number;
  width: number;
  train: CachedSplit;
  val?: CachedSplit;
  /** Files that could not be decoded when the cache was built (reported again on every load). */
  skipped: { count: number; examples: string[] };
}

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

export function cacheFile(dir: string, name: string, key: string): string {
  return path.join(dir, `${name.replace(/[^A-Za-z0-9._-]/g, '_')}-${key}.dvcache`);
}

interface Header {
  version: number;
  classNames: string[];
  height: number;
  width: number;
  splits: { name: 'train' | 'val'; count: number }[];
  skipped: { count: number; examples: string[] };
}

/** Reads a cache file; undefined when it is missing or unreadable (it is then rebuilt). */
export function readCache(file: string): CachedImages | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const prefix = Buffer.alloc(12);
    fs.readSync(fd, prefix, 0, 12, 0);
    if (prefix.toString('latin1', 0, 8) !== MAGIC) return undefined;
    const headerLength = prefix.readUInt32LE(8);
    const headerBytes = Buffer.alloc(headerLength);
    fs.readSync(fd, headerBytes, 0, headerLength, 12);
    const header = JSON.parse(headerBytes.toString('utf8')) as Header;
    if (header.version !== CACHE_VERSION) return undefined;
    let offset = 12 + headerLength;
    const image = 3 * header.height * header.width;
    const splits: Partial<Record<'train' | 'val', CachedSplit>> = {};
    for (const s of header.splits) {
      const labels = new Int32Array(s.count);
      offset += readInto(fd, new Uint8Array(labels.buffer), offset);
      const pixels = sharedBytes(s.count * image);
      offset += readInto(fd, pixels, offset);
      splits[s.name] = { labels, pixels };
    }
    if (!splits.train) return undefined;
    return { classNames: header.classNames, height: header.height, width: header.width, train: splits.train, val: splits.val, skipped: header.skipped };
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

function readInto(fd: number, target: Uint8Array, position: number): number {
  let done = 0;
  while (done < target.length) {
    const n = fs.readSync(fd, target, done, target.length - done, position + done);
    if (n === 0) throw new Error('cache file is truncated');
    done += n;
  }
  return done;
}

/** Writes a cache file atomically (a killed process never leaves a half-written cache behind). */
export function writeCache(file: string, images: CachedImages): void {
  const splits = [['train', images.train], ['val', images.val]].filter((s): s is ['train' | 'val', CachedSplit] => s[1] !== undefined);
  const header: Header = {
    version: CACHE_VERSION, classNames: images.classNames, height: images.height, width: images.width,
    splits: splits.map(([name, s]) => ({ name, count: s.labels.length })), skipped: images.skipped,
  };
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(12);
  prefix.write(MAGIC, 0, 'latin1');
  prefix.writeUInt32LE(headerBytes.length, 8);
  const parts: Uint8Array[] = [prefix, headerBytes];
  for (const [, s] of splits) parts.push(new Uint8Array(s.labels.buffer, s.labels.byteOffset, s.labels.byteLength), s.pixels);
  writeFileAtomic(file, parts);
}
