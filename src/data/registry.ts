import type { ImageDataset } from './dataset';
import { generateShapes } from './shapes';

export interface DataOptions {
  trainSize?: number;
  valSize?: number;
  imageSize?: number;
  seed?: number;
}

/**
 * The data sets `--data` names. `shapes` is generated on the spot (train and validation from separate seeded
 * streams); image folders and the standard sets join here.
 */
export function loadData(name: string, options: DataOptions = {}): { train: ImageDataset; val: ImageDataset } {
  switch (name) {
    case 'shapes': {
      const imageSize = options.imageSize ?? 32;
      const seed = options.seed ?? 0;
      return {
        train: generateShapes({ count: options.trainSize ?? 10000, imageSize, seed: 2 * seed }),
        val: generateShapes({ count: options.valSize ?? 2000, imageSize, seed: 2 * seed + 1 }),
      };
    }
    default:
      throw new Error(`unknown data set '${name}' (available: shapes)`);
  }
}
