/**
 * Image data sets as types: held in memory, or as records on disk. No Node imports: the page's type check reads
 * this file (dataset.ts has the functions that read them).
 */
import type { PixelSource } from './pixel-source';

/** What every image classification data set has: its images' shape, labels, optional captions. */
interface ImageSetShape {
  name: string;
  classNames: string[];
  count: number;
  channels: number;
  height: number;
  width: number;
  labels: Int32Array;
  captions?: string[];
}

/**
 * A data set held in memory: 8-bit RGB images stored NCHW (compact: a 10,000-image 64x64 set is 123 MB as bytes,
 * four times that as floats). Generated and small sets.
 */
export interface InMemoryImageDataset extends ImageSetShape {
  /** count x channels x height x width bytes. */
  pixels: Uint8Array;
  records?: undefined;
}

/** A data set whose decoded images stay on disk in record files (the image cache), read a batch at a time. */
export interface RecordImageDataset extends ImageSetShape {
  records: Extract<PixelSource, { kind: 'records' }>;
  pixels?: undefined;
}

export type ImageDataset = InMemoryImageDataset | RecordImageDataset;

/** Per-channel normalization applied when a batch is assembled: (x / 255 - mean) / std. */
export interface Normalization {
  mean: number[];
  std: number[];
}
