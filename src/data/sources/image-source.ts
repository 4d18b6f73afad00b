/** Where the images of a data set come from, before decoding: one entry per image, per split. */
export interface ImageEntry {
  label: number;
  /** An encoded image file (JPEG, PNG, ...). */
  file?: string;
  /** Or pixels already decoded (CIFAR's binary records): planar RGB, 8-bit. */
  planar?: { data: Uint8Array; width: number; height: number };
}

export interface ImageSource {
  /** Short name for messages and cache files, e.g. 'tiny-imagenet-30'. */
  name: string;
  format: 'image-folder' | 'tiny-imagenet' | 'cifar10-binary';
  classNames: string[];
  train: ImageEntry[];
  /** The data set's own validation (or test) split, when it has one. */
  val?: ImageEntry[];
  /** Every source file the entries depend on (the cache is invalidated when any of them changes). */
  files: string[];
}

export class DataSourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

export const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif', '.bmp']);
