import * as fs from 'node:fs';
import * as path from 'node:path';
import { FolderListing } from './folder-listing';
import { DataSourceError, FileImageEntry, ImageSource } from './image-source';
import { readRegularText } from '../../util/regular-file';

export function isTinyImageNet(root: string): boolean {
  return fs.existsSync(path.join(root, 'wnids.txt')) && fs.existsSync(path.join(root, 'train'));
}

function readLines(file: string): string[] {
  return readRegularText(file, { what: 'index file', maxBytes: 256 * 1024 * 1024 }).split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
}

/** A name the index files may use: one path component, so that joining it cannot leave its folder. */
const plainName = (name: string) => name !== '.' && name !== '..' && !/[/\\\0]/.test(name);

const SKIP_ANNOTATION = {
  missing: { one: 'image that val_annotations.txt lists but that does not exist', many: 'images that val_annotations.txt lists but that do not exist' },
  notPlain: { one: 'val_annotations.txt entry that is not a plain file name', many: 'val_annotations.txt entries that are not plain file names' },
};

/**
 * The official Tiny ImageNet layout: wnids.txt (the classes), words.txt (wnid -> names), train/<wnid>/images/*,
 * val/images/* labelled by val/val_annotations.txt. Class names are the first name in words.txt ("goldfish" for
 * "goldfish, Carassius auratus"), or the wnid when words.txt lacks it.
 */
export function tinyImageNetSource(root: string): ImageSource {
  const listing = new FolderListing(root);
  const wnids = readLines(path.join(root, 'wnids.txt'));
  if (wnids.length < 2) throw new DataSourceError(`${root}/wnids.txt lists ${wnids.length} classes`);
  const odd = wnids.find((w) => !plainName(w));
  if (odd !== undefined) throw new DataSourceError(`${root}/wnids.txt: '${odd}' is not a folder name`);
  const words = new Map<string, string>();
  const wordsFile = path.join(root, 'words.txt');
  if (fs.existsSync(wordsFile)) {
    for (const line of readLines(wordsFile)) {
      const [wnid, names] = line.split('\t');
      if (wnid && names) words.set(wnid, names.split(',')[0]!.trim());
    }
  }
  const classNames = wnids.map((w) => words.get(w) ?? w);
  const train: FileImageEntry[] = [];
  for (const [label, wnid] of wnids.entries()) {
    const dir = path.join(root, 'train', wnid, 'images');
    if (!fs.existsSync(dir)) throw new DataSourceError(`${root}: train/${wnid}/images is missing (wnids.txt lists ${wnid})`);
    for (const file of listing.images(dir, false)) train.push({ label, file });
  }
  let val: FileImageEntry[] | undefined;
  const annotations = path.join(root, 'val', 'val_annotations.txt');
  if (fs.existsSync(annotations)) {
    const index = new Map(wnids.map((w, i) => [w, i]));
    val = [];
    for (const line of readLines(annotations)) {
      const [name, wnid] = line.split('\t');
      const label = index.get(wnid ?? '');
      if (!name || label === undefined) continue;
      if (!plainName(name)) {
        listing.skip(SKIP_ANNOTATION.notPlain, name);
        continue;
      }
      const file = listing.file(path.join(root, 'val', 'images', name), SKIP_ANNOTATION.missing);
      if (file !== undefined) val.push({ label, file });
    }
  }
  return {
    name: path.basename(path.resolve(root)), format: 'tiny-imagenet', classNames, train, val,
    files: [...train, ...(val ?? [])].map((e) => e.file), notices: listing.notices(),
  };
}
