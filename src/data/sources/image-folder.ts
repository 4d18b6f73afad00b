import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataSourceError, IMAGE_EXTENSIONS, ImageEntry, ImageSource } from './image-source';

const VAL_SPLIT_NAMES = ['val', 'valid', 'validation', 'test'];

/** Image files under a folder (any depth), sorted so that every run sees the same order. */
function imagesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (e.name.startsWith('.')) continue;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && IMAGE_EXTENSIONS.has(path.extname(e.name).toLowerCase())) out.push(p);
    }
  };
  walk(dir);
  return out;
}

function classFolders(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
}

function entriesOf(dir: string, classNames: string[]): ImageEntry[] {
  const entries: ImageEntry[] = [];
  for (const [label, name] of classNames.entries()) {
    const classDir = path.join(dir, name);
    if (!fs.existsSync(classDir)) continue;
    for (const file of imagesUnder(classDir)) entries.push({ label, file });
  }
  return entries;
}

/**
 * A folder with one sub-folder per class (`cats/`, `dogs/`, ...), or with `train/` and `val/` (or `test/`)
 * folders that each hold one sub-folder per class (the CIFAR-10 JPEG tree). Class names are the folder names,
 * sorted; images may sit at any depth inside their class folder.
 */
export function imageFolderSource(root: string): ImageSource {
  const top = classFolders(root);
  const trainDir = top.includes('train') ? path.join(root, 'train') : undefined;
  const valName = VAL_SPLIT_NAMES.find((n) => top.includes(n));
  let classNames: string[];
  let train: ImageEntry[];
  let val: ImageEntry[] | undefined;
  if (trainDir !== undefined) {
    classNames = classFolders(trainDir);
    train = entriesOf(trainDir, classNames);
    if (valName !== undefined) {
      const valDir = path.join(root, valName);
      const unknown = classFolders(valDir).filter((c) => !classNames.includes(c));
      if (unknown.length > 0) throw new DataSourceError(`${valDir} has classes that train/ lacks: ${unknown.slice(0, 5).join(', ')}`);
      val = entriesOf(valDir, classNames);
    }
  } else {
    classNames = top;
    train = entriesOf(root, classNames);
  }
  if (classNames.length < 2) throw new DataSourceError(`${root}: an image folder needs one sub-folder per class (at least two), found ${classNames.length}`);
  if (train.length === 0) throw new DataSourceError(`${root}: no images found (looked for ${[...IMAGE_EXTENSIONS].join(', ')})`);
  const empty = classNames.filter((_, i) => !train.some((e) => e.label === i));
  if (empty.length > 0) throw new DataSourceError(`${root}: class folders without images: ${empty.slice(0, 5).join(', ')}`);
  return {
    name: path.basename(path.resolve(root)), format: 'image-folder', classNames, train, val,
    files: [...train, ...(val ?? [])].map((e) => e.file!),
  };
}
