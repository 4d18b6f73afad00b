import * as fs from 'node:fs';
import * as path from 'node:path';
import { FolderListing } from '../sources/folder-listing';
import { DataSourceError, FilePath } from '../sources/image-source';
import { tokenize } from '../../portable/tokenize';
import { readRegularText } from '../../util/regular-file';

export type CaptionSplitName = 'train' | 'val' | 'test';
export const CAPTION_SPLITS: readonly CaptionSplitName[] = ['train', 'val', 'test'];

/** One image and all its reference captions, as the data set writes them (tokenized later). */
export interface CaptionEntry {
  file: FilePath;
  captions: string[];
}

/** Where a caption data set's images and captions come from, before decoding. */
export interface CaptionSource {
  /** Short name for messages and cache files, e.g. 'flickr8k'. */
  name: string;
  format: 'flickr8k' | 'coco';
  /**
   * The data set's own splits. A set without a training split of its own (COCO's val2017 alone) gives its images
   * as `train`, and the loader holds out a seeded fraction for validation.
   */
  splits: Partial<Record<CaptionSplitName, CaptionEntry[]>>;
  /** Every file the entries depend on, caption files included (the decoded-image cache is keyed by them). */
  files: FilePath[];
  /** One line per kind of thing left out, with counts and examples, reported on every load. */
  notices: string[];
}

export class CaptionSourceError extends DataSourceError {}

/** 256 MiB: COCO's largest caption file (train2017) is 92 MB; a bigger "caption file" is not one. */
const MAX_CAPTION_FILE_BYTES = 256 * 1024 * 1024;

/** Why something was left out, in the singular and the plural (FolderListing's notice lines). */
interface Reason {
  one: string;
  many: string;
}

const SKIP_CAPTION = {
  noWords: { one: 'caption without any letters', many: 'captions without any letters' },
  missingImage: {
    one: 'image that the captions name but that does not exist (its captions skipped)',
    many: 'images that the captions name but that do not exist (their captions skipped)',
  },
  notPlain: { one: 'caption entry whose image is not a plain file name', many: 'caption entries whose images are not plain file names' },
} satisfies Record<string, Reason>;

/** A name an index file may use: one path component, so that joining it cannot leave its folder. */
function plainName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !/[/\\\0]/.test(name);
}

/**
 * Reads a caption or split file of the data folder as text: it must be a file inside the folder (a link that
 * leaves it is refused, as for images) and under MAX_CAPTION_FILE_BYTES.
 */
export function readDataText(listing: FolderListing, file: string): string {
  const missing = { one: 'caption file that disappeared while listing', many: 'caption files that disappeared while listing' };
  if (listing.file(file, missing) === undefined) throw new CaptionSourceError(`${file} is not a readable file inside the data folder (a link that leaves it is not followed)`);
  const size = fs.statSync(file).size;
  if (size > MAX_CAPTION_FILE_BYTES) throw new CaptionSourceError(`${file} is ${size.toLocaleString('en-US')} bytes, over the ${MAX_CAPTION_FILE_BYTES / 1024 / 1024} MiB a caption file may have`);
  // A byte-order mark (files saved by some Windows editors) is not part of the first image name.
  return readRegularText(file, { what: 'caption file', maxBytes: MAX_CAPTION_FILE_BYTES });
}

/** Captions per image name, in the order the file first names each image; captions without words are counted and left out. */
export class CaptionIndex {
  readonly byImage = new Map<string, string[]>();

  constructor(private readonly listing: FolderListing) {}

  add(image: string, caption: string, where: string): void {
    if (!plainName(image)) {
      this.listing.skip(SKIP_CAPTION.notPlain, where);
      return;
    }
    if (tokenize(caption).length === 0) {
      this.listing.skip(SKIP_CAPTION.noWords, where);
      return;
    }
    const list = this.byImage.get(image);
    if (list) list.push(caption);
    else this.byImage.set(image, [caption]);
  }

  /**
   * The entries for `names` (images of one split, found in `imageDir`): images that do not exist (or are links that
   * leave the folder) are left out with their captions and counted. Names without captions are for the caller.
   */
  entries(names: Iterable<string>, imageDir: string): CaptionEntry[] {
    const out: CaptionEntry[] = [];
    for (const name of names) {
      const captions = this.byImage.get(name);
      if (captions === undefined) continue;
      const file = this.listing.file(path.join(imageDir, name), SKIP_CAPTION.missingImage);
      if (file !== undefined) out.push({ file, captions });
    }
    return out;
  }
}

/** The first of `names` that is a sub-folder of `dir` (links followed only while they stay inside the data folder). */
export function findFolder(listing: FolderListing, dir: string, names: readonly string[]): string | undefined {
  if (!fs.existsSync(dir)) return undefined;
  const folders = listing.folders(dir);
  const name = names.find((n) => folders.includes(n));
  return name === undefined ? undefined : path.join(dir, name);
}

/** Lines of a text file, trailing white space and carriage returns removed, with their 1-based line numbers. */
export function numberedLines(text: string): { line: string; number: number }[] {
  return text.split('\n').map((line, i) => ({ line: line.replace(/\s+$/, ''), number: i + 1 }));
}
