import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataSourceError, IMAGE_EXTENSIONS, ImageEntry, ImageSource } from './image-source';

export function isTinyImageNet(root: string): boolean {
  return fs.existsSync(path.join(root, 'wnids.txt')) && fs.existsSync(path.join(root, 'train'));
}

function readLines(file: string): string[] {
  return fs.readFileSync(file, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
}

/**
 * The official Tiny ImageNet layout: wnids.txt (the classes), words.txt (wnid -> names), train/<wnid>/images/*,
 * val/images/* labelled by val/val_annotations.txt. Class names are the first name in words.txt ("goldfish" for
 * "goldfish, Carassius auratus"), or the wnid when words.txt lacks it.
 */
export function tinyImageNetSource(root: string): ImageSource {
  const wnids = readLines(path.join(root, 'wnids.txt'));
  if (wnids.length < 2) throw new DataSourceError(`${root}/wnids.txt lists ${wnids.length} classes`);
  const words = new Map<string, string>();
  const wordsFile = path.join(root, 'words.txt');
  if (fs.existsSync(wordsFile)) {
    for (const line of readLines(wordsFile)) {
      const [wnid, names] = line.split('\t');
      if (wnid && names) words.set(wnid, names.split(',')[0]!.trim());
    }
  }
  const classNames = wnids.map((w) => words.get(w) ?? w);
  const train: ImageEntry[] = [];
  for (const [label, wnid] of wnids.entries()) {
    const dir = path.join(root, 'train', wnid, 'images');
    if (!fs.existsSync(dir)) throw new DataSourceError(`${root}: train/${wnid}/images is missing (wnids.txt lists ${wnid})`);
    for (const f of fs.readdirSync(dir).sort()) if (IMAGE_EXTENSIONS.has(path.extname(f).toLowerCase())) train.push({ label, file: path.join(dir, f) });
  }
  let val: ImageEntry[] | undefined;
  const annotations = path.join(root, 'val', 'val_annotations.txt');
  if (fs.existsSync(annotations)) {
    const index = new Map(wnids.map((w, i) => [w, i]));
    val = [];
    for (const line of readLines(annotations)) {
      const [file, wnid] = line.split('\t');
      const label = index.get(wnid ?? '');
      if (!file || label === undefined) continue;
      val.push({ label, file: path.join(root, 'val', 'images', file) });
    }
  }
  return { name: path.basename(path.resolve(root)), format: 'tiny-imagenet', classNames, train, val, files: [...train, ...(val ?? [])].map((e) => e.file!) };
}
