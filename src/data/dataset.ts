import type { Hash } from 'node:crypto';
import * as path from 'node:path';
import { updateHash } from '../util/hash-bytes';
import type { ImageDataset, Normalization, RecordImageDataset } from './image-dataset';
import { PixelSource, selectSource } from './pixel-source';
import { openPixelReader, PixelReader, sharedReader } from './pixel-store';

export type { ImageDataset, InMemoryImageDataset, Normalization, RecordImageDataset } from './image-dataset';

/** Bytes of one image. */
function imageBytesOf(data: ImageDataset): number {
  return data.channels * data.height * data.width;
}

/** Where the images of a data set are, as worker threads receive it. */
export function pixelSourceOf(data: ImageDataset): PixelSource {
  return data.records ?? { kind: 'memory', pixels: data.pixels };
}

/** The images at `indices` as a set of their own: copied when in memory, records shared. */
export function subsetOf<T extends ImageDataset>(data: T, indices: readonly number[], name = data.name): T {
  const labels = Int32Array.from(indices, (i) => data.labels[i]!);
  const source = selectSource(pixelSourceOf(data), imageBytesOf(data), indices, sharedBytes);
  const images = source.kind === 'memory' ? { pixels: source.pixels, records: undefined } : { records: source, pixels: undefined };
  return { ...data, name, count: indices.length, labels, captions: undefined, ...images };
}

/**
 * Feeds what identifies a set's images to `hash`, a piece at a time: the bytes of a set in memory; for records, the
 * shard files (named by the image cache's key, which covers every source file) and the rows taken from them.
 */
export function hashImages(hash: Hash, data: ImageDataset): Hash {
  if (data.pixels !== undefined) return updateHash(hash, data.pixels);
  // The cache folder's name holds the key of its source files; the shard's own name is the same in every cache.
  hash.update(JSON.stringify(data.records.shards.map((s) => [path.basename(path.dirname(s.file)), path.basename(s.file), s.slots])));
  return updateHash(hash, new Uint8Array(data.records.rows.buffer, data.records.rows.byteOffset, data.records.rows.byteLength));
}

/** Every image of a set as one buffer (count x image bytes): for small sets only (tests, a gallery's few images). */
export function readAllPixels(data: ImageDataset): Uint8Array {
  if (data.pixels !== undefined) return data.pixels;
  const out = new Uint8Array(data.count * imageBytesOf(data));
  readerOf(data).gather(Array.from({ length: data.count }, (_, i) => i), out);
  return out;
}

/** A reader of the images of `data`, shared by every caller (see sharedReader). */
export function readerOf(data: ImageDataset): PixelReader {
  return data.records !== undefined ? sharedReader(data.records, imageBytesOf(data)) : openPixelReader(pixelSourceOf(data), imageBytesOf(data));
}

/** Bytes in a SharedArrayBuffer, which batch worker threads read without a copy. */
function sharedBytes(length: number): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(length));
}


/** Fills `out` with the normalized images at `indices` (NCHW float32) and `labels` with their labels. */
export function fillBatch(data: ImageDataset, indices: ArrayLike<number>, norm: Normalization, out: Float32Array, labels: BigInt64Array): void {
  const plane = data.height * data.width;
  const image = data.channels * plane;
  const scale = norm.std.map((s) => 1 / (255 * s));
  const shift = norm.mean.map((m, c) => -m / norm.std[c]!);
  // In memory, images are read where they are; from records, a batch's bytes are gathered first.
  let pixels: Uint8Array;
  let position: (b: number) => number;
  if (data.pixels !== undefined) {
    pixels = data.pixels;
    position = (b) => indices[b]! * image;
  } else {
    pixels = new Uint8Array(indices.length * image);
    readerOf(data).gather(indices, pixels);
    position = (b) => b * image;
  }
  for (let b = 0; b < indices.length; b++) {
    const src = position(b);
    const dst = b * image;
    for (let c = 0; c < data.channels; c++) {
      const k = scale[c]!;
      const o = shift[c]!;
      const from = src + c * plane;
      const to = dst + c * plane;
      for (let i = 0; i < plane; i++) out[to + i] = pixels[from + i]! * k + o;
    }
    labels[b] = BigInt(data.labels[indices[b]!]!);
  }
}

/** Mean and standard deviation per channel over the whole set (in [0, 1] units), for normalization. */
export function channelStatistics(data: ImageDataset): Normalization {
  const plane = data.height * data.width;
  const image = data.channels * plane;
  const sums = new Float64Array(data.channels);
  const squares = new Float64Array(data.channels);
  // Read in chunks of images, so that a set on disk is never held whole.
  const chunk = Math.max(1, Math.min(data.count, Math.floor((16 << 20) / image)));
  const bytes = data.pixels ?? new Uint8Array(chunk * image);
  for (let first = 0; first < data.count; first += chunk) {
    const n = Math.min(chunk, data.count - first);
    if (data.pixels === undefined) readerOf(data).gather(Array.from({ length: n }, (_, i) => first + i), bytes);
    const base = data.pixels === undefined ? -first * image : 0;
    for (let m = first; m < first + n; m++) {
      for (let c = 0; c < data.channels; c++) {
        const start = base + (m * data.channels + c) * plane;
        let s = 0;
        let q = 0;
        for (let i = 0; i < plane; i++) {
          const v = bytes[start + i]! / 255;
          s += v;
          q += v * v;
        }
        sums[c] = sums[c]! + s;
        squares[c] = squares[c]! + q;
      }
    }
  }
  const total = data.count * plane;
  const mean = Array.from(sums, (s) => s / total);
  const std = Array.from(squares, (q, c) => Math.sqrt(Math.max(q / total - mean[c]! ** 2, 1e-12)));
  return { mean, std };
}
