import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../../util/user-error';
import { Rng } from '../../util/rng';
import { ImageDataset, RecordImageDataset, subsetOf } from '../dataset';
import { maxPixelsFromEnvironment } from '../decode-image';
import { decodeToRecords, recordDataset } from '../decode-to-records';
import { defaultCacheDir, fingerprint } from '../image-cache';
import { generateShapes } from '../shapes';
import { displayPath } from '../sources/image-source';
import { CAPTION_SPLITS, CaptionEntry, CaptionSource, CaptionSourceError, CaptionSplitName } from './caption-source';
import { GENERATED_DATA, isGeneratedData, openCaptionSource } from '../kinds';
import { tokenize } from '../../portable/tokenize';
import { Vocabulary } from '../../portable/vocabulary';

/** Words must occur this often in the training captions to get an id (the usual Flickr8k/COCO threshold). */
const DEFAULT_MIN_COUNT = 5;
/** 22 ids: <start>, 20 words, <end>. Cuts 1.5 % of Flickr8k's captions (median 10 words, 99th percentile 22). */
const DEFAULT_MAX_LENGTH = 22;

export interface CaptionDataOptions {
  imageSize: number;
  cacheDir?: string;
  /** Words occurring fewer times than this in the training captions become <unk> (default 5). */
  minCount?: number;
  /** Ids per encoded caption, <start> and <end> included: the model's sequence length (default 22). */
  maxLength?: number;
  /** Shapes: images to generate (default 10,000 / 2,000). Folders: at most this many images (a seeded sample). */
  trainSize?: number;
  valSize?: number;
  /** Sets without a validation split of their own hold out this fraction of the training images (default 0.2). */
  valFraction?: number;
  seed?: number;
  /** Skip images with more pixels than this, before decoding (default: DEEPVISION_MAX_PIXELS, else 50 million). */
  maxPixels?: number;
  /** One line per kind of input left out (with counts), and notes on how the data was split. */
  onNotice?: (message: string) => void;
  /** Called while decoding (done, total); decoding happens only when no valid cache exists. */
  onProgress?: (done: number, total: number) => void;
}

/** Every caption of a split as model input, one row per (image, caption) pair, image by image. */
export interface EncodedCaptions {
  count: number;
  /** Ids per row (maxLength). */
  length: number;
  /** The image (index into the split's images) each row describes. */
  image: Int32Array;
  /** count x length ids: <start>, words (<unk> for unknown ones), <end>, <pad>... */
  ids: Int32Array;
  /** count x length: 1 where `ids` is not padding. */
  mask: Uint8Array;
}

export interface CaptionSplit {
  /** The decoded images (labels: the shape class for shapes, 0 for photo sets, which have no classes). */
  images: ImageDataset;
  /** Each image's captions as the data set writes them, all of them. */
  captions: string[][];
  /** The same, tokenized: each image's references for BLEU and CIDEr-D. */
  references: string[][][];
  encoded: EncodedCaptions;
}

export interface CaptionData {
  name: string;
  format: 'shapes' | CaptionSource['format'];
  /** Built from the training captions only; saved with the model. */
  vocabulary: Vocabulary;
  maxLength: number;
  train: CaptionSplit;
  val: CaptionSplit;
  /** The set's own test split (Flickr8k's 1,000 test images), when it has one. */
  test?: CaptionSplit;
  fromCache: boolean;
}

/** Images of one split with their captions, before tokenizing. */
/** Training and validation images are always there (a source without its own validation split gets one cut). */
interface RawSplits {
  train: RawSplit;
  val: RawSplit;
  test: RawSplit | undefined;
}

interface RawSplit {
  name: string;
  /** The split's images: generated ones in memory, decoded ones as records of the image cache. */
  images: ImageDataset;
  labels: Int32Array;
  classNames: string[];
  captions: string[][];
}

/**
 * Loads a caption data set: `shapes` (generated, one caption per image, train and validation from the seeds the
 * classification data uses) or a Flickr8k or COCO folder. Images are decoded to imageSize x imageSize RGB (the
 * resize and center crop of loadImageSet) and cached the same way; captions are tokenized, the vocabulary is built
 * from the training split (after any --train-size sample) and every caption is encoded to maxLength ids.
 *
 * Left-out input is reported in one onNotice line per kind, with counts: malformed caption lines or records,
 * captions of images that do not exist, images that do not decode. Where nothing usable is left (no training
 * image, no word frequent enough for the vocabulary), a UserError says why.
 */
export async function loadCaptionData(nameOrDir: string, o: CaptionDataOptions): Promise<CaptionData> {
  const maxLength = o.maxLength ?? DEFAULT_MAX_LENGTH;
  const minCount = o.minCount ?? DEFAULT_MIN_COUNT;
  if (!Number.isSafeInteger(maxLength) || maxLength < 3) throw new UserError(`the maximum caption length must be a whole number >= 3 (<start>, a word, <end>), got ${maxLength}`);
  if (!Number.isSafeInteger(minCount) || minCount < 1) throw new UserError(`the minimum word count must be a whole number >= 1, got ${minCount}`);
  for (const [option, value] of [['train size', o.trainSize], ['validation size', o.valSize]] as const) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 1)) throw new UserError(`the ${option} must be a whole number >= 1, got ${value}`);
  }
  const seed = o.seed ?? 0;
  let format: CaptionData['format'];
  let name: string;
  let raw: RawSplits;
  let fromCache = false;
  if (isGeneratedData(nameOrDir)) {
    format = GENERATED_DATA;
    name = GENERATED_DATA;
    // The seeds of loadData('shapes'): the same images as the classification data, now with their captions.
    const generated = (count: number, s: number, split: string): RawSplit => {
      const set = generateShapes({ count, imageSize: o.imageSize, seed: s });
      return { name: `shapes/${split}`, images: set, labels: set.labels, classNames: set.classNames, captions: set.captions!.map((c) => [c]) };
    };
    raw = { train: generated(o.trainSize ?? 10000, 2 * seed, 'train'), val: generated(o.valSize ?? 2000, 2 * seed + 1, 'val'), test: undefined };
  } else {
    const source = openCaptionSource(nameOrDir);
    for (const notice of source.notices) o.onNotice?.(notice);
    format = source.format;
    name = source.name;
    const loaded = await decodeCaptionSource(source, o);
    fromCache = loaded.fromCache;
    raw = splitAndSample(source, loaded.splits, o, seed);
  }

  const tokenized = (r: RawSplit) => r.captions.map((list) => list.map(tokenize));
  const trainTokens = tokenized(raw.train);
  const vocabulary = Vocabulary.build(trainTokens.flat(), minCount);
  const build = (r: RawSplit, references = tokenized(r)): CaptionSplit => {
    const images: ImageDataset = { ...r.images, name: r.name, classNames: r.classNames, count: r.labels.length, labels: r.labels, captions: r.captions.map((c) => c[0] ?? '') };
    return { images, captions: r.captions, references, encoded: encodeAll(references, vocabulary, maxLength) };
  };
  const train = build(raw.train, trainTokens);
  const cut = countTruncated(trainTokens, maxLength);
  if (cut > 0) o.onNotice?.(`note: ${cut} of ${train.encoded.count} training captions have more than ${maxLength - 2} words and lose the rest (maximum length ${maxLength} with <start> and <end>)`);
  return { name, format, vocabulary, maxLength, train, val: build(raw.val), test: raw.test && build(raw.test), fromCache };
}

function encodeAll(references: string[][][], vocabulary: Vocabulary, maxLength: number): EncodedCaptions {
  const count = references.reduce((n, refs) => n + refs.length, 0);
  const out: EncodedCaptions = { count, length: maxLength, image: new Int32Array(count), ids: new Int32Array(count * maxLength), mask: new Uint8Array(count * maxLength) };
  let row = 0;
  references.forEach((refs, image) => {
    for (const tokens of refs) {
      const { ids, mask } = vocabulary.encode(tokens, maxLength);
      out.image[row] = image;
      out.ids.set(ids, row * maxLength);
      out.mask.set(mask, row * maxLength);
      row++;
    }
  });
  return out;
}

function countTruncated(references: string[][][], maxLength: number): number {
  let n = 0;
  for (const refs of references) for (const tokens of refs) if (tokens.length > maxLength - 2) n++;
  return n;
}

/** The decoded images of each of the source's splits, with the entries (captions) of the images that decoded. */
interface DecodedSplit {
  entries: CaptionEntry[];
  images: RecordImageDataset;
}

/**
 * Decodes every image of every split once, into the record cache (as loadImageSet does): one cached "split" holds
 * all of them, each labelled with its entry's index, so images that failed to decode are simply absent and the
 * captions follow.
 */
async function decodeCaptionSource(source: CaptionSource, o: CaptionDataOptions): Promise<{ splits: Partial<Record<CaptionSplitName, DecodedSplit>>; fromCache: boolean }> {
  const size = o.imageSize;
  const maxPixels = o.maxPixels ?? maxPixelsFromEnvironment();
  const entries = CAPTION_SPLITS.flatMap((s) => source.splits[s] ?? []);
  // The entry order is part of the key: labels index into it, so another reading of the caption files is another cache.
  const extra = `captions\n${source.format}\n${size}x${size}\nmax ${maxPixels} pixels\n${entries.map((e) => displayPath(e.file)).join('\n')}`;
  const decoded = await decodeToRecords({
    name: `captions-${source.name}`, key: fingerprint(source.files, extra), cacheDir: o.cacheDir ?? defaultCacheDir(), classNames: [], size,
    splits: { train: entries.map((e, i) => ({ file: e.file, label: i })) }, maxPixels, onProgress: o.onProgress, onNotice: o.onNotice,
  });
  const images = decoded.images;
  if (images.skipped.count > 0) {
    o.onNotice?.(`skipped ${images.skipped.count} unreadable image${images.skipped.count === 1 ? '' : 's'} with their captions (${images.skipped.examples.join('; ')})`);
  }
  const all = recordDataset(images, 'train', `captions-${source.name}`);
  const rowOf = new Map<number, number>();
  all.labels.forEach((entry, row) => rowOf.set(entry, row));
  const splits: Partial<Record<CaptionSplitName, DecodedSplit>> = {};
  let start = 0;
  for (const s of CAPTION_SPLITS) {
    const list = source.splits[s];
    // An empty split (a split file naming no captioned image) counts as absent: validation is then held out.
    if (list === undefined || list.length === 0) continue;
    const rows: number[] = [];
    const kept: CaptionEntry[] = [];
    list.forEach((entry, i) => {
      const row = rowOf.get(start + i);
      if (row !== undefined) {
        rows.push(row);
        kept.push(entry);
      }
    });
    start += list.length;
    if (kept.length === 0) {
      throw new CaptionSourceError(`${source.name}: none of the ${list.length} ${s === 'val' ? 'validation' : s} images could be read (${images.skipped.examples.join('; ')})`);
    }
    splits[s] = { entries: kept, images: subsetOf(all, rows) };
  }
  return { splits, fromCache: decoded.fromCache };
}

/**
 * The splits the model sees: the set's own, or for a set without a validation split a seeded hold-out of the
 * training images (a set with only a validation split, as COCO's val2017 alone, is first taken as the training pool);
 * then the seeded --train-size / --val-size samples. The test split is never sampled.
 */
function splitAndSample(source: CaptionSource, decoded: Partial<Record<CaptionSplitName, DecodedSplit>>, o: CaptionDataOptions, seed: number): RawSplits {
  let train = decoded.train;
  let val = decoded.val;
  if (train === undefined && val !== undefined) {
    o.onNotice?.(`note: ${source.name} has no training split of its own: training and validation images are both drawn from its ${val.entries.length} validation images (seeded)`);
    train = val;
    val = undefined;
  }
  if (train === undefined) throw new CaptionSourceError(`${source.name} has only a test split: there is nothing to train on`);
  const pick = (split: DecodedSplit, indices: number[]): DecodedSplit => ({ entries: indices.map((i) => split.entries[i]!), images: subsetOf(split.images, indices) });
  if (val === undefined) {
    const fraction = o.valFraction ?? 0.2;
    if (!(fraction > 0 && fraction < 1)) throw new UserError(`the validation fraction must be between 0 and 1, got ${fraction}`);
    const order = new Rng(`caption-split/${seed}`).shuffle([...train.entries.keys()]);
    const held = Math.round(order.length * fraction);
    if (held === 0 || held === order.length) throw new CaptionSourceError(`${source.name}: ${order.length} usable image${order.length === 1 ? '' : 's'} cannot be split into training and validation images`);
    val = pick(train, order.slice(0, held).sort((a, b) => a - b));
    train = pick(train, order.slice(held).sort((a, b) => a - b));
  }
  const sample = (split: DecodedSplit, count: number | undefined, stream: string): DecodedSplit => {
    if (count === undefined || count >= split.entries.length) return split;
    return pick(split, new Rng(`${stream}/${seed}`).shuffle([...split.entries.keys()]).slice(0, count).sort((a, b) => a - b));
  };
  const raw = (split: DecodedSplit, which: CaptionSplitName): RawSplit => ({
    name: `${source.name}/${which}`, images: split.images, labels: new Int32Array(split.entries.length), classNames: [],
    captions: split.entries.map((e) => e.captions),
  });
  return {
    train: raw(sample(train, o.trainSize, 'caption-train-sample'), 'train'),
    val: raw(sample(val, o.valSize, 'caption-val-sample'), 'val'),
    test: decoded.test && raw(decoded.test, 'test'),
  };
}
