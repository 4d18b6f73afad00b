import { UserError } from '../../util/user-error';

/** A path as the file system spells it: a string, or its bytes when a name in it is not valid UTF-8. */
export type FilePath = string | Buffer;

/** A path for messages: names that are not valid UTF-8 show U+FFFD where their bytes do not decode. */
export function displayPath(file: FilePath): string {
  return typeof file === 'string' ? file : file.toString('utf8');
}

/** An image of a data set as an encoded file (JPEG, PNG, ...). */
export interface FileImageEntry {
  label: number;
  file: FilePath;
}

/** An image of a data set as pixels already decoded (CIFAR's binary records): planar RGB, 8-bit. */
export interface DecodedImageEntry {
  label: number;
  planar: { data: Uint8Array; width: number; height: number };
}

/** Where the images of a data set come from, before decoding: one entry per image, per split. */
export type ImageEntry = FileImageEntry | DecodedImageEntry;

export interface ImageSource {
  /** Short name for messages and cache files, e.g. 'tiny-imagenet-30'. */
  name: string;
  format: 'image-folder' | 'tiny-imagenet' | 'cifar10-binary';
  classNames: string[];
  train: ImageEntry[];
  /** The data set's own validation (or test) split, when it has one. */
  val?: ImageEntry[];
  /** Every source file the entries depend on (the cache is invalidated when any of them changes). */
  files: FilePath[];
  /** What listing the folder left out and why (links that leave it, ...), one line each, reported on every load. */
  notices: string[];
}

export class DataSourceError extends UserError {}

/** Extensions listed as images; what a file really is is decided from its bytes when it is decoded. */
export const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif']);
