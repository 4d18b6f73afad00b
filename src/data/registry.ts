import type { ImageDataset } from './dataset';
import { isGeneratedData } from './kinds';
import { loadImageSet } from './load-image-set';
import { generateShapes } from './shapes';

export interface DataOptions {
  /** Shapes: images to generate (default 10,000 / 2,000). Folders: at most this many (a seeded sample). */
  trainSize?: number;
  valSize?: number;
  imageSize?: number;
  seed?: number;
  /** Folders: hold out this fraction of the training images as validation (default: the set's own split, else 0.2). */
  valFraction?: number;
  cacheDir?: string;
  /** Folders: skip images with more pixels than this, before decoding (default: DEEPVISION_MAX_PIXELS, else 50 million). */
  maxPixels?: number;
  onProgress?: (done: number, total: number) => void;
  onNotice?: (message: string) => void;
}

/**
 * The data sets `--data` names: `shapes` (generated on the spot, train and validation from separate seeded
 * streams), or a folder: Tiny ImageNet's layout, CIFAR-10's binary batches, or one sub-folder per class (with or
 * without train/ and val/ or test/ splits).
 */
export async function loadData(name: string, options: DataOptions = {}): Promise<{ train: ImageDataset; val: ImageDataset }> {
  const imageSize = options.imageSize ?? 32;
  const seed = options.seed ?? 0;
  if (isGeneratedData(name)) {
    return {
      train: generateShapes({ count: options.trainSize ?? 10000, imageSize, seed: 2 * seed }),
      val: generateShapes({ count: options.valSize ?? 2000, imageSize, seed: 2 * seed + 1 }),
    };
  }
  const { train, val } = await loadImageSet(name, {
    imageSize, seed, valFraction: options.valFraction, trainSize: options.trainSize, valSize: options.valSize, cacheDir: options.cacheDir,
    maxPixels: options.maxPixels, onProgress: options.onProgress, onSkipped: options.onNotice,
  });
  return { train, val };
}
