import * as fs from 'node:fs';
import * as path from 'node:path';
import { FolderListing } from '../sources/folder-listing';
import {
  CAPTION_SPLITS, CaptionEntry, CaptionIndex, CaptionSource, CaptionSourceError, CaptionSplitName, findFolder, numberedLines, readDataText,
} from './caption-source';

const TOKEN_FILE = 'Flickr8k.token.txt';
const CSV_FILE = 'captions.txt';
/** Images/ in the common re-packaging (Kaggle's), Flicker8k_Dataset/ (sic) in the original download. */
const IMAGE_FOLDERS = ['Images', 'images', 'Flicker8k_Dataset', 'Flickr8k_Dataset'];
const SPLIT_FILES: Record<CaptionSplitName, string> = {
  train: 'Flickr_8k.trainImages.txt', val: 'Flickr_8k.devImages.txt', test: 'Flickr_8k.testImages.txt',
};

const SKIP = {
  tokenLine: { one: `malformed line of ${TOKEN_FILE} (not "<image>#<n><tab><caption>")`, many: `malformed lines of ${TOKEN_FILE} (not "<image>#<n><tab><caption>")` },
  csvLine: { one: `malformed line of ${CSV_FILE} (not "<image>,<caption>")`, many: `malformed lines of ${CSV_FILE} (not "<image>,<caption>")` },
  uncaptioned: { one: 'image that a split file lists but that has no captions', many: 'images that a split file lists but that have no captions' },
};

export function isFlickr8k(root: string): boolean {
  return fs.existsSync(path.join(root, TOKEN_FILE)) || fs.existsSync(path.join(root, CSV_FILE));
}

/**
 * Flickr8k: captions in Flickr8k.token.txt (`<image>#<n>\t<caption>`, the official file) or captions.txt (CSV with an
 * `image,caption` header, the common re-packaging), images in Images/ (or the original Flicker8k_Dataset/), and the
 * official splits in Flickr_8k.{train,dev,test}Images.txt (dev is the validation split). Without split files every
 * captioned image is training data and the loader holds out a seeded fraction. The token file wins when both exist:
 * it is the official one.
 */
export function flickr8kSource(root: string): CaptionSource {
  const listing = new FolderListing(root);
  const imageDir = findFolder(listing, root, IMAGE_FOLDERS);
  if (imageDir === undefined) throw new CaptionSourceError(`${root} has Flickr8k captions but no image folder (${IMAGE_FOLDERS.join('/ or ')}/)`);
  const index = new CaptionIndex(listing);
  const tokenFile = path.join(root, TOKEN_FILE);
  const captionFile = fs.existsSync(tokenFile) ? tokenFile : path.join(root, CSV_FILE);
  const text = readDataText(listing, captionFile);
  if (captionFile === tokenFile) readTokenFile(text, index, listing);
  else readCsvFile(text, index, listing, captionFile);
  if (index.byImage.size === 0) {
    throw new CaptionSourceError(`${captionFile} has no usable captions${listing.notices().length > 0 ? `: ${listing.notices().join('; ')}` : ''}`);
  }

  // The split files name images; the images in none of them (91 in the official set) are not used.
  const lists: Partial<Record<CaptionSplitName, string[]>> = {};
  const splitFiles: string[] = [];
  for (const split of CAPTION_SPLITS) {
    const file = path.join(root, SPLIT_FILES[split]);
    if (!fs.existsSync(file)) continue;
    splitFiles.push(file);
    const names = [...new Set(numberedLines(readDataText(listing, file)).map((l) => l.line.trim()).filter((l) => l !== ''))];
    for (const name of names) if (!index.byImage.has(name)) listing.skip(SKIP.uncaptioned, `${SPLIT_FILES[split]}: ${name}`);
    lists[split] = names;
  }
  refuseSharedImages(root, lists);
  if (splitFiles.length > 0 && lists.train === undefined) {
    // Only dev/test files: training is every other captioned image.
    const held = new Set([...(lists.val ?? []), ...(lists.test ?? [])]);
    lists.train = [...index.byImage.keys()].filter((n) => !held.has(n));
  }
  const splits: Partial<Record<CaptionSplitName, CaptionEntry[]>> = {};
  if (splitFiles.length === 0) splits.train = index.entries(index.byImage.keys(), imageDir);
  else for (const split of CAPTION_SPLITS) if (lists[split] !== undefined) splits[split] = index.entries(lists[split]!, imageDir);
  const all = CAPTION_SPLITS.flatMap((s) => splits[s] ?? []);
  if ((splits.train ?? []).length === 0) throw new CaptionSourceError(`${root}: no training image has both captions and an image file${listing.notices().length > 0 ? ` (${listing.notices().join('; ')})` : ''}`);
  return {
    name: path.basename(path.resolve(root)), format: 'flickr8k', splits,
    files: [captionFile, ...splitFiles, ...all.map((e) => e.file)], notices: listing.notices(),
  };
}

/**
 * Refuses split files that list the same image: an image in the training split and the validation or test split
 * would be trained on and then scored as unseen, and the metrics would flatter the model without a word.
 */
function refuseSharedImages(root: string, lists: Partial<Record<CaptionSplitName, string[]>>): void {
  const listedBy = new Map<string, CaptionSplitName>();
  const shared = new Map<string, string[]>();
  for (const split of CAPTION_SPLITS) {
    for (const name of lists[split] ?? []) {
      const first = listedBy.get(name);
      if (first === undefined) {
        listedBy.set(name, split);
        continue;
      }
      const pair = `${SPLIT_FILES[first]} and ${SPLIT_FILES[split]}`;
      shared.set(pair, [...(shared.get(pair) ?? []), name]);
    }
  }
  if (shared.size === 0) return;
  const described = [...shared].map(([pair, names]) => {
    const shown = names.slice(0, 3).map((n) => JSON.stringify(n)).join(', ');
    return `${pair} both list ${names.length} image${names.length === 1 ? '' : 's'} (${shown}${names.length > 3 ? ', ...' : ''})`;
  });
  throw new CaptionSourceError(`${root}: the split files overlap: ${described.join('; ')}; an image must be in one split only`);
}

function readTokenFile(text: string, index: CaptionIndex, listing: FolderListing): void {
  for (const { line, number } of numberedLines(text)) {
    if (line.trim() === '') continue;
    const tab = line.indexOf('\t');
    const key = tab < 0 ? null : /^(.+)#\d+$/.exec(line.slice(0, tab));
    if (key === null) listing.skip(SKIP.tokenLine, `line ${number}`);
    else index.add(key[1]!, line.slice(tab + 1), `${TOKEN_FILE} line ${number}`);
  }
}

function readCsvFile(text: string, index: CaptionIndex, listing: FolderListing, file: string): void {
  const lines = numberedLines(text).filter((l) => l.line.trim() !== '');
  const header = lines[0]?.line.trim().toLowerCase().replace(/\s*,\s*/, ',');
  if (header !== 'image,caption') throw new CaptionSourceError(`${file}: expected the header 'image,caption', found '${(lines[0]?.line ?? '').slice(0, 60)}'`);
  for (const { line, number } of lines.slice(1)) {
    const comma = line.indexOf(',');
    const caption = comma > 0 ? csvField(line.slice(comma + 1)) : undefined;
    if (caption === undefined) listing.skip(SKIP.csvLine, `line ${number}`);
    else index.add(line.slice(0, comma).trim().replace(/^"(.*)"$/, '$1'), caption, `${CSV_FILE} line ${number}`);
  }
}

/**
 * The caption field of a captions.txt row: quoted as CSV quotes (`"a dog , wet"`, `""` for a quote), or the rest
 * of the line as it is when unquoted (some copies leave commas in captions unquoted). Undefined when a quoted field
 * does not end at its closing quote.
 */
function csvField(rest: string): string | undefined {
  const field = rest.trimStart();
  if (!field.startsWith('"')) return field;
  let out = '';
  for (let i = 1; i < field.length; i++) {
    const c = field[i]!;
    if (c !== '"') {
      out += c;
    } else if (field[i + 1] === '"') {
      out += '"';
      i++;
    } else {
      return field.slice(i + 1).trim() === '' ? out : undefined;
    }
  }
  return undefined; // no closing quote on the line
}
