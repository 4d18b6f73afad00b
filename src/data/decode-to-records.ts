/**
 * The one decode path of image and caption data: every image of a source's splits decoded, resized to the model's
 * square input and written to its record in the image cache as soon as it is decoded (record-cache.ts), or the
 * cache read when it is there. Memory holds only the images being decoded.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { resizeToPlanar } from '../export/image-preprocessing';
import { UserError } from '../util/user-error';
import type { RecordImageDataset } from './dataset';
import { ImageDecodeError, readImageFile, useDecodedImage } from './decode-image';
import { readRecordCache, RecordCacheWriter, recordFolder, RecordImages, SplitName } from './record-cache';
import { displayPath, ImageEntry } from './sources/image-source';

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
    const temporary = temporaryCacheDir();
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

/** A cache folder for this run only, removed when the process exits. */
function temporaryCacheDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-images-'));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function decodeSplits(r: DecodeRequest, writer: RecordCacheWriter): Promise<RecordImages> {
  const size = r.size;
  const lists = (['train', 'val'] as const).flatMap((name) => (r.splits[name] === undefined ? [] : [[name, r.splits[name]] as const]));
  const total = lists.reduce((n, [, entries]) => n + entries.length, 0);
  const skipped = { count: 0, examples: [] as string[] };
  let done = 0;
  const decodeSplit = async (name: SplitName, entries: readonly ImageEntry[]): Promise<void> => {
    const shards = writer.addSplit(name, entries.length);
    const ok = new Uint8Array(entries.length);
    let next = 0;
    // sharp decodes on libuv's thread pool: a few requests in flight keep every core busy.
    const worker = async () => {
      const record = new Uint8Array(3 * size * size);
      for (let i = next++; i < entries.length; i = next++) {
        const e = entries[i]!;
        const label = 'file' in e ? path.basename(displayPath(e.file)) : 'record';
        try {
          if ('planar' in e) resizeToPlanar(interleave(e.planar), size, size, record);
          else {
            const source = typeof e.file === 'string' ? e.file : await readImageFile(e.file, label, r.maxPixels);
            await useDecodedImage(source, { label, maxPixels: r.maxPixels }, (decoded) => resizeToPlanar(decoded, size, size, record));
          }
          writer.write(shards, i, record);
          ok[i] = 1;
        } catch (err) {
          // Images that cannot be used are skipped and reported; anything else (a full disk) stops the run.
          if (!(err instanceof UserError)) throw err;
          skipped.count++;
          if (skipped.examples.length < 3) skipped.examples.push(err instanceof ImageDecodeError ? `${label} ${err.reason}` : `${label}: ${err.message}`);
        }
        done++;
        if (done % 256 === 0 || done === total) r.onProgress?.(done, total);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    const rows = [...ok.keys()].filter((i) => ok[i] === 1);
    writer.finishSplit(name, entries.length, rows, rows.map((i) => entries[i]!.label));
  };
  try {
    for (const [name, entries] of lists) await decodeSplit(name, entries);
    return writer.commit(skipped);
  } catch (err) {
    writer.abandon();
    throw err;
  }
}

function interleave(p: { data: Uint8Array; width: number; height: number }) {
  const plane = p.width * p.height;
  const data = new Uint8Array(plane * 3);
  for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) data[i * 3 + c] = p.data[c * plane + i]!;
  return { width: p.width, height: p.height, channels: 3, data };
}
