/**
 * Reading a data set's decoded images a batch at a time: in memory (generated sets, small sets, tests) or from
 * record files on disk (decoded photo folders), so that memory does not grow with the number of images. A source is
 * plain data (pixel-source.ts), which batch worker threads receive and open on their own.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { PixelSource, RecordShard } from './pixel-source';

/** Reads images by index into caller-owned bytes. */
export interface PixelReader {
  /** Copies the images at `indices`, one after the other, into `out` (indices.length x imageBytes bytes). */
  gather(indices: ArrayLike<number>, out: Uint8Array): void;
  close(): void;
}

export function openPixelReader(source: PixelSource, imageBytes: number): PixelReader {
  if (source.kind === 'memory') {
    const pixels = source.pixels;
    return {
      gather(indices, out) {
        for (let b = 0; b < indices.length; b++) {
          const from = indices[b]! * imageBytes;
          out.set(pixels.subarray(from, from + imageBytes), b * imageBytes);
        }
      },
      close() {},
    };
  }
  return new RecordReader(source, imageBytes);
}

/** Reads records with positioned reads; shard files are opened when first needed and kept open until close(). */
class RecordReader implements PixelReader {
  private readonly firstSlot: number[] = [];
  private readonly fds: (number | undefined)[];

  constructor(private readonly source: Extract<PixelSource, { kind: 'records' }>, private readonly imageBytes: number) {
    let slot = 0;
    for (const s of source.shards) {
      this.firstSlot.push(slot);
      slot += s.slots;
    }
    this.fds = source.shards.map(() => undefined);
  }

  gather(indices: ArrayLike<number>, out: Uint8Array): void {
    for (let b = 0; b < indices.length; b++) {
      const row = this.source.rows[indices[b]!];
      if (row === undefined) throw new RangeError(`image ${indices[b]} is not in this set of ${this.source.rows.length}`);
      const shard = this.shardOf(row);
      const target = out.subarray(b * this.imageBytes, (b + 1) * this.imageBytes);
      const position = (row - this.firstSlot[shard]!) * this.imageBytes;
      let done = 0;
      while (done < target.length) {
        const n = fs.readSync(this.fd(shard), target, done, target.length - done, position + done);
        if (n === 0) throw new Error(`${this.source.shards[shard]!.file} is shorter than its ${this.source.shards[shard]!.slots} records (was the image cache changed?)`);
        done += n;
      }
    }
  }

  close(): void {
    for (const fd of this.fds) if (fd !== undefined) fs.closeSync(fd);
    this.fds.fill(undefined);
  }

  private shardOf(row: number): number {
    let lo = 0;
    let hi = this.firstSlot.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.firstSlot[mid]! <= row) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private fd(shard: number): number {
    return (this.fds[shard] ??= fs.openSync(this.source.shards[shard]!.file, 'r'));
  }
}

/** Readers kept per source (a record file is opened once, not per batch); closed when the source is collected. */
const readers = new WeakMap<PixelSource, PixelReader>();
const closeReader = new FinalizationRegistry<PixelReader>((r) => r.close());

/** A reader of `source`, shared by every caller in this thread. */
export function sharedReader(source: PixelSource, recordBytes: number): PixelReader {
  let reader = readers.get(source);
  if (reader === undefined) {
    reader = openPixelReader(source, recordBytes);
    readers.set(source, reader);
    if (source.kind === 'records') closeReader.register(source, reader);
  }
  return reader;
}

/** Shard files of a record set in `dir`: `PREFIX-000.bin`, `PREFIX-001.bin`, ... of at most `maxBytes` each. */
export function shardLayout(dir: string, prefix: string, slots: number, imageBytes: number, maxBytes = SHARD_BYTES): RecordShard[] {
  const perShard = Math.max(1, Math.floor(maxBytes / imageBytes));
  const shards: RecordShard[] = [];
  for (let first = 0, k = 0; first < slots || (slots === 0 && k === 0); first += perShard, k++) {
    shards.push({ file: path.join(dir, `${prefix}-${String(k).padStart(3, '0')}.bin`), slots: Math.min(perShard, slots - first) });
    if (slots === 0) break;
  }
  return shards;
}

/** 1 GiB shards: small enough for any file system, few enough to keep open. */
const SHARD_BYTES = 1 << 30;
