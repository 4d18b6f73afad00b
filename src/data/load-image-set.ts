import * as fs from 'node:fs';
import * as path from 'node:path';
import { resizeToPlanar } from '../export/image-preprocessing';
import { Rng } from '../util/rng';
import type { ImageDataset } from './dataset';
import { ImageDecodeError, maxPixelsFromEnvironment, readImageFile, useDecodedImage } from './decode-image';
import { CachedImages, CachedSplit, cacheFile, defaultCacheDir, fingerprint, readCache, writeCache } from './image-cache';
import { selectImages, sharedBytes } from './dataset';
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
export async function loadImageSet(root: string, o: ImageSetOptions): Promise<{ train: ImageDataset; val: ImageDataset; source: ImageSource; fromCache: boolean }> {
  const source = openSource(root);
  for (const notice of source.notices) o.onSkipped?.(notice);
  const size = o.imageSize;
  const maxPixels = o.maxPixels ?? maxPixelsFromEnvironment();
  const dir = o.cacheDir ?? defaultCacheDir();
  // The limit is part of the key: raising it must decode the images it skipped before.
  const file = cacheFile(dir, source.name, fingerprint(source.files, `${source.format}\n${size}x${size}\nmax ${maxPixels} pixels`));
  let images = readCache(file);
  const fromCache = images !== undefined;
  if (images === undefined) {
    images = await decodeSource(source, size, maxPixels, o.onProgress);
    try {
      writeCache(file, images);
    } catch (err) {
      // A cache that cannot be written (read-only home, full disk) costs time, not correctness.
      o.onSkipped?.(`note: could not write the image cache (${(err as Error).message}); the next run decodes again`);
    }
  }
  if (images.skipped.count > 0) {
    o.onSkipped?.(`skipped ${images.skipped.count} unreadable image${images.skipped.count === 1 ? '' : 's'} (${images.skipped.examples.join('; ')})`);
  }
  const seed = o.seed ?? 0;
  let trainSplit = images.train;
  let valSplit = images.val;
  if (o.valFraction !== undefined || valSplit === undefined) {
    const fraction = o.valFraction ?? 0.2;
    if (!(fraction > 0 && fraction < 1)) throw new DataSourceError(`the validation fraction must be between 0 and 1, got ${fraction}`);
    const order = new Rng(`split/${seed}`).shuffle([...Array(trainSplit.labels.length).keys()]);
    const held = Math.round(order.length * fraction);
    const image = 3 * size * size;
    valSplit = selectImages(trainSplit.pixels, trainSplit.labels, image, order.slice(0, held).sort((a, b) => a - b));
    trainSplit = selectImages(trainSplit.pixels, trainSplit.labels, image, order.slice(held).sort((a, b) => a - b));
  }
  if (o.trainSize !== undefined && o.trainSize < trainSplit.labels.length) trainSplit = sample(trainSplit, o.trainSize, `train-sample/${seed}`, size);
  if (o.valSize !== undefined && o.valSize < valSplit.labels.length) valSplit = sample(valSplit, o.valSize, `val-sample/${seed}`, size);
  const dataset = (split: CachedSplit, which: string): ImageDataset => ({
    name: `${source.name}/${which}`, classNames: images!.classNames, count: split.labels.length, channels: 3, height: size, width: size,
    pixels: split.pixels, labels: split.labels,
  });
  return { train: dataset(trainSplit, 'train'), val: dataset(valSplit, 'val'), source, fromCache };
}

function sample(split: CachedSplit, count: number, stream: string, size: number): CachedSplit {
  const order = new Rng(stream).shuffle([...Array(split.labels.length).keys()]);
  return selectImages(split.pixels, split.labels, 3 * size * size, order.slice(0, count).sort((a, b) => a - b));
}

async function decodeSource(source: ImageSource, size: number, maxPixels: number, onProgress?: (done: number, total: number) => void): Promise<CachedImages> {
  const total = source.train.length + (source.val?.length ?? 0);
  const skipped = { count: 0, examples: [] as string[] };
  let done = 0;
  const decodeSplit = async (entries: ImageEntry[]): Promise<CachedSplit> => {
    const image = 3 * size * size;
    const pixels = new Uint8Array(entries.length * image);
    const ok = new Uint8Array(entries.length);
    let next = 0;
    // sharp decodes on libuv's thread pool: a few requests in flight keep every core busy.
    const worker = async () => {
      for (let i = next++; i < entries.length; i = next++) {
        const e = entries[i]!;
        const name = 'file' in e ? path.basename(displayPath(e.file)) : 'record';
        try {
          const into = pixels.subarray(i * image, (i + 1) * image);
          if ('planar' in e) resizeToPlanar(interleave(e.planar), size, size, into);
          else await useDecodedImage(await readable(e.file, name), { label: name, maxPixels }, (decoded) => resizeToPlanar(decoded, size, size, into));
          ok[i] = 1;
        } catch (err) {
          skipped.count++;
          if (skipped.examples.length < 3) skipped.examples.push(err instanceof ImageDecodeError ? `${name} ${err.reason}` : `${name}: ${(err as Error).message}`);
        }
        done++;
        if (done % 256 === 0 || done === total) onProgress?.(done, total);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    const kept = [...ok.keys()].filter((i) => ok[i] === 1);
    const out: CachedSplit = { pixels: sharedBytes(kept.length * image), labels: new Int32Array(kept.length) };
    kept.forEach((from, to) => {
      out.pixels.set(pixels.subarray(from * image, (from + 1) * image), to * image);
      out.labels[to] = entries[from]!.label;
    });
    return out;
  };
  const train = await decodeSplit(source.train);
  const val = source.val ? await decodeSplit(source.val) : undefined;
  if (train.labels.length === 0) throw new DataSourceError(`${source.name}: none of the ${source.train.length} training images could be read (${skipped.examples.join('; ')})`);
  return { classNames: source.classNames, height: size, width: size, train, val, skipped };
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
