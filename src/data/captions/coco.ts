import * as fs from 'node:fs';
import * as path from 'node:path';
import { FolderListing } from '../sources/folder-listing';
import { CAPTION_SPLITS, CaptionEntry, CaptionIndex, CaptionSource, CaptionSourceError, CaptionSplitName, findFolder, readDataText } from './caption-source';

const ANNOTATIONS = 'annotations';
const CAPTION_FILE = /^captions_(.+)\.json$/;

const SKIP = {
  ignored: { one: 'caption file not used', many: 'caption files not used' },
  badImage: { one: 'malformed image record (no integer "id" or string "file_name", or a repeated id)', many: 'malformed image records (no integer "id" or string "file_name", or a repeated id)' },
  badAnnotation: { one: 'malformed caption record (no "image_id" or string "caption")', many: 'malformed caption records (no "image_id" or string "caption")' },
  unknownImage: { one: 'caption for an image id the file does not list', many: 'captions for image ids the file does not list' },
  uncaptioned: { one: 'image record without captions', many: 'image records without captions' },
};

export function isCoco(root: string): boolean {
  try {
    return fs.readdirSync(path.join(root, ANNOTATIONS)).some((n) => CAPTION_FILE.test(n));
  } catch {
    return false; // no annotations/ folder (or one that cannot be listed): not this layout
  }
}

/** The split a caption file holds, from its name: captions_train2017.json, captions_val2014.json, ... (others: train). */
function splitOf(stem: string): CaptionSplitName {
  return stem.startsWith('val') ? 'val' : stem.startsWith('test') ? 'test' : 'train';
}

/**
 * COCO captions: annotations/captions_<split><year>.json (`images` with `id` and `file_name`, `annotations` with
 * `image_id` and `caption`) and the images in <split><year>/ (or images/<split><year>/, or images/). One caption file
 * per split; where several name the same split, the one with the plain official name is used (the mini set's
 * captions_val2017.json rather than captions_val2017_full.json, which lists 5,000 images of which 208 are here)
 * and the others are reported as not used. JSON is parsed as data and every record checked.
 */
export function cocoSource(root: string): CaptionSource {
  const listing = new FolderListing(root);
  const annotations = findFolder(listing, root, [ANNOTATIONS]);
  if (annotations === undefined) throw new CaptionSourceError(`${root}/${ANNOTATIONS} is not a folder inside the data folder`);
  const bySplit = new Map<CaptionSplitName, string[]>();
  for (const name of fs.readdirSync(annotations).filter((n) => CAPTION_FILE.test(n)).sort()) {
    const split = splitOf(CAPTION_FILE.exec(name)![1]!);
    bySplit.set(split, [...(bySplit.get(split) ?? []), name]);
  }
  const splits: Partial<Record<CaptionSplitName, CaptionEntry[]>> = {};
  const files: string[] = [];
  for (const [split, names] of bySplit) {
    const chosen = names.find((n) => /^captions_(train|val|test)\d*\.json$/.test(n)) ?? names[0]!;
    for (const other of names) if (other !== chosen) listing.skip(SKIP.ignored, `${ANNOTATIONS}/${other}: ${ANNOTATIONS}/${chosen} gives the ${split} split`);
    const file = path.join(annotations, chosen);
    files.push(file);
    splits[split] = readCaptionFile(root, file, CAPTION_FILE.exec(chosen)![1]!, listing);
  }
  const all = CAPTION_SPLITS.flatMap((s) => splits[s] ?? []);
  if (all.length === 0) throw new CaptionSourceError(`${root}: no image has both captions and an image file${listing.notices().length > 0 ? ` (${listing.notices().join('; ')})` : ''}`);
  return { name: path.basename(path.resolve(root)), format: 'coco', splits, files: [...files, ...all.map((e) => e.file)], notices: listing.notices() };
}

function readCaptionFile(root: string, file: string, stem: string, listing: FolderListing): CaptionEntry[] {
  let json: unknown;
  try {
    json = JSON.parse(readDataText(listing, file));
  } catch (err) {
    if (err instanceof CaptionSourceError) throw err;
    throw new CaptionSourceError(`${file} is not valid JSON (${(err as Error).message})`);
  }
  const top = json as { images?: unknown; annotations?: unknown } | null;
  if (typeof top !== 'object' || top === null || !Array.isArray(top.images) || !Array.isArray(top.annotations)) {
    throw new CaptionSourceError(`${file} is not a COCO caption file (it needs "images" and "annotations" arrays)`);
  }
  // The images folder: val2017/ for captions_val2017.json (also for captions_val2017_full.json), else images/.
  const folders = [stem, stem.split('_')[0]!];
  const imageDir = findFolder(listing, root, folders) ?? findFolder(listing, path.join(root, 'images'), folders) ?? findFolder(listing, root, ['images']);
  if (imageDir === undefined) throw new CaptionSourceError(`${root}: no image folder for ${path.basename(file)} (looked for ${folders[0]}/, images/${folders[0]}/, images/)`);
  const base = path.basename(file);
  const names = new Map<number, string>();
  top.images.forEach((record: unknown, i) => {
    const r = record as { id?: unknown; file_name?: unknown } | null;
    const ok = typeof r === 'object' && r !== null && Number.isSafeInteger(r.id) && typeof r.file_name === 'string' && !names.has(r.id as number);
    if (ok) names.set(r.id as number, r.file_name as string);
    else listing.skip(SKIP.badImage, `${base} images[${i}]`);
  });
  const index = new CaptionIndex(listing);
  top.annotations.forEach((record: unknown, i) => {
    const r = record as { image_id?: unknown; caption?: unknown } | null;
    if (typeof r !== 'object' || r === null || !Number.isSafeInteger(r.image_id) || typeof r.caption !== 'string') {
      listing.skip(SKIP.badAnnotation, `${base} annotations[${i}]`);
      return;
    }
    const name = names.get(r.image_id as number);
    if (name === undefined) listing.skip(SKIP.unknownImage, `${base} annotations[${i}]: image_id ${r.image_id}`);
    else index.add(name, r.caption, `${base} annotations[${i}]`);
  });
  for (const [id, name] of names) if (!index.byImage.has(name)) listing.skip(SKIP.uncaptioned, `${base}: id ${id} ${name}`);
  return index.entries(new Set(names.values()), imageDir);
}
