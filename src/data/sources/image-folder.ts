import * as path from 'node:path';
import { FolderListing } from './folder-listing';
import { DataSourceError, IMAGE_EXTENSIONS, FileImageEntry, ImageSource } from './image-source';

const VAL_SPLIT_NAMES = ['val', 'valid', 'validation', 'test'];

function entriesOf(listing: FolderListing, dir: string, classNames: string[]): FileImageEntry[] {
  const entries: FileImageEntry[] = [];
  for (const [label, name] of classNames.entries()) {
    // A class missing from this split lists nothing.
    for (const file of listing.images(path.join(dir, name), true)) entries.push({ label, file });
  }
  return entries;
}

/**
 * A folder with one sub-folder per class (`cats/`, `dogs/`, ...), or with `train/` and `val/` (or `test/`)
 * folders that each hold one sub-folder per class (the CIFAR-10 JPEG tree). Class names are the folder names,
 * sorted; images may sit at any depth inside their class folder. Links are followed while they stay inside the
 * folder (see FolderListing).
 */
export function imageFolderSource(root: string): ImageSource {
  const listing = new FolderListing(root);
  const top = listing.folders(root);
  const trainDir = top.includes('train') ? path.join(root, 'train') : undefined;
  const valName = VAL_SPLIT_NAMES.find((n) => top.includes(n));
  let classNames: string[];
  let train: FileImageEntry[];
  let val: FileImageEntry[] | undefined;
  if (trainDir !== undefined) {
    classNames = listing.folders(trainDir);
    train = entriesOf(listing, trainDir, classNames);
    if (valName !== undefined) {
      const valDir = path.join(root, valName);
      const unknown = listing.folders(valDir).filter((c) => !classNames.includes(c));
      if (unknown.length > 0) throw new DataSourceError(`${valDir} has classes that train/ lacks: ${unknown.slice(0, 5).join(', ')}`);
      val = entriesOf(listing, valDir, classNames);
    }
  } else {
    classNames = top;
    train = entriesOf(listing, root, classNames);
  }
  if (classNames.length < 2) throw new DataSourceError(`${root}: an image folder needs one sub-folder per class (at least two), found ${classNames.length}`);
  if (train.length === 0) throw new DataSourceError(`${root}: no images found (looked for ${[...IMAGE_EXTENSIONS].join(', ')})`);
  const empty = classNames.filter((_, i) => !train.some((e) => e.label === i));
  if (empty.length > 0) throw new DataSourceError(`${root}: class folders without images: ${empty.slice(0, 5).join(', ')}`);
  return {
    name: path.basename(path.resolve(root)), format: 'image-folder', classNames, train, val,
    files: [...train, ...(val ?? [])].map((e) => e.file), notices: listing.notices(),
  };
}
