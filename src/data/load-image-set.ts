import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { resizeToPlanar } from '../export/image-preprocessing';
import { Rng } from '../util/rng';
import { UserError } from '../util/user-error';
import { RecordImageDataset, subsetOf } from './dataset';
import { ImageDecodeError, maxPixelsFromEnvironment, readImageFile, useDecodedImage } from './decode-image';
import { defaultCacheDir, fingerprint } from './image-cache';
import { readRecordCache, RecordCacheWriter, recordFolder, RecordImages, RecordSplit, SplitName } from './record-cache';
import { cifarBinarySource, isCifarBinary } from './sources/cifar-binary';
import { imageFolderSource } from './sources/image-folder';
import { DataSourceError, displayPath, ImageEntry, ImageSource } from './sources/image-source';
import { isTinyImageNet, tinyImageNetSource } from './sources/tiny-imagenet';

export interface ImageSetOptions {
  imageSize: number;
  seed?: number;
  /**
   * Hold out this fraction of the training images (seeded) as the validation split. Without it the data set's own
   * validation split is used, and sets without one hold out 20 %.
   */
  valFraction?: number;
  /** Use at most this many training / validation images (a seeded sample), e.g. for quick runs. */
  trainSize?: number;
  valSize?: number;
  cacheDir?: string;
  /** Skip images with more pixels than this, before decoding them (default: DEEPVISION_MAX_PIXELS, else 50 million). */
  maxPixels?: number;
  /** Called while decoding (done, total); decoding happens only when no valid cache exists. */
  onProgress?: (done: number, total: number) => void;
  /** Called with one line per kind of file left out (unreadable or refused images, links leaving the folder, ...). */
  onSkipped?: (message: string) => void;
}

/** Recognizes the layout of a data folder: Tiny ImageNet, CIFAR-10 binary batches, or class-per-folder images. */
export function openSource(root: string): ImageSource {
  if (!fs.existsSync(root)) throw new DataSourceError(`data folder ${root} does not exist`);
  if (!fs.statSync(root).isDirectory()) throw new DataSourceError(`${root} is not a folder (--data takes 'shapes' or a data folder)`);
  if (isTinyImageNet(root)) return tinyImageNetSource(root);
  if (isCifarBinary(root)) return cifarBinarySource(root);
  return imageFolderSource(root);
}

/**
 * Loads an image data set from a folder, decoded to 8-bit RGB at imageSize x imageSize (shorter side resized, center
 * crop: the preprocessing of `predict` and the web demo). Decoded images are cached in one binary file per data set
 * and size, keyed by every source file's path, size and modification time, so later epochs and runs skip decoding
 * and any change to the files rebuilds the cache. Unreadable images, images that are not raster images and images
 * over the pixel limit are skipped and reported in one line with examples; so are links that leave the folder.
 */
export async function loadImageSet(root: string, o: ImageSetOptions): Promise<{ train: RecordImageDataset; val: RecordImageDataset; source: ImageSource; fromCache: boolean }> {
  const source = openSource(root);
  for (const notice of source.notices) o.onSkipped?.(notice);
  const size = o.imageSize;
  const maxPixels = o.maxPixels ?? maxPixelsFromEnvironment();
  const dir = o.cacheDir ?? defaultCacheDir();
  // The limit is part of the key: raising it must decode the images it skipped before.
  const key = fingerprint(source.files, `${source.format}\n${size}x${size}\nmax ${maxPixels} pixels`);
  let images = readRecordCache(recordFolder(dir, source.name, key));
  const fromCache = images !== undefined;
  if (images === undefined) {
    let writer: RecordCacheWriter;
    try {
      writer = new RecordCacheWriter(recordFolder(dir, source.name, key), source.classNames, size);
    } catch (err) {
      // A cache folder that cannot be written (read-only home, full disk) costs the decoding again next run.
      const temporary = temporaryCacheDir();
      o.onSkipped?.(`note: could not write the image cache in ${dir} (${(err as Error).message.split('\n')[0]}); decoding into ${temporary} for this run`);
      writer = new RecordCacheWriter(recordFolder(temporary, source.name, key), source.classNames, size);
    }
    images = await decodeSource(source, size, maxPixels, writer, o.onProgress);
  }
  if (images.skipped.count > 0) {
    o.onSkipped?.(`skipped ${images.skipped.count} unreadable image${images.skipped.count === 1 ? '' : 's'} (${images.skipped.examples.join('; ')})`);
  }
  const seed = o.seed ?? 0;
  const dataset = (split: RecordSplit, which: string): RecordImageDataset => ({
    name: `${source.name}/${which}`, classNames: images!.classNames, count: split.rows.length, channels: 3, height: size, width: size,
    records: { kind: 'records', shards: split.shards, rows: split.rows }, labels: split.labels,
  });
  let train = dataset(images.splits.train!, 'train');
  let val = images.splits.val === undefined ? undefined : dataset(images.splits.val, 'val');
  if (o.valFraction !== undefined || val === undefined) {
    const fraction = o.valFraction ?? 0.2;
    if (!(fraction > 0 && fraction < 1)) throw new DataSourceError(`the validation fraction must be between 0 and 1, got ${fraction}`);
    const order = new Rng(`split/${seed}`).shuffle([...Array(train.count).keys()]);
    const held = Math.round(order.length * fraction);
    val = subsetOf(train, order.slice(0, held).sort((a, b) => a - b), `${source.name}/val`);
    train = subsetOf(train, order.slice(held).sort((a, b) => a - b));
  }
  if (o.trainSize !== undefined && o.trainSize < train.count) train = sample(train, o.trainSize, `train-sample/${seed}`);
  if (o.valSize !== undefined && o.valSize < val.count) val = sample(val, o.valSize, `val-sample/${seed}`);
  return { train, val, source, fromCache };
}

/** A seeded sample of `count` images, in their order in the set (records are shared, not copied). */
function sample(data: RecordImageDataset, count: number, stream: string): RecordImageDataset {
  const order = new Rng(stream).shuffle([...Array(data.count).keys()]);
  return subsetOf(data, order.slice(0, count).sort((a, b) => a - b));
}

/** A cache folder for this run only, removed when the process exits. */
function temporaryCacheDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-images-'));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Decodes every image of the source into the record cache, a few at a time: each image is resized and written to
 * its record as soon as it is decoded, so memory does not grow with the number of images.
 */
async function decodeSource(source: ImageSource, size: number, maxPixels: number, writer: RecordCacheWriter, onProgress?: (done: number, total: number) => void): Promise<RecordImages> {
  const total = source.train.length + (source.val?.length ?? 0);
  const skipped = { count: 0, examples: [] as string[] };
  let done = 0;
  const decodeSplit = async (name: SplitName, entries: ImageEntry[]): Promise<number> => {
    const image = 3 * size * size;
    const shards = writer.addSplit(name, entries.length);
    const ok = new Uint8Array(entries.length);
    let next = 0;
    // sharp decodes on libuv's thread pool: a few requests in flight keep every core busy.
    const worker = async () => {
      const record = new Uint8Array(image);
      for (let i = next++; i < entries.length; i = next++) {
        const e = entries[i]!;
        const label = 'file' in e ? path.basename(displayPath(e.file)) : 'record';
        try {
          if ('planar' in e) resizeToPlanar(interleave(e.planar), size, size, record);
          else await useDecodedImage(await readable(e.file, label), { label, maxPixels }, (decoded) => resizeToPlanar(decoded, size, size, record));
          writer.write(shards, i, record);
          ok[i] = 1;
        } catch (err) {
          if (!(err instanceof ImageDecodeError) && !(err instanceof UserError)) throw err;
          skipped.count++;
          if (skipped.examples.length < 3) skipped.examples.push(err instanceof ImageDecodeError ? `${label} ${err.reason}` : `${label}: ${err.message}`);
        }
        done++;
        if (done % 256 === 0 || done === total) onProgress?.(done, total);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    const rows = [...ok.keys()].filter((i) => ok[i] === 1);
    writer.finishSplit(name, entries.length, rows, rows.map((i) => entries[i]!.label));
    return rows.length;
  };
  try {
    const kept = await decodeSplit('train', source.train);
    if (source.val !== undefined) await decodeSplit('val', source.val);
    if (kept === 0) throw new DataSourceError(`${source.name}: none of the ${source.train.length} training images could be read (${skipped.examples.join('; ')})`);
    return writer.commit(skipped);
  } catch (err) {
    writer.abandon();
    throw err;
  }
}

/** decodeImage takes a path as a string; a path that is not valid UTF-8 is read here and passed as bytes. */
async function readable(file: string | Buffer, label: string): Promise<string | Uint8Array> {
  return typeof file === 'string' ? file : readImageFile(file, label);
}

function interleave(p: { data: Uint8Array; width: number; height: number }) {
  const plane = p.width * p.height;
  const data = new Uint8Array(plane * 3);
  for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) data[i * 3 + c] = p.data[c * plane + i]!;
  return { width: p.width, height: p.height, channels: 3, data };
}
