/**
 * The decoded images of a data set on disk, as fixed-size records in shard files: a folder per data set, image size
 * and source fingerprint, written image by image while decoding (nothing is held for a split) and read a batch at a
 * time (pixel-store.ts). A folder is complete or absent: it is written under a hidden staging name and renamed when
 * its index is in place, so a killed run never leaves a half-written cache that a later run would trust.
 *
 *   <name>-<key>.records/index.json   classes, image size, per split: slots, rows kept, labels file; skipped images
 *   <name>-<key>.records/train-000.bin ...   slots x 3 x size x size bytes (records of skipped images stay zero)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../util/atomic-write';
import type { RecordShard } from './pixel-source';
import { shardLayout } from './pixel-store';

/** Bump when decoding, resizing or the layout changes, so that older caches are not reused. */
const RECORDS_VERSION = 1;

export type SplitName = 'train' | 'val';

interface RecordSplit {
  shards: RecordShard[];
  /** The slots whose image decoded, in order: image i of the split is slot rows[i]. */
  rows: Int32Array;
  /** The label of each kept image. */
  labels: Int32Array;
}

export interface RecordImages {
  classNames: string[];
  size: number;
  splits: Partial<Record<SplitName, RecordSplit>>;
  skipped: { count: number; examples: string[] };
}

interface Index {
  version: number;
  classNames: string[];
  size: number;
  splits: { name: SplitName; slots: number; rows: number[]; labels: number[] }[];
  skipped: { count: number; examples: string[] };
}

export function recordFolder(cacheDir: string, name: string, key: string): string {
  return path.join(cacheDir, `${name.replace(/[^A-Za-z0-9._-]/g, '_')}-${key}.records`);
}

/** The cached images of `folder`, or undefined when it is missing, of another version, or damaged (it is rebuilt). */
export function readRecordCache(folder: string): RecordImages | undefined {
  let index: Index;
  try {
    index = JSON.parse(fs.readFileSync(path.join(folder, 'index.json'), 'utf8')) as Index;
  } catch {
    return undefined;
  }
  if (index.version !== RECORDS_VERSION || !Number.isSafeInteger(index.size) || !Array.isArray(index.splits)) return undefined;
  const imageBytes = 3 * index.size * index.size;
  const splits: Partial<Record<SplitName, RecordSplit>> = {};
  for (const s of index.splits) {
    const shards = shardLayout(folder, s.name, s.slots, imageBytes);
    // A shard of the wrong size (truncated, replaced) means the cache cannot be trusted.
    if (!shards.every((sh) => fs.statSync(sh.file, { throwIfNoEntry: false })?.size === sh.slots * imageBytes)) return undefined;
    if (s.rows.length !== s.labels.length || s.rows.some((r) => !(r >= 0 && r < s.slots))) return undefined;
    splits[s.name] = { shards, rows: Int32Array.from(s.rows), labels: Int32Array.from(s.labels) };
  }
  if (splits.train === undefined) return undefined;
  return { classNames: index.classNames, size: index.size, splits, skipped: index.skipped };
}

/**
 * Writes a folder of record shards under a hidden staging name; commit() writes its index.json and renames it into
 * place, abandon() removes it. Records not written stay zero.
 */
export class RecordFolderWriter {
  private readonly staging: string;
  private readonly fds = new Map<string, number>();

  constructor(private readonly folder: string, private readonly recordBytes: number) {
    this.staging = path.join(path.dirname(folder), `.${path.basename(folder)}.tmp-${process.pid}`);
    fs.rmSync(this.staging, { recursive: true, force: true });
    fs.mkdirSync(this.staging, { recursive: true });
  }

  /** Shard files of `slots` records named PREFIX-000.bin, ..., made at their full size. */
  addShards(prefix: string, slots: number): RecordShard[] {
    const shards = shardLayout(this.staging, prefix, slots, this.recordBytes);
    for (const s of shards) {
      const fd = fs.openSync(s.file, 'w+');
      this.fds.set(s.file, fd);
      fs.ftruncateSync(fd, s.slots * this.recordBytes);
    }
    return shards;
  }

  /** Writes `bytes` (one or more whole records) from record `slot` on. */
  write(shards: readonly RecordShard[], slot: number, bytes: Uint8Array): void {
    let first = 0;
    let at = 0;
    for (const s of shards) {
      while (at < bytes.length && slot < first + s.slots) {
        const fits = Math.min(bytes.length - at, (first + s.slots - slot) * this.recordBytes);
        const position = (slot - first) * this.recordBytes;
        let done = 0;
        while (done < fits) done += fs.writeSync(this.fds.get(s.file)!, bytes, at + done, fits - done, position + done);
        at += fits;
        slot += fits / this.recordBytes;
      }
      first += s.slots;
    }
    if (at < bytes.length) throw new RangeError(`records past the end of the shards (slot ${slot})`);
  }

  /** Flushes the shards, writes the index and moves the folder in place. */
  commit(index: unknown): void {
    for (const fd of this.fds.values()) {
      fs.fsyncSync(fd);
      fs.closeSync(fd);
    }
    this.fds.clear();
    writeFileAtomic(path.join(this.staging, 'index.json'), JSON.stringify(index));
    fs.rmSync(this.folder, { recursive: true, force: true });
    fs.renameSync(this.staging, this.folder);
  }

  /** Removes what was written (after a failure). */
  abandon(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
    fs.rmSync(this.staging, { recursive: true, force: true });
  }
}

/** Writes a record cache of decoded images, split by split; commit() returns the images as a reader sees them. */
export class RecordCacheWriter {
  private readonly folderWriter: RecordFolderWriter;
  private readonly index: Index;

  constructor(private readonly folder: string, classNames: string[], size: number) {
    this.folderWriter = new RecordFolderWriter(folder, 3 * size * size);
    this.index = { version: RECORDS_VERSION, classNames, size, splits: [], skipped: { count: 0, examples: [] } };
  }

  /** Shard files of `slots` records for a split (unwritten records read as zeros). */
  addSplit(name: SplitName, slots: number): RecordShard[] {
    return this.folderWriter.addShards(name, slots);
  }

  /** Writes the record of slot `slot` of a split's shards. */
  write(shards: readonly RecordShard[], slot: number, bytes: Uint8Array): void {
    this.folderWriter.write(shards, slot, bytes);
  }

  /** Records the kept rows and their labels of a split. */
  finishSplit(name: SplitName, slots: number, rows: readonly number[], labels: readonly number[]): void {
    this.index.splits.push({ name, slots, rows: [...rows], labels: [...labels] });
  }

  commit(skipped: { count: number; examples: string[] }): RecordImages {
    this.folderWriter.commit({ ...this.index, skipped });
    const images = readRecordCache(this.folder);
    if (images === undefined) throw new Error(`the image cache just written in ${this.folder} cannot be read back`);
    return images;
  }

  abandon(): void {
    this.folderWriter.abandon();
  }
}
