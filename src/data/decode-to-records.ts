/**
 * The one decode path of image and caption data: every image of a source's splits decoded, resized to the model's
 * square input and written to its record in the image cache as soon as it is decoded (record-cache.ts), or the
 * cache read when it is there. Memory holds only the images being decoded.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { RecordImageDataset } from './dataset';
import { DecodeChunk, decodeChunk, DecodedChunk, entryLabel } from './decode-entry';
import { readRecordCache, RecordCacheWriter, recordFolder, RecordImages, SplitName } from './record-cache';
import type { ImageEntry } from './sources/image-source';
import { temporaryFolder } from '../util/temporary-folder';

export interface DecodeRequest {
  /** The data set's name in the cache folder's name. */
  name: string;
  /** Fingerprint of everything the decoded images depend on (source files, size, pixel limit, ...). */
  key: string;
  cacheDir: string;
  classNames: string[];
  size: number;
  splits: Partial<Record<SplitName, ImageEntry[]>>;
  maxPixels: number;
  onProgress?: (done: number, total: number) => void;
  /** Notes (a cache folder that cannot be written). */
  onNotice?: (message: string) => void;
}

/** The decoded images of the request's splits, from the cache when it holds them. */
export async function decodeToRecords(r: DecodeRequest): Promise<{ images: RecordImages; fromCache: boolean }> {
  const cached = readRecordCache(recordFolder(r.cacheDir, r.name, r.key));
  if (cached !== undefined) return { images: cached, fromCache: true };
  let writer: RecordCacheWriter;
  try {
    writer = new RecordCacheWriter(recordFolder(r.cacheDir, r.name, r.key), r.classNames, r.size);
  } catch (err) {
    // A cache folder that cannot be written (read-only home, full disk) costs the decoding again next run.
    const temporary = temporaryFolder('deepvision-images-');
    r.onNotice?.(`note: could not write the image cache in ${r.cacheDir} (${(err as Error).message.split('\n')[0]}); decoding into ${temporary} for this run`);
    writer = new RecordCacheWriter(recordFolder(temporary, r.name, r.key), r.classNames, r.size);
  }
  return { images: await decodeSplits(r, writer), fromCache: false };
}

/** A split of decoded images as a data set (all its kept images, in order). */
export function recordDataset(images: RecordImages, split: SplitName, name: string): RecordImageDataset {
  const s = images.splits[split];
  if (s === undefined) throw new RangeError(`the image cache has no ${split} split`);
  return {
    name, classNames: images.classNames, count: s.rows.length, channels: 3, height: images.size, width: images.size,
    records: { kind: 'records', shards: s.shards, rows: s.rows }, labels: s.labels,
  };
}

/** Images per chunk handed to a decode worker: enough to amortize the message, few enough to balance the workers. */
const CHUNK = 16;

async function decodeSplits(r: DecodeRequest, writer: RecordCacheWriter): Promise<RecordImages> {
  const lists = (['train', 'val'] as const).flatMap((name) => (r.splits[name] === undefined ? [] : [[name, r.splits[name]] as const]));
  const total = lists.reduce((n, [, entries]) => n + entries.length, 0);
  const skipped = { count: 0, examples: [] as string[] };
  const pool = new DecodePool();
  let done = 0;
  const decodeSplit = async (name: SplitName, entries: readonly ImageEntry[]): Promise<void> => {
    const shards = writer.addSplit(name, entries.length);
    const ok = new Uint8Array(entries.length);
    let next = 0;
    // Each lane keeps one chunk in flight; twice as many lanes as workers keep every worker busy.
    const lane = async () => {
      for (let first = next; first < entries.length; first = next) {
        next += CHUNK;
        const chunk = entries.slice(first, first + CHUNK);
        const decoded = await pool.decode({ id: first, entries: chunk, size: r.size, maxPixels: r.maxPixels });
        if (decoded.fatal !== undefined) throw new Error(`decoding ${entryLabel(chunk[0]!)} and the images after it failed: ${decoded.fatal}`);
        // Consecutive records: one write for the chunk (records of skipped images are zero, and never read).
        writer.write(shards, first, decoded.records);
        decoded.ok.forEach((v, k) => (ok[first + k] = v));
        skipped.count += decoded.problems.length;
        for (const p of decoded.problems) if (skipped.examples.length < 3) skipped.examples.push(p);
        done += chunk.length;
        if (Math.floor(done / 256) !== Math.floor((done - chunk.length) / 256) || done === total) r.onProgress?.(done, total);
      }
    };
    await Promise.all(Array.from({ length: 2 * pool.lanes }, lane));
    const rows = [...ok.keys()].filter((i) => ok[i] === 1);
    writer.finishSplit(name, entries.length, rows, rows.map((i) => entries[i]!.label));
  };
  try {
    for (const [name, entries] of lists) await decodeSplit(name, entries);
    return writer.commit(skipped);
  } catch (err) {
    writer.abandon();
    throw err;
  } finally {
    await pool.close();
  }
}

/**
 * Decode workers, one per core (at most 4): each decodes and resizes whole chunks, so resizing (JavaScript) runs on
 * every core rather than on the loading thread alone. Without the compiled worker script (TypeScript sources, as in
 * the tests) chunks are decoded on this thread, with the same bytes.
 */
class DecodePool {
  private readonly workers: Worker[] = [];
  private readonly waiting = new Map<number, { resolve: (c: DecodedChunk) => void; reject: (e: Error) => void }>();
  private turn = 0;

  constructor() {
    const file = path.join(__dirname, 'decode-worker.js');
    if (!fs.existsSync(file)) return;
    const count = Math.max(1, Math.min(4, os.availableParallelism()));
    for (let i = 0; i < count; i++) {
      const w = new Worker(file);
      w.on('message', (c: DecodedChunk) => {
        this.waiting.get(c.id)?.resolve(c);
        this.waiting.delete(c.id);
      });
      w.on('error', (err) => this.failAll(err));
      w.on('exit', (code) => code !== 0 && this.failAll(new Error(`a decode worker exited with code ${code}`)));
      this.workers.push(w);
    }
  }

  /** Chunks that can usefully be in flight at once. */
  get lanes(): number {
    return Math.max(1, this.workers.length);
  }

  decode(chunk: DecodeChunk): Promise<DecodedChunk> {
    if (this.workers.length === 0) return decodeChunk(chunk);
    return new Promise((resolve, reject) => {
      this.waiting.set(chunk.id, { resolve, reject });
      this.workers[this.turn++ % this.workers.length]!.postMessage(chunk);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }

  private failAll(err: Error): void {
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }
}
