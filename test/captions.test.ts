/** Caption data: tokenizer, vocabulary, Flickr8k and COCO layouts (generated, and the shared sets), shapes' captions. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { CaptionSourceError } from '../src/data/captions/caption-source';
import { loadCaptionData } from '../src/data/captions/load-captions';
import { openCaptionSource } from '../src/data/kinds';
import { tokenize } from '../src/portable/tokenize';
import { END, PAD, START, UNK, Vocabulary, VocabularyError } from '../src/portable/vocabulary';
import { generateShapes } from '../src/data/shapes';
import { UserError } from '../src/util/user-error';
import { dataTest, sharedFile } from './support/shared';
import { ImageDataset, readAllPixels } from '../src/data/dataset';

let tmp: string;
let cacheDir: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-captions-'));
  cacheDir = path.join(tmp, 'cache');
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A solid-colour 8x8 PNG. */
async function solid(file: string, rgb: [number, number, number]): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } }).png().toFile(file);
}

/** Pixel (x, y) of image n of a planar 8-bit set. */
function pixel(set: ImageDataset, n: number, x = 2, y = 2): number[] {
  const plane = set.height * set.width;
  const pixels = readAllPixels(set);
  return [0, 1, 2].map((c) => pixels[n * 3 * plane + c * plane + y * set.width + x]!);
}

describe('tokenize', () => {
  test('lower case, letters only, runs of anything else become one space', () => {
    expect(tokenize('A dog\'s T-shirt,  2 cats.')).toEqual(['a', 'dog', 's', 't', 'shirt', 'cats']);
    expect(tokenize('A man,standing on the  BEACH .')).toEqual(['a', 'man', 'standing', 'on', 'the', 'beach']);
    expect(tokenize('  \t 42 ... ')).toEqual([]);
    expect(tokenize('café crème')).toEqual(['caf', 'cr', 'me']);
  });
});

describe('Vocabulary', () => {
  const captions = [['a', 'dog', 'runs'], ['a', 'dog', 'sits'], ['a', 'cat', 'runs'], ['the', 'zebra']];

  test('specials at fixed ids, then words with at least minCount occurrences, most frequent first, ties alphabetical', () => {
    const v = Vocabulary.build(captions, 2);
    expect(v.tokens).toEqual(['<pad>', '<start>', '<end>', '<unk>', 'a', 'dog', 'runs']);
    expect([PAD, START, END, UNK]).toEqual([0, 1, 2, 3]);
    expect(v.size).toBe(7);
    expect(v.id('dog')).toBe(5);
    expect(v.id('zebra')).toBe(UNK);
    expect(Vocabulary.build(captions, 1).tokens.slice(4)).toEqual(['a', 'dog', 'runs', 'cat', 'sits', 'the', 'zebra']);
  });

  test('encode: <start>, ids, <end>, padding and a mask; long captions keep <end>; decode stops at <end>', () => {
    const v = Vocabulary.build(captions, 2);
    const e = v.encode(['a', 'zebra', 'runs'], 7);
    expect(Array.from(e.ids)).toEqual([START, 4, UNK, 6, END, PAD, PAD]);
    expect(Array.from(e.mask)).toEqual([1, 1, 1, 1, 1, 0, 0]);
    expect(e.truncated).toBe(false);
    const cut = v.encode(['a', 'dog', 'runs', 'a', 'dog'], 5);
    expect(Array.from(cut.ids)).toEqual([START, 4, 5, 6, END]);
    expect(cut.truncated).toBe(true);
    expect(v.decode(e.ids)).toBe('a <unk> runs');
    expect(v.decodeTokens([START, 5, 6, END, 4, 4])).toEqual(['dog', 'runs']);
    expect(v.decode(new BigInt64Array([1n, 4n, 2n]))).toBe('a');
    expect(() => v.decode([START, 99])).toThrow(/outside the vocabulary/);
    expect(() => v.encode(['a'], 2)).toThrow(/maxLength/);
  });

  test('an empty vocabulary says which word came closest and to lower --min-count', () => {
    expect(() => Vocabulary.build(captions, 10)).toThrow(VocabularyError);
    expect(() => Vocabulary.build(captions, 10)).toThrow("no word occurs at least 10 times in the 4 training captions (the most frequent, 'a', occurs 3 times); lower --min-count");
    expect(() => Vocabulary.build([], 1)).toThrow(/empty/);
    expect(() => Vocabulary.build(captions, 0)).toThrow(/minimum word count/);
  });

  test('saved as JSON and read back as checked data', () => {
    const v = Vocabulary.build(captions, 1);
    const text = JSON.stringify(v);
    const back = Vocabulary.parse(text);
    expect(back.tokens).toEqual(v.tokens);
    expect(back.minCount).toBe(1);
    const json = JSON.parse(text) as Record<string, unknown> & { tokens: unknown[] };
    const bad = (patch: Record<string, unknown>) => () => Vocabulary.fromJSON({ ...json, ...patch });
    expect(bad({})).not.toThrow();
    expect(bad({ format: 'other' })).toThrow(/format/);
    expect(bad({ version: 2 })).toThrow(/version 2/);
    expect(bad({ minCount: -1 })).toThrow(/minCount/);
    expect(bad({ tokens: 'a b' })).toThrow(/array/);
    expect(bad({ tokens: ['<start>', '<pad>', '<end>', '<unk>', 'a'] })).toThrow(/token 0 must be <pad>/);
    expect(bad({ tokens: [...json.tokens, 'a'] })).toThrow(/'a' appears twice/);
    expect(bad({ tokens: [...json.tokens, 'two words'] })).toThrow(/not a word/);
    expect(bad({ tokens: [...json.tokens, { toString: 'x' }] })).toThrow(/not a word/);
    expect(bad({ tokens: json.tokens.slice(0, 4) })).toThrow(/no words/);
    expect(() => Vocabulary.fromJSON([1])).toThrow(/JSON object/);
    expect(() => Vocabulary.parse('{"format":')).toThrow(/not valid JSON/);
    expect(() => Vocabulary.parse('null')).toThrow(VocabularyError);
  });
});

describe('Flickr8k layout (generated)', () => {
  let root: string;
  const red: [number, number, number] = [220, 20, 20];
  beforeAll(async () => {
    root = path.join(tmp, 'flickr');
    const colours: Record<string, [number, number, number]> = {
      't1.jpg': red, 't2.jpg': [20, 220, 20], 't3.jpg': [20, 20, 220], 't4.jpg': [200, 200, 20], 'v1.jpg': [50, 50, 50], 's1.jpg': [90, 90, 90], 'extra.jpg': [0, 0, 0],
    };
    for (const [name, rgb] of Object.entries(colours)) await solid(path.join(root, 'Images', name), rgb);
    fs.writeFileSync(path.join(root, 'Images', 'broken.jpg'), 'not an image at all');
    const lines = [
      't1.jpg#0\tA red square on a table .', 't1.jpg#1\tA red box .', 't1.jpg#2\t123 !!',
      't2.jpg#0\tA green square .', 't2.jpg#1\tA green box on a very long and winding table top here .',
      't3.jpg#0\tA blue square .', 't4.jpg#0\tA yellow box .',
      'broken.jpg#0\tA broken box .',
      'v1.jpg#0\tA zebra .', 'v1.jpg#1\tA zebra square .',
      's1.jpg#0\tA grey square .',
      'extra.jpg#0\tAn image in no split .',
      'ghost.jpg#0\tA square nobody drew .', 'ghost.jpg#1\tStill no image .',
      'no tab on this line', 'nohash.jpg\tA caption without its number .', '../t1.jpg#0\tA path out of the folder .',
      '',
    ];
    fs.writeFileSync(path.join(root, 'Flickr8k.token.txt'), lines.join('\n'));
    fs.writeFileSync(path.join(root, 'Flickr_8k.trainImages.txt'), 't1.jpg\nt2.jpg\nt3.jpg\nt4.jpg\nbroken.jpg\nghost.jpg\nuncaptioned.jpg\n');
    fs.writeFileSync(path.join(root, 'Flickr_8k.devImages.txt'), 'v1.jpg\n');
    fs.writeFileSync(path.join(root, 'Flickr_8k.testImages.txt'), 's1.jpg\r\n');
  });

  test('the official splits with all captions per image; each kind of bad input is counted in one notice line', () => {
    const source = openCaptionSource(root);
    expect(source.format).toBe('flickr8k');
    expect(source.splits.train!.map((e) => path.basename(e.file as string))).toEqual(['t1.jpg', 't2.jpg', 't3.jpg', 't4.jpg', 'broken.jpg']);
    expect(source.splits.train![0]!.captions).toEqual(['A red square on a table .', 'A red box .']);
    expect(source.splits.val!.map((e) => e.captions.length)).toEqual([2]);
    expect(source.splits.test).toHaveLength(1);
    expect(source.notices).toEqual([
      'skipped 1 caption without any letters (Flickr8k.token.txt line 3)',
      'skipped 2 malformed lines of Flickr8k.token.txt (not "<image>#<n><tab><caption>") (line 15; line 16)',
      'skipped 1 caption entry whose image is not a plain file name (Flickr8k.token.txt line 17)',
      'skipped 1 image that a split file lists but that has no captions (Flickr_8k.trainImages.txt: uncaptioned.jpg)',
      'skipped 1 image that the captions name but that does not exist (its captions skipped) (Images/ghost.jpg)',
    ]);
  });

  test('loads decoded images, references and encoded captions; the vocabulary comes from the training captions only; cached', async () => {
    const notices: string[] = [];
    const data = await loadCaptionData(root, { imageSize: 8, cacheDir, minCount: 2, maxLength: 8, seed: 0, onNotice: (m) => notices.push(m) });
    expect(data.format).toBe('flickr8k');
    expect(data.fromCache).toBe(false);
    expect(notices).toHaveLength(7);
    expect(notices[5]).toMatch(/^skipped 1 unreadable image with their captions \(broken\.jpg is not a readable image/);
    expect(notices[6]).toBe('note: 1 of 6 training captions have more than 6 words and lose the rest (maximum length 8 with <start> and <end>)');
    expect([data.train.images.count, data.val.images.count, data.test!.images.count]).toEqual([4, 1, 1]);
    expect(pixel(data.train.images, 0)).toEqual(red);
    expect(data.train.images.captions![0]).toBe('A red square on a table .');
    expect(data.train.references[0]).toEqual([['a', 'red', 'square', 'on', 'a', 'table'], ['a', 'red', 'box']]);
    // 'zebra' occurs twice, but only in validation captions: it stays out of the vocabulary.
    expect(data.vocabulary.tokens.slice(4)).toEqual(['a', 'box', 'square', 'green', 'on', 'red', 'table']);
    expect(data.vocabulary.id('zebra')).toBe(UNK);
    const enc = data.train.encoded;
    expect([enc.count, enc.length]).toEqual([6, 8]);
    expect(Array.from(enc.image)).toEqual([0, 0, 1, 1, 2, 3]);
    expect(data.vocabulary.decode(enc.ids.subarray(0, 8))).toBe('a red square on a table');
    expect(Array.from(enc.mask.subarray(8, 16))).toEqual([1, 1, 1, 1, 1, 0, 0, 0]);
    expect(data.vocabulary.decode(data.val.encoded.ids.subarray(0, 8))).toBe('a <unk>');
    expect(data.val.references).toEqual([[['a', 'zebra'], ['a', 'zebra', 'square']]]);

    const again = await loadCaptionData(root, { imageSize: 8, cacheDir, minCount: 2, maxLength: 8, seed: 0 });
    expect(again.fromCache).toBe(true);
    expect(readAllPixels(again.train.images)).toEqual(readAllPixels(data.train.images));
    expect(again.train.references).toEqual(data.train.references);
  });

  test('a minimum count nothing reaches, too short a maximum length, or a caption file linked from outside are user errors', async () => {
    await expect(loadCaptionData(root, { imageSize: 8, cacheDir, minCount: 100 })).rejects.toThrow(/the vocabulary is empty: no word occurs at least 100 times in the 6 training captions/);
    await expect(loadCaptionData(root, { imageSize: 8, cacheDir, maxLength: 2 })).rejects.toThrow(UserError);
    const linked = path.join(tmp, 'flickr-linked');
    fs.mkdirSync(path.join(linked, 'Images'), { recursive: true });
    fs.copyFileSync(path.join(root, 'Images', 't1.jpg'), path.join(linked, 'Images', 't1.jpg'));
    fs.writeFileSync(path.join(tmp, 'outside.txt'), 't1.jpg#0\tsecret words\n');
    fs.symlinkSync(path.join(tmp, 'outside.txt'), path.join(linked, 'Flickr8k.token.txt'));
    expect(() => openCaptionSource(linked)).toThrow(/not a readable file inside the data folder/);
  });

  test('captions.txt (CSV, quoted captions) without split files: a seeded 20 % validation hold-out', async () => {
    const csv = path.join(tmp, 'flickr-csv');
    for (let i = 0; i < 10; i++) await solid(path.join(csv, 'Images', `${i}.jpg`), [i * 20, 100, 100]);
    const rows = Array.from({ length: 10 }, (_, i) => `${i}.jpg,"A dog , number ${'x'.repeat(i + 1)} , says ""hi"""\n${i}.jpg,A dog with no quotes, and a comma`);
    fs.writeFileSync(path.join(csv, 'captions.txt'), `image,caption\n${rows.join('\n')}\n3.jpg,"an unterminated quote\n5.jpg\n`);
    const source = openCaptionSource(csv);
    expect(source.splits.train![0]!.captions).toEqual(['A dog , number x , says "hi"', 'A dog with no quotes, and a comma']);
    expect(source.splits.val).toBeUndefined();
    expect(source.notices).toEqual(['skipped 2 malformed lines of captions.txt (not "<image>,<caption>") (line 22; line 23)']);
    const load = (seed: number) => loadCaptionData(csv, { imageSize: 8, cacheDir, minCount: 1, seed });
    const [a, b, c] = [await load(0), await load(0), await load(1)];
    expect([a.train.images.count, a.val.images.count]).toEqual([8, 2]);
    expect(b.val.images.captions).toEqual(a.val.images.captions);
    const held = (d: typeof a) => d.val.images.captions!.join('|');
    expect(held(c)).not.toBe(held(a));
    // --train-size / --val-size take seeded samples of images, each with all its captions.
    const small = await loadCaptionData(csv, { imageSize: 8, cacheDir, minCount: 1, seed: 0, trainSize: 3, valSize: 1 });
    expect([small.train.images.count, small.val.images.count, small.train.encoded.count]).toEqual([3, 1, 6]);
  });

  test('split files that list the same image are refused, naming the files and the images (issue 24 item 4)', () => {
    const overlapping = path.join(tmp, 'flickr-overlap');
    fs.cpSync(root, overlapping, { recursive: true });
    fs.writeFileSync(path.join(overlapping, 'Flickr_8k.devImages.txt'), 'v1.jpg\nt2.jpg\nt3.jpg\n');
    fs.writeFileSync(path.join(overlapping, 'Flickr_8k.testImages.txt'), 's1.jpg\nv1.jpg\n');
    expect(() => openCaptionSource(overlapping)).toThrow(CaptionSourceError);
    expect(() => openCaptionSource(overlapping)).toThrow(new RegExp('flickr-overlap: the split files overlap: Flickr_8k\\.trainImages\\.txt and Flickr_8k\\.devImages\\.txt both list 2 images \\("t2\\.jpg", "t3\\.jpg"\\); '
      + 'Flickr_8k\\.devImages\\.txt and Flickr_8k\\.testImages\\.txt both list 1 image \\("v1\\.jpg"\\); an image must be in one split only$'));
  });

  test('not a caption layout, or nothing usable left: a user error that says what was expected or found', async () => {
    const empty = path.join(tmp, 'not-captions');
    fs.mkdirSync(empty);
    expect(() => openCaptionSource(empty)).toThrow(/not a caption data set: expected Flickr8k .* or COCO/);
    expect(() => openCaptionSource(path.join(tmp, 'missing'))).toThrow(CaptionSourceError);
    const bad = path.join(tmp, 'flickr-bad');
    fs.mkdirSync(path.join(bad, 'Images'), { recursive: true });
    fs.writeFileSync(path.join(bad, 'Flickr8k.token.txt'), 'garbage\nmore garbage\n');
    expect(() => openCaptionSource(bad)).toThrow('has no usable captions: skipped 2 malformed lines');
    const broken = path.join(tmp, 'flickr-broken');
    fs.mkdirSync(path.join(broken, 'Images'), { recursive: true });
    fs.writeFileSync(path.join(broken, 'Images', 'a.jpg'), 'not a jpeg');
    fs.writeFileSync(path.join(broken, 'Flickr8k.token.txt'), 'a.jpg#0\tA thing .\n');
    await expect(loadCaptionData(broken, { imageSize: 8, cacheDir, minCount: 1 })).rejects.toThrow(/none of the 1 train images could be read \(a\.jpg is not a readable image/);
  });
});

describe('COCO layout (generated)', () => {
  let root: string;
  beforeAll(async () => {
    root = path.join(tmp, 'coco');
    const images = Array.from({ length: 6 }, (_, i) => ({ id: 100 + i, file_name: `${String(i).padStart(12, '0')}.jpg`, width: 8, height: 8 }));
    for (const [i, im] of images.entries()) if (i < 5) await solid(path.join(root, 'val2017', im.file_name), [i * 40, 0, 0]);
    const annotations = images.flatMap((im, i) => (i === 4 ? [] : [{ image_id: im.id, id: i * 2, caption: `A photo of thing ${'ab'[i % 2]} .` }, { image_id: im.id, id: i * 2 + 1, caption: 'Another photo.' }]));
    const json = {
      info: {}, licenses: [], type: 'captions',
      images: [...images, { id: 'x', file_name: 7 }],
      annotations: [...annotations, { image_id: 999, caption: 'no such image' }, { image_id: 100 }, 'text'],
    };
    fs.mkdirSync(path.join(root, 'annotations'));
    fs.writeFileSync(path.join(root, 'annotations', 'captions_val2017.json'), JSON.stringify(json));
    fs.writeFileSync(path.join(root, 'annotations', 'captions_val2017_full.json'), '{"images": [], "annotations": []}');
    fs.writeFileSync(path.join(root, 'annotations', 'instances_val2017.json'), '{}');
  });

  test('captions_val2017.json + val2017/: records checked, each kind of bad record counted; the _full file is not used', () => {
    const source = openCaptionSource(root);
    expect(source.format).toBe('coco');
    expect(Object.keys(source.splits)).toEqual(['val']);
    expect(source.splits.val!.map((e) => e.captions.length)).toEqual([2, 2, 2, 2]);
    expect(source.notices).toEqual([
      'skipped 1 caption file not used (annotations/captions_val2017_full.json: annotations/captions_val2017.json gives the val split)',
      'skipped 1 malformed image record (no integer "id" or string "file_name", or a repeated id) (captions_val2017.json images[6])',
      'skipped 1 caption for an image id the file does not list (captions_val2017.json annotations[10]: image_id 999)',
      'skipped 2 malformed caption records (no "image_id" or string "caption") (captions_val2017.json annotations[11]; captions_val2017.json annotations[12])',
      'skipped 1 image record without captions (captions_val2017.json: id 104 000000000004.jpg)',
      'skipped 1 image that the captions name but that does not exist (its captions skipped) (val2017/000000000005.jpg)',
    ]);
  });

  test('a set with only a validation split: training and validation images drawn from it (seeded), with a note', async () => {
    const notices: string[] = [];
    const data = await loadCaptionData(root, { imageSize: 8, cacheDir, minCount: 1, seed: 3, onNotice: (m) => notices.push(m) });
    expect(notices.at(-1)).toBe('note: coco has no training split of its own: training and validation images are both drawn from its 4 validation images (seeded)');
    expect([data.train.images.count, data.val.images.count, data.test]).toEqual([3, 1, undefined]);
    expect(data.val.references[0]).toHaveLength(2);
  });

  test('caption files that are not JSON, or not COCO captions, are user errors', () => {
    const bad = path.join(tmp, 'coco-bad');
    fs.mkdirSync(path.join(bad, 'annotations'), { recursive: true });
    fs.mkdirSync(path.join(bad, 'train2014'));
    fs.writeFileSync(path.join(bad, 'annotations', 'captions_train2014.json'), '{"images": [');
    expect(() => openCaptionSource(bad)).toThrow(/captions_train2014\.json is not valid JSON/);
    fs.writeFileSync(path.join(bad, 'annotations', 'captions_train2014.json'), '{"images": {}}');
    expect(() => openCaptionSource(bad)).toThrow(/is not a COCO caption file/);
  });
});

describe('shapes', () => {
  test('the generated images with their captions, the images of the classification data set', async () => {
    const data = await loadCaptionData('shapes', { imageSize: 16, trainSize: 40, valSize: 10, minCount: 1, seed: 2 });
    const same = generateShapes({ count: 40, imageSize: 16, seed: 4 });
    expect(data.format).toBe('shapes');
    expect(readAllPixels(data.train.images)).toEqual(same.pixels);
    expect(data.train.captions.map((c) => c[0])).toEqual(same.captions);
    expect(data.train.references[0]).toEqual([tokenize(same.captions![0]!)]);
    expect([data.train.encoded.count, data.val.encoded.count, data.test]).toEqual([40, 10, undefined]);
    expect(data.vocabulary.tokens).toContain('background');
    expect(data.vocabulary.decode(data.train.encoded.ids.subarray(0, data.maxLength))).toBe(tokenize(same.captions![0]!).join(' '));
  });
});

describe('shared caption data sets', () => {
  dataTest('Flickr8k: the official 6,000 / 1,000 / 1,000 split, 5 captions per image; the vocabulary as the reference builds it', ['data/flickr8k/Flickr8k.token.txt'], () => {
    const root = path.dirname(sharedFile('data/flickr8k/Flickr8k.token.txt'));
    const source = openCaptionSource(root);
    expect([source.splits.train!.length, source.splits.val!.length, source.splits.test!.length]).toEqual([6000, 1000, 1000]);
    for (const split of Object.values(source.splits)) expect(split.every((e) => e.captions.length === 5)).toBe(true);
    // The token file's two keys without an image (SOURCE.md) are in no split file: nothing to report.
    expect(source.notices).toEqual([]);
    // The vocabulary of the training captions, against the reference preprocessing written in Python.
    const train = source.splits.train!.flatMap((e) => e.captions.map(tokenize));
    const script = [
      'import collections, json, re, sys',
      'counts = collections.Counter(w for c in json.load(sys.stdin) for w in re.sub("[^a-z]+", " ", c.lower()).split())',
      'print(json.dumps(sorted(w for w, n in counts.items() if n >= 5)))',
    ].join('\n');
    const r = spawnSync('/usr/bin/python3', ['-c', script], { input: JSON.stringify(source.splits.train!.flatMap((e) => e.captions)), encoding: 'utf8' });
    expect(r.status).toBe(0);
    const vocabulary = Vocabulary.build(train, 5);
    expect([...vocabulary.tokens.slice(4)].sort()).toEqual(JSON.parse(r.stdout));
  });

  dataTest('Flickr8k as captions.txt (CSV with quoted captions) reads the same captions as the token file', ['data/flickr8k/captions.txt'], () => {
    const shared = path.dirname(sharedFile('data/flickr8k/captions.txt'));
    const csv = path.join(tmp, 'flickr8k-csv');
    fs.mkdirSync(path.join(csv, 'Images'), { recursive: true });
    fs.copyFileSync(path.join(shared, 'captions.txt'), path.join(csv, 'captions.txt'));
    const official = openCaptionSource(shared).splits.test!.slice(0, 3);
    for (const e of official) fs.copyFileSync(e.file as string, path.join(csv, 'Images', path.basename(e.file as string)));
    fs.writeFileSync(path.join(csv, 'Flickr_8k.trainImages.txt'), official.map((e) => path.basename(e.file as string)).join('\n'));
    const source = openCaptionSource(csv);
    expect(source.notices).toEqual([]);
    expect(source.splits.train!.map((e) => e.captions)).toEqual(official.map((e) => e.captions));
  });

  dataTest('COCO val2017 mini: 208 images with 5 captions each, split 80/20 (seeded); the full caption file is not used', ['data/coco-val2017-mini/annotations/captions_val2017.json'], async () => {
    const root = path.dirname(path.dirname(sharedFile('data/coco-val2017-mini/annotations/captions_val2017.json')));
    const notices: string[] = [];
    const data = await loadCaptionData(root, { imageSize: 16, cacheDir, seed: 0, onNotice: (m) => notices.push(m) });
    expect(notices).toEqual([
      'skipped 1 caption file not used (annotations/captions_val2017_full.json: annotations/captions_val2017.json gives the val split)',
      'note: coco-val2017-mini has no training split of its own: training and validation images are both drawn from its 208 validation images (seeded)',
      'note: 5 of 830 training captions have more than 20 words and lose the rest (maximum length 22 with <start> and <end>)',
    ]);
    expect([data.train.images.count, data.val.images.count]).toEqual([166, 42]);
    expect(data.train.references.every((r) => r.length === 5)).toBe(true);
    expect(data.vocabulary.size).toBeGreaterThan(50);
  }, 60000);
});
