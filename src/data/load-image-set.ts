import * as fs from 'node:fs';
import * as path from 'node:path';
import { Rng } from '../util/rng';
import { RecordImageDataset, subsetOf } from './dataset';
import { maxPixelsFromEnvironment } from './decode-image';
import { decodeToRecords, recordDataset } from './decode-to-records';
import { defaultCacheDir, fingerprint } from './image-cache';
import { openImageSource } from './kinds';
import { DataSourceError, ImageSource } from './sources/image-source';

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

/**
 * Loads an image data set from a folder, decoded to 8-bit RGB at imageSize x imageSize (shorter side resized, center
 * crop: the preprocessing of `predict` and the web demo). Decoded images are cached in one binary file per data set
 * and size, keyed by every source file's path, size and modification time, so later epochs and runs skip decoding
 * and any change to the files rebuilds the cache. Unreadable images, images that are not raster images and images
 * over the pixel limit are skipped and reported in one line with examples; so are links that leave the folder.
 */
export async function loadImageSet(root: string, o: ImageSetOptions): Promise<{ train: RecordImageDataset; val: RecordImageDataset; source: ImageSource; fromCache: boolean }> {
  const source = openImageSource(root);
  for (const notice of source.notices) o.onSkipped?.(notice);
  const size = o.imageSize;
  const maxPixels = o.maxPixels ?? maxPixelsFromEnvironment();
  // The limit is part of the key: raising it must decode the images it skipped before.
  const key = fingerprint(source.files, `${source.format}\n${size}x${size}\nmax ${maxPixels} pixels`);
  const decoded = await decodeToRecords({
    name: source.name, key, cacheDir: o.cacheDir ?? defaultCacheDir(), classNames: source.classNames, size,
    splits: { train: source.train, val: source.val }, maxPixels, onProgress: o.onProgress, onNotice: o.onSkipped,
  });
  const images = decoded.images;
  const fromCache = decoded.fromCache;
  if (images.splits.train!.rows.length === 0) {
    throw new DataSourceError(`${source.name}: none of the ${source.train.length} training images could be read (${images.skipped.examples.join('; ')})`);
  }
  if (images.skipped.count > 0) {
    o.onSkipped?.(`skipped ${images.skipped.count} unreadable image${images.skipped.count === 1 ? '' : 's'} (${images.skipped.examples.join('; ')})`);
  }
  const seed = o.seed ?? 0;
  let train = recordDataset(images, 'train', `${source.name}/train`);
  let val = images.splits.val === undefined ? undefined : recordDataset(images, 'val', `${source.name}/val`);
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

